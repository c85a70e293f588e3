#pragma once
// `tesseramixminus`: a room's K+1 audio mixes in one aggregator
// (docs/architecture.md, "Audio"). Its output is the full mix, as
// `audiomixer`'s would be; each output buffer also carries the K speaker
// slots' mixes (slotMix), each the sum of every input but those whose
// sink pad's `slot` property names that slot. One aggregator instead of
// K+1: every input is queued, woken for and summed once, and the K+1 mixes
// share one output grid by construction.
//
// Element property `slots` (K, set before it plays). Sink pad property
// `slot` (-1: in every mix; 0..K-1: left out of that slot's mix), read as
// each input buffer is mixed, so a change applies from the next buffer the
// pad has not mixed yet. Mixes F32 only (the source caps say so); inputs
// are converted to it as `audiomixer`'s are.
#include <cstddef>

#include <gst/gst.h>

namespace tessera::media {

// Registers the element (idempotent).
void registerMixMinus();

// Thread: any. Slot `slot`'s mix for the full-mix buffer `fullMix` (a new
// reference): the full mix itself while the slot leaves nobody out, or
// `fullMix` again for a buffer from any other element.
GstBuffer* slotMix(GstBuffer* fullMix, std::size_t slot);

} // namespace tessera::media
