#pragma once
// ProbeJudge: whether a receiver's link carries a bit rate it is not being
// sent, from a short cluster of padding sent at that rate. Pure policy like
// TierSelector: every packet carries its own times.
//
// A receiver on the audio-only tier for its link's sake is sent ~30 kbit/s;
// to learn whether the link now carries the lowest video tier, something
// must be sent at that tier's rate. A trial of the tier itself (TierSelector)
// sends its key frame and frames until feedback says no, and on a link that
// still cannot carry it the queue that builds meanwhile delays the audio past
// the receiver's jitter buffer (the 64 kbit/s [bottleneck] test: gaps of
// 450-800 ms, with feedback every 0.4-0.6 s from a GStreamer receiver). A
// probe sends a fixed, small amount at the rate instead: on a link that
// carries it the packets arrive as they left; on one that does not, a queue
// builds during the cluster and the last packets arrive later than the first
// by the time the link needs to drain what the cluster put in it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>

namespace tessera::policy {

// One packet of a probe cluster as the receiver's transport-cc feedback
// reported it.
struct ProbePacket {
    std::uint16_t seq = 0;                 // transport-wide sequence number
    std::int64_t sentUs = 0;               // when we sent it, our clock
    std::optional<std::int64_t> arrivedUs; // when it arrived, the receiver's clock; none: lost
};

enum class ProbeVerdict {
    Pending, // not all of the cluster reported yet
    Passed,  // the link carries the rate
    Failed,  // it does not
    Unknown, // the feedback says nothing usable (too little of it, or garbled)
};

struct ProbeParams {
    // How long a cluster is sent. Short on purpose: what the cluster puts
    // in a slow link's queue delays the audio behind it, and must stay under
    // the receiver's jitter buffer (webrtcbin's: 200 ms). But what a link
    // with a token bucket lets through at once (tbf's burst, 2 KB in the
    // tests) does not queue, so the cluster must be longer than that to
    // show anything. 130 ms at the default low tier's 172.5 kbit/s (with
    // headroom) through the [bottleneck] test's 64 kbit/s link
    // (test_probe.cpp's model of it, which matched the test's measured
    // 345 ms at 200 ms): the last packet arrives 138 ms later than the
    // first, the audio waits at most 154 ms, where a trial of the tier
    // fills tbf's queue (450 ms). A link nearer the rate (100 kbit/s, also
    // too slow for the tier) absorbs the cluster in its burst and passes:
    // the probe screens out links far too slow, the trial still judges.
    std::int64_t clusterMs = 130;
    // And at most this many bytes: a probe for a higher tier sends at up to
    // ten times that rate, and 130 ms of it (25 KB for the default high
    // tier from low) overflows a narrow link's queue (tbf's 200 ms at
    // 300 kbit/s: 7.5 KB and its burst), dropping the video behind it (a
    // joiner's first key frame went so: 2 s without a picture in the
    // [bottleneck] test). 6 KB still queues 110 ms at 300 kbit/s (a clear
    // failure), and a link much nearer the rate passes as above.
    std::int64_t maxClusterBytes = 6000;
    // How long a cluster at `bps` is sent: clusterMs, or less within maxClusterBytes.
    std::int64_t clusterMsAt(std::int64_t bps) const {
        return bps <= 0 ? clusterMs : std::min(clusterMs, maxClusterBytes * 8000 / bps);
    }
    // The last packet may arrive this much later than the first, relative
    // to when each was sent, and the link still carries the rate (on a free
    // link it was 0 in every probe of the [bottleneck] runs, under the
    // ASan server too).
    std::int64_t maxGrowthUs = 50'000;
    // Feedback on a cluster comes within this long of its end, or never
    // (the verdict is then Unknown). A GStreamer receiver sends it at the
    // next RTCP it may send early: 0.6-2.5 s in the [bottleneck] test.
    std::int64_t verdictMs = 5000;
    // A growth beyond this is a garbled clock (GStreamer 1.22 mishandles the
    // 24-bit reference-time wrap), not a queue.
    std::int64_t garbledUs = 5'000'000;
};

class ProbeJudge {
public:
    explicit ProbeJudge(ProbeParams params = {}) : m_params(params) {}

    // Feedback on one of the cluster's packets. A later report of the same
    // packet replaces the earlier (reported lost, then arrived late).
    void add(const ProbePacket& packet);

    // The verdict on a cluster of `sent` packets. Pending until feedback on
    // all of them came; `final` (verdictMs went by) judges on what did.
    // Failed when the packets that arrived show a queue (maxGrowthUs),
    // however many were lost; otherwise Unknown with more than a quarter
    // missing.
    ProbeVerdict verdict(std::size_t sent, bool final = false) const;

    // For the log: how much later the last packet arrived than the first,
    // relative to their sending (none before two arrived), and how many were
    // reported and lost.
    std::optional<std::int64_t> growthUs() const;
    // How long the cluster took to leave, by the sending times reported (0
    // before any), for the log: a cluster that leaves much slower or faster
    // than its length says what it probed is not its rate (peer_probe.cpp).
    std::int64_t sendSpanUs() const;
    std::size_t reported() const { return m_packets.size(); }
    std::size_t lost() const;
    const ProbeParams& params() const { return m_params; }

private:
    ProbeParams m_params;
    std::map<std::uint16_t, ProbePacket> m_packets; // by seq
};

} // namespace tessera::policy
