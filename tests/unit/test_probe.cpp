// policy: a probe cluster's verdict through links like the tests' tbf
// bottlenecks (the tier selector's use of it: test_policy.cpp).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <vector>

#include "tessera/policy/probe.h"

using namespace tessera::policy;

namespace {

// tbf: a bucket of `burstBytes` tokens filling at `bps`, and a queue that
// holds what waits for tokens, dropping what does not fit in `limitBytes`
// (tbf's rate x latency + burst). Packets go through in order.
struct TokenBucket {
    std::int64_t bps, burstBytes, limitBytes;
    double tokens = 0; // full when the link has been idle
    std::int64_t lastUs = 0;
    std::int64_t busyUntilUs = 0; // when the queue ahead has drained

    explicit TokenBucket(std::int64_t rate, std::int64_t burst, std::int64_t latencyMs)
        : bps(rate), burstBytes(burst), limitBytes(rate / 8 * latencyMs / 1000 + burst), tokens(burst) {}

    // The arrival time of a packet of `bytes` sent at `sentUs` (1 ms on the
    // wire), none when the queue is full.
    std::optional<std::int64_t> send(std::int64_t sentUs, std::int64_t bytes) {
        const std::int64_t start = std::max(sentUs, busyUntilUs);
        const double queued = static_cast<double>(start - sentUs) * static_cast<double>(bps) / 8e6;
        if (queued + static_cast<double>(bytes) > static_cast<double>(limitBytes)) return std::nullopt;
        tokens = std::min<double>(burstBytes, tokens + static_cast<double>(start - lastUs) * bps / 8e6);
        lastUs = start;
        std::int64_t leaves = start;
        if (tokens >= bytes) {
            tokens -= bytes;
        } else {
            leaves = start + static_cast<std::int64_t>((bytes - tokens) * 8e6 / bps);
            tokens = 0;
            lastUs = leaves;
        }
        busyUntilUs = leaves;
        return leaves + 1000;
    }
};

// On the wire as tbf counts it (with the Ethernet header): 255 bytes of
// padding with RTP (275 bytes), SRTP, UDP, IP; a 24 kbit/s Opus packet,
// every 20 ms.
constexpr std::int64_t kPaddingBytes = 327;
constexpr std::int64_t kPaddingRtpBytes = 275; // what the server paces
constexpr std::int64_t kAudioBytes = 132;

struct Outcome {
    ProbeJudge judge;
    std::size_t sent = 0;
    std::int64_t worstAudioDelayUs = 0; // the most an audio packet waited in the queue
};

// Audio alone for 2 s (the bucket fills), then a cluster at `bps` for
// `params.clusterMs`, paced as the server paces it (at each 20 ms audio
// packet, what is owed by then; at the first after the cluster's end, the
// rest), then audio alone for 2 s more. `jitterUs` moves the arrival of
// every packet of the cluster but its first later (a receiver that was not
// scheduled for a while right after it).
Outcome probeThrough(TokenBucket link, std::int64_t bps, std::int64_t jitterUs = 0, ProbeParams params = {}) {
    Outcome out{ProbeJudge(params)};
    const std::int64_t clusterStart = 2'000'010; // just after an audio packet, as anywhere
    const std::int64_t clusterEnd = clusterStart + params.clusterMsAt(bps) * 1000;
    std::int64_t pacedUntil = clusterStart, paddingSent = 0;
    std::uint16_t seq = 65'530; // wraps inside the cluster
    for (std::int64_t t = 0; t < 4'000'000; t += 20'000) {
        if (t >= clusterStart && pacedUntil < clusterEnd) {
            pacedUntil = std::min(t, clusterEnd);
            while (bps * (pacedUntil - clusterStart) / 8'000'000 - paddingSent >= kPaddingRtpBytes) {
                paddingSent += kPaddingRtpBytes;
                auto arrived = link.send(t, kPaddingBytes);
                if (arrived && out.sent > 0) *arrived += jitterUs;
                out.judge.add({seq++, t, arrived});
                ++out.sent;
            }
        }
        if (const auto arrived = link.send(t, kAudioBytes))
            out.worstAudioDelayUs = std::max(out.worstAudioDelayUs, *arrived - 1000 - t);
    }
    return out;
}

// The default ladder's lowest tier with headroom, as TierSelector::probeBps.
constexpr std::int64_t kLowBps = 172'500;

} // namespace

TEST_CASE("ProbeJudge: a 64 kbit/s link fails a probe at the low tier's rate, and the probe costs the audio "
          "little queue",
          "[policy][probe]") {
    // The [bottleneck] test's link: tbf rate 64kbit burst 16kbit latency 200ms.
    Outcome o = probeThrough(TokenBucket(64'000, 2000, 200), kLowBps);
    INFO("growth " << o.judge.growthUs().value_or(-1) << " us; audio waited up to " << o.worstAudioDelayUs << " us");
    CHECK(o.sent >= 8);
    CHECK(o.judge.lost() == 0);
    CHECK(o.judge.verdict(o.sent) == ProbeVerdict::Failed);
    CHECK(*o.judge.growthUs() > 2 * o.judge.params().maxGrowthUs);
    // Less than the receiver's jitter buffer (webrtcbin's: 200 ms). A trial
    // of the tier filled tbf's queue there: 450 ms.
    CHECK(o.worstAudioDelayUs < 200'000);
}

TEST_CASE("ProbeJudge: a probe for the high tier through a 300 kbit/s link fails, and within what its queue holds",
          "[policy][probe]") {
    // High's 1.725 Mbit/s less low's 150 kbit/s of padding: 6 KB of it, in 30 ms.
    CHECK(ProbeParams{}.clusterMsAt(1'575'000) == 30);
    Outcome o = probeThrough(TokenBucket(300'000, 2000, 200), 1'575'000);
    INFO("sent " << o.sent << ", growth " << o.judge.growthUs().value_or(-1) << " us; audio waited up to "
                 << o.worstAudioDelayUs << " us");
    CHECK(o.judge.lost() == 0);
    CHECK(o.judge.verdict(o.sent) == ProbeVerdict::Failed);
    CHECK(o.worstAudioDelayUs < 200'000);
}

TEST_CASE("ProbeJudge: a queue that grew fails a probe though most of it was dropped", "[policy][probe]") {
    ProbeJudge judge;
    for (std::uint16_t seq = 0; seq < 10; ++seq) {
        const std::int64_t sent = seq * 1000;
        // The first and the last three arrive, the last 120 ms later than the first.
        const bool arrived = seq == 0 || seq >= 7;
        judge.add(
            {seq, sent, arrived ? std::optional<std::int64_t>(sent + 5000 + (seq == 0 ? 0 : 120'000)) : std::nullopt});
    }
    CHECK(judge.lost() == 6);
    CHECK(judge.verdict(10) == ProbeVerdict::Failed);
}

TEST_CASE("ProbeJudge: a cluster sent in one burst is ordered by its sequence numbers, across their wrap",
          "[policy][probe]") {
    // A 20 ms cluster paced at the next audio packet leaves at once; a
    // 300 kbit/s link delivers it a packet every 9 ms.
    ProbeJudge judge;
    for (int i = 0; i < 14; ++i) {
        const auto seq = static_cast<std::uint16_t>(65'530 + i);
        judge.add({seq, 1000, 1000 + 9000 * std::int64_t{i}});
    }
    REQUIRE(judge.growthUs());
    CHECK(*judge.growthUs() == 13 * 9000);
    CHECK(judge.verdict(14) == ProbeVerdict::Failed);
}

TEST_CASE("ProbeJudge: most of a cluster lost with no queue is no verdict", "[policy][probe]") {
    ProbeJudge judge;
    for (std::uint16_t seq = 0; seq < 10; ++seq) {
        const std::int64_t sent = seq * 1000;
        judge.add({seq, sent, seq % 3 == 0 ? std::optional<std::int64_t>(sent + 5000) : std::nullopt});
    }
    CHECK(judge.verdict(10) == ProbeVerdict::Unknown);
}

TEST_CASE("ProbeJudge: links that carry the rate pass, jitter and all", "[policy][probe]") {
    SECTION("unlimited") {
        Outcome o = probeThrough(TokenBucket(1'000'000'000, 1'000'000, 200), kLowBps);
        CHECK(o.judge.verdict(o.sent) == ProbeVerdict::Passed);
        CHECK(*o.judge.growthUs() < 1000);
    }
    SECTION("300 kbit/s with the same burst") {
        Outcome o = probeThrough(TokenBucket(300'000, 2000, 200), kLowBps);
        INFO("growth " << o.judge.growthUs().value_or(-1));
        CHECK(o.judge.verdict(o.sent) == ProbeVerdict::Passed);
    }
    SECTION("a receiver that reads all but the first packet 40 ms late") {
        Outcome o = probeThrough(TokenBucket(1'000'000'000, 1'000'000, 200), kLowBps, 40'000);
        CHECK(o.judge.verdict(o.sent) == ProbeVerdict::Passed);
    }
    SECTION("but not 60 ms late") {
        Outcome o = probeThrough(TokenBucket(1'000'000'000, 1'000'000, 200), kLowBps, 60'000);
        CHECK(o.judge.verdict(o.sent) == ProbeVerdict::Failed);
    }
}

TEST_CASE("ProbeJudge: a link well below the rate but above the audio fails; one nearer it passes (the trial judges "
          "it)",
          "[policy][probe]") {
    // 100 kbit/s cannot carry the low tier and its audio (~230 kbit/s on
    // the wire) either, but its 2 KB burst absorbs most of a 130 ms cluster.
    CHECK(probeThrough(TokenBucket(100'000, 2000, 200), kLowBps).judge.verdict(10) == ProbeVerdict::Passed);
    CHECK(probeThrough(TokenBucket(80'000, 2000, 200), kLowBps).judge.verdict(10) == ProbeVerdict::Failed);
}

TEST_CASE("ProbeJudge: pending until every packet is reported, then judged on what came", "[policy][probe]") {
    ProbeJudge j;
    CHECK(j.verdict(0) == ProbeVerdict::Unknown);
    j.add({1, 0, 5000});
    j.add({2, 20'000, 25'000});
    CHECK(j.verdict(4) == ProbeVerdict::Pending);
    CHECK(j.verdict(2, true) == ProbeVerdict::Passed);  // all of them, in time
    CHECK(j.verdict(4, true) == ProbeVerdict::Unknown); // half of them
    // Reported lost, then arrived: it arrived. The same packet twice counts once.
    j.add({3, 40'000, std::nullopt});
    CHECK(j.lost() == 1);
    j.add({3, 40'000, 45'000});
    j.add({3, 40'000, std::nullopt});
    CHECK(j.lost() == 0);
    CHECK(j.reported() == 3);
    CHECK(j.verdict(3) == ProbeVerdict::Passed);
    // Loss alone says nothing: judged on the delay of what arrived while at
    // least three quarters did, no verdict below that (a lossy link,
    // [tiers][adapt]'s 30 % in bursts, loses padding too; a full one drops
    // the cluster's head).
    j.add({4, 60'000, std::nullopt});
    CHECK(j.verdict(4) == ProbeVerdict::Passed); // three quarters arrived
    j.add({5, 80'000, std::nullopt});
    j.add({6, 100'000, 105'000});
    CHECK(j.verdict(6) == ProbeVerdict::Unknown);
}

TEST_CASE("ProbeJudge: a growth of seconds is a garbled clock, not a verdict", "[policy][probe]") {
    ProbeJudge j;
    j.add({1, 0, 5000});
    j.add({2, 20'000, 20'000 + 64'000 * 16'777'216LL}); // a 24-bit reference-time wrap
    CHECK(j.verdict(2) == ProbeVerdict::Unknown);
}
