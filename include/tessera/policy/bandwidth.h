#pragma once
// BandwidthEstimator: what one receiver's link carries, from transport-wide
// congestion control feedback (what it received against what we sent, the
// delay gradient, loss), in the spirit of GCC's delay- and loss-based
// controllers. Pure policy like TierSelector: every input carries its own
// time (a monotonic clock in ms), so traces replay deterministically in tests.
//
// GStreamer 1.22 has no probing of its own (no padding, no pacer), so above
// what it sends the estimate can only be a guess: it grows while the link is
// clean. Where Tessera sends its own probes (probe.h: at a receiver's start,
// before every up-step and before a trial from audio only, tiers.h) it
// grows no further than what was delivered allows (probingParams), a probe
// that passes raises it (raiseTo) and one that fails caps it (capBelow).
// Without probes the hold and back-off keep the guesses from flapping.
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

namespace tessera::policy {

// One window of transport-wide feedback (webrtcbin's `gst-twcc-stats`, about
// 300 ms of packets).
struct TransportFeedback {
    std::int64_t sentBps = 0;      // what we sent in the window
    std::int64_t deliveredBps = 0; // what the receiver got of it, by its arrival times
    double lossFraction = 0;       // 0..1 of the window's packets
    // Mean growth of the inter-arrival time over the inter-departure time
    // (delta of deltas), in microseconds per packet. Spots garbage
    // (outlierGradientUs), and a queue only where nothing better is read
    // (queueGradientUs): over a window it sums to how much longer
    // the packets took to arrive than to leave, which deliveredBps already
    // says relative to the window, while this mean per packet swings by
    // milliseconds when a window holds a handful of packets (a quiet
    // composite sends ~25 kbit/s; a 4 ms jitter then reads as 1.7 ms/packet).
    std::int64_t delayGradientUs = 0;
    // How much the link's queue grew over the latest packets
    // (QueueGrowth::growthUs), where the per-packet feedback is read (a
    // receiver with link probes); none elsewhere: the gradient then judges
    // (BandwidthParams::queueGradientUs).
    std::optional<std::int64_t> queueGrowthUs = std::nullopt;
};

struct BandwidthParams {
    std::int64_t minBps = 30'000;    // never below (a floor the lowest tier stays under)
    std::int64_t maxBps = 5'000'000; // the start, and never above
    // Congested: delivered below sent by more than this (a queue builds:
    // the packets take longer to arrive than to leave), or loss above
    // lossCongested.
    std::int64_t shortfallPercent = 10;
    double lossCongested = 0.10;
    // Congestion counts only once every window for at least confirmMs and
    // confirmWindows windows says so. One window is not enough: a receiver
    // (or this server) that is not scheduled for a while, as on a busy
    // machine, reads its packets late and in a burst, and a 300 ms window
    // that spans the stall shows delivered below sent although nothing
    // queued on the link (the window after it shows the burst: delivered
    // above sent). A bottleneck keeps saying so.
    std::int64_t confirmMs = 600;
    std::int64_t confirmWindows = 3;
    // On congestion the estimate falls to cutPercent of what was delivered
    // (the mean over the windows that confirmed it; never rises), at most once
    // per cutIntervalMs: the windows after a cut still drain the queue the cut
    // is answering.
    std::int64_t cutPercent = 85;
    std::int64_t cutIntervalMs = 1000;
    // Clean (loss below lossClean, delivered within the shortfall): grows
    // by growPercentPerSecond, compounded.
    double lossClean = 0.02;
    std::int64_t growPercentPerSecond = 25;
    // No feedback for staleMs after some arrived: the feedback path is
    // congested or gone; the estimate halves once per staleMs of silence.
    // Not shorter: a quiet composite on a busy machine left Chromium's
    // feedback silent for 4.1 s on loopback (the encoder sent next to nothing).
    std::int64_t staleMs = 5000;
    // A window whose gradient exceeds this (a 1.22 reference-time wrap) or
    // whose delivered rate exceeds twice the sent one is noise: ignored.
    std::int64_t outlierGradientUs = 200'000;
    // A congested window shows a full link, not a lossy one (lossAlone),
    // when it delivered less than fullPercent of what was sent and a queue
    // grew in it. Loss alone leaves the delay as it was: [tiers][adapt]'s
    // client drops 30 packets in every 100, and its windows delivered
    // 10-30 % of what was sent (the big video packets lost, the small audio
    // ones not).
    //
    // A queue grew: over the latest packets (QueueGrowth) by more than
    // queueGrowthUs, in two windows in a row. A queue filling at twice the
    // link's rate grows by half the time it fills, up to all it holds: the
    // 64 kbit/s [bottleneck] test's windows read +337, +346, +343 ms,
    // [tiers][adapt]'s lossy ones -4.3 to +5.3 ms. A receiver that was not
    // scheduled for a while reads its packets late, but the last of them
    // as they left: a feedback sent amid that burst shows growth that the
    // next one takes back.
    //
    // Where the per-packet feedback is not read, by the window's mean
    // gradient: over queueGradientUs per packet. It is a poor witness on a
    // lossy link: 1.22 counts it only between packets that both arrived,
    // and over the handful of packets a lossy window keeps, jitter reads as
    // milliseconds (2.3 ms once in [tiers][adapt] under ASan, which would
    // make the next cut a full link's and send the receiver to audio only
    // for the rest of the loss), while tbf's queue filling read 62, 45,
    // once only 10.7 ms and once nothing above 0.
    std::int64_t fullPercent = 50;
    std::int64_t queueGrowthUs = 30'000;
    std::int64_t queueGradientUs = 1000;
    // Where the tier selector probes (TierParams::probe), the estimate is
    // what the link has carried or a probe proved, not a guess: it starts
    // at startBps (the lowest video tier's need: the receiver starts on
    // it) instead of maxBps, and clean windows grow it to at most
    // deliveredBoundPercent of what they delivered (as GCC bounds its
    // estimate by the acknowledged rate). 0: no bound (it grows blind, the
    // hold and back-off keep the guesses from flapping).
    std::optional<std::int64_t> startBps;
    std::int64_t deliveredBoundPercent = 0;
};

// The parameters where the tier selector probes: the estimate starts at
// `startBps` and grows to at most 150 % of what was delivered.
BandwidthParams probingParams(std::int64_t startBps);

// How much the queue on a receiver's link grew over the packets sent in the
// latest windowUs, from the per-packet arrival times of its transport-cc
// feedback: the sum of each packet's delay change from the packet that
// arrived before it (its delay, that is, less the first one's). A queue
// that fills stays in the sum for windowUs: long enough for the feedback
// windows of a narrow link, 0.5 s apart, to see it twice. A receiver's
// stall does not (what it read late ends with packets that arrived as they
// left). A step over garbledUs is no queue's (one packet's time on a
// 40 kbit/s link is 240 ms) but 1.22 misreading a feedback's reference
// time, or a long stall's first late packet: skipped, so a feedback
// shifted by seconds shifts nothing.
class QueueGrowth {
public:
    explicit QueueGrowth(std::int64_t windowUs = 2'000'000, std::int64_t garbledUs = 250'000)
        : m_windowUs(windowUs), m_garbledUs(garbledUs) {}

    // A packet that arrived: when we sent it (our clock) and when it arrived
    // (the receiver's). One sent before the latest added (reported late) is
    // ignored.
    void add(std::int64_t sentUs, std::int64_t arrivedUs);

    std::int64_t growthUs() const;

private:
    std::int64_t m_windowUs, m_garbledUs;
    std::deque<std::pair<std::int64_t, std::int64_t>> m_steps; // (sent, delay change), oldest first
    std::optional<std::int64_t> m_lastSentUs, m_lastDelayUs;
};

class BandwidthEstimator {
public:
    explicit BandwidthEstimator(BandwidthParams params = {});

    // A new feedback window. Timestamps must not go back. Returns false when
    // the window was ignored as an outlier.
    bool onFeedback(const TransportFeedback& feedback, std::int64_t nowMs);

    // At least `bps` from now on (within min and max): what a trial or a
    // probe proved the link carries while the estimate, app-limited, could
    // not grow (TierSelector::provenBps). Before any feedback too.
    void raiseTo(std::int64_t bps, std::int64_t nowMs);

    // Below `bps` from now on (cutPercent of it, as a congestion cut): a
    // probe showed the link does not carry it (TierSelector::refutedBps).
    // Before any feedback too: the probe is the first word on the link.
    void capBelow(std::int64_t bps, std::int64_t nowMs);

    // The estimate in bits/s at nowMs (silence counted): nothing before the
    // first feedback (the client negotiated none, or none arrived yet).
    std::optional<std::int64_t> estimate(std::int64_t nowMs);

    // Why the estimate last moved (for logs and the API). Suspect: a
    // congested window whose run is not confirmed yet (confirmMs).
    enum class Signal { None, Clean, Hold, Suspect, Congested, Stale };
    Signal lastSignal() const { return m_signal; }

    // The latest cut answered loss alone: no window since the last clean
    // one showed a full link (fullPercent). A full link
    // delivers what it carries whatever is sent (a 64 kbit/s link sent
    // 1.5 Mbit/s delivers 4 %), a lossy one most of what is sent, so its
    // cuts only follow what an app-limited sender happened to send: the
    // estimate may then sit below a tier the link carries (TierInput).
    bool lossAlone() const { return m_lossAlone; }

private:
    void start(std::int64_t nowMs); // the estimate a first feedback would set, if none yet
    void cut(std::int64_t toBps, std::int64_t nowMs);

    BandwidthParams m_params;
    std::optional<std::int64_t> m_estimate;
    std::optional<std::int64_t> m_lastFeedbackMs, m_lastCutMs, m_lastGrowMs;
    // The run of congested windows not yet confirmed (confirmMs): since when,
    // and what they delivered.
    std::optional<std::int64_t> m_congestedSince;
    std::int64_t m_congestedDelivered = 0, m_congestedWindows = 0;
    std::int64_t m_staleSince = 0; // start of the silence already charged for
    Signal m_signal = Signal::None;
    bool m_fullSinceClean = false; // a window since the last clean one showed a full link
    int m_queuedWindows = 0;       // windows in a row whose queue grew (queueGrowthUs)
    bool m_lossAlone = false;
};

} // namespace tessera::policy
