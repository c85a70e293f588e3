#pragma once
// One receiver's choice among its room's Opus encodes (K+1 audio,
// docs/architecture.md "Audio"): source 0 is the full mix, source 1 + k the
// mix-minus of speaker slot k. Every encode reaches the receiver's funnel;
// pass() lets one through at a time and switches on packet boundaries, so
// the receiver's one payloader numbers a continuous stream: one packet per
// 20 ms, whichever encode it came from (all encodes share one frame grid).
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>

#include <gst/gst.h>

namespace tessera::media {

class AudioSwitch {
public:
    explicit AudioSwitch(std::size_t source) : m_current(source) {}

    // Thread: any. From the next packet `source` has that the current one
    // has not sent already. With `cutoff` (a running time), no packet of the
    // current source that ends after it passes any more: from there on it
    // carries the receiver's own voice.
    void select(std::size_t source, GstClockTime cutoff = GST_CLOCK_TIME_NONE);
    // Thread: streaming (the source's encoder). Whether a packet of `source`
    // covering [start, start + duration) (running time) goes to the receiver.
    bool pass(std::size_t source, GstClockTime start, GstClockTime duration);

private:
    std::mutex m_mutex;
    std::size_t m_current;
    std::optional<std::size_t> m_pending;
    GstClockTime m_cutoff = GST_CLOCK_TIME_NONE;
    GstClockTime m_last = GST_CLOCK_TIME_NONE; // start of the last packet passed
};

// Lets through the funnel sink pad `pad` (a receiver's input from `source`)
// only the packets `chooser` passes, judged by their running time.
void watchEncode(GstPad* pad, std::shared_ptr<AudioSwitch> chooser, std::size_t source);

} // namespace tessera::media
