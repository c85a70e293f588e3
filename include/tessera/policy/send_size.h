#pragma once
// What each sender is asked to send (docs/protocol.md, `send-size`): the
// largest size and bit rate at which the room shows its video, and when that
// changes, at most one message per source per interval. Pure policy: no
// GStreamer, no GLib, no JSON; time is passed in (ms, monotonic).
#include <cstdint>

#include "tessera/policy/coalescer.h"

namespace tessera::policy {

struct SendRequest {
    bool active = true;             // false: not shown; it need send no video at all
    unsigned width = 0, height = 0; // even pixels; 0 when not active
    std::int64_t maxBitrate = 0;    // bits/s; 0 when not active
    bool operator==(const SendRequest&) const = default;
};

// The composite's geometry and what it is encoded at.
struct SendSizeInput {
    unsigned canvasWidth = 0, canvasHeight = 0; // the composite tiles are placed on
    // The largest picture the composite is encoded at (the top tier; a
    // recording's size when larger): tiles on a larger canvas are scaled
    // down by that much before anyone sees them.
    unsigned outputWidth = 0, outputHeight = 0;
    std::int64_t outputBitrate = 0; // the top tier's bit rate, bits/s
};

// A sender at a tile's share of the composite's bit rate looks as good as
// its tile does; below this floor a small tile would get too few bits to
// survive its second encode (the composite's).
inline constexpr std::int64_t kMinSendBitrate = 100'000;

// The request for a source whose picture is tileWidth x tileHeight on the
// canvas (0 x 0: not shown): that size scaled down to the output (never up),
// on even pixels and at least 2 x 2; the output bit rate times the tile's
// share of the canvas area, at least kMinSendBitrate and at most the output
// bit rate.
SendRequest sendRequest(unsigned tileWidth, unsigned tileHeight, const SendSizeInput& input);

// What each source (by key) is asked, coalesced: at most one message per
// source per interval (500 ms by default), a single change at once.
using SendSizeThrottle = Coalescer<SendRequest>;

} // namespace tessera::policy
