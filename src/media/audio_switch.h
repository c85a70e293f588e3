#pragma once
// One receiver's choice among its room's Opus encodes (K+1 audio,
// docs/architecture.md "Audio"): source 0 is the full mix, source 1 + k the
// mix-minus of speaker slot k. Every encode reaches the receiver's funnel;
// pass() lets one through at a time and switches on packet boundaries, so
// the receiver's one payloader numbers a continuous stream: one packet per
// 20 ms, whichever encode it came from (all encodes share one frame grid).
#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include <gst/gst.h>

namespace tessera::media {

// The room's encodes, as its receivers use them. An encode is used by the
// receivers whose AudioSwitch has it as the current or the pending source;
// the room feeds it only while it is used (gateEncode), so an encode nobody
// hears costs nothing.
class EncodeDemand {
public:
    explicit EncodeDemand(std::size_t sources) : m_users(sources), m_fed(sources), m_settled(sources) {}
    // Thread: any.
    void add(std::size_t source, int delta) { m_users.at(source) += delta; }
    bool used(std::size_t source) const { return m_users.at(source).load() > 0; }
    // Whether the encode is being fed now.
    bool fed(std::size_t source) const { return m_fed.at(source).load(); }
    // The running time from which its packets code nothing from before it
    // was last fed again (its first packets after a pause still code the
    // tail of the audio it had then: the encoder's look-ahead).
    GstClockTime settledFrom(std::size_t source) const { return m_settled.at(source).load(); }

private:
    friend void gateEncode(GstPad*, std::shared_ptr<EncodeDemand>, std::size_t, std::function<GstClockTime()>);
    std::vector<std::atomic<int>> m_users;
    std::vector<std::atomic<bool>> m_fed;
    std::vector<std::atomic<GstClockTime>> m_settled;
};

// Feeds the encoder whose raw-audio input is `pad` only while `source` is
// used, pausing and resuming on its 20 ms frame grid (counted from the
// mixer's second buffer, its first whole one; every encode has the same), so that a resumed encode's
// packets still fall on the other encodes' grid. `lookahead`: the encoder's
// (called on the streaming thread when it resumes).
void gateEncode(GstPad* pad, std::shared_ptr<EncodeDemand> demand, std::size_t source,
                std::function<GstClockTime()> lookahead);

class AudioSwitch {
public:
    // Counts itself in `demand` (if any) as a user of `source`.
    explicit AudioSwitch(std::size_t source, std::shared_ptr<EncodeDemand> demand = {});

    // Thread: any. From the next packet `source` has that the current one
    // has not sent already. With `cutoff` (a running time), no packet of the
    // current source that ends after it passes any more: from there on it
    // carries the receiver's own voice.
    void select(std::size_t source, GstClockTime cutoff = GST_CLOCK_TIME_NONE);
    // Thread: streaming (the source's encoder). Whether a packet of `source`
    // covering [start, start + duration) (running time) goes to the receiver.
    // A switch waits for a packet of the new source that codes nothing from
    // before it was last fed (EncodeDemand::settledFrom); once the new source
    // has sent one the current source already did, the current one stops.
    bool pass(std::size_t source, GstClockTime start, GstClockTime duration);
    // Thread: main. The receiver is leaving: it uses no encode any more.
    void release();

private:
    void use(std::size_t source, int delta); // under m_mutex
    void takePending();                      // under m_mutex

    std::mutex m_mutex;
    std::shared_ptr<EncodeDemand> m_demand; // null once released
    std::size_t m_current;
    std::optional<std::size_t> m_pending;
    bool m_pendingCaughtUp = false; // the pending source sent a copy of a packet already passed
    GstClockTime m_cutoff = GST_CLOCK_TIME_NONE;
    GstClockTime m_last = GST_CLOCK_TIME_NONE; // start of the last packet passed
};

// Lets through the funnel sink pad `pad` (a receiver's input from `source`)
// only the packets `chooser` passes, judged by their running time.
void watchEncode(GstPad* pad, std::shared_ptr<AudioSwitch> chooser, std::size_t source);

} // namespace tessera::media
