// policy: the bandwidth estimate from transport-wide feedback, and the tier it
// picks, on explicit timestamps and link traces like the ones a tbf
// bottleneck produces.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>

#include "tessera/policy/bandwidth.h"
#include "tessera/policy/tiers.h"

using namespace tessera::policy;

namespace {

constexpr std::int64_t kWindow = 250; // ms between feedback windows, like the server's poll

TransportFeedback clean(std::int64_t bps) { return {bps, bps, 0.0, 0}; }

} // namespace

TEST_CASE("BandwidthEstimator: nothing before feedback, then the maximum", "[policy][bwe]") {
    BandwidthEstimator e;
    CHECK_FALSE(e.estimate(0));
    CHECK_FALSE(e.estimate(60'000)); // no feedback is no estimate, not silence
    REQUIRE(e.onFeedback(clean(1'000'000), 60'000));
    CHECK(e.estimate(60'000) == BandwidthParams{}.maxBps);
}

TEST_CASE("BandwidthEstimator: a failed probe caps the estimate below its rate, feedback or not", "[policy][bwe]") {
    BandwidthEstimator e;
    SECTION("before any feedback: the probe is the first word on the link") {
        e.capBelow(1'725'000, 60'000);
        CHECK(e.estimate(60'000) == 1'466'250); // 85 %, as a congestion cut
        // The first feedback neither resets it nor finds it stale.
        e.onFeedback(clean(200'000), 60'100);
        CHECK(e.estimate(60'100) == 1'466'250);
    }
    SECTION("after: it only ever lowers the estimate, and growth starts again from the next clean window") {
        e.onFeedback(clean(200'000), 0);
        e.onFeedback(clean(200'000), 1000);
        e.capBelow(690'000, 1000);
        CHECK(e.estimate(1000) == 586'500);
        e.capBelow(1'725'000, 1100);
        CHECK(e.estimate(1100) == 586'500);
        e.onFeedback(clean(200'000), 1200);
        CHECK(e.estimate(1200) == 586'500);
        e.onFeedback(clean(200'000), 2200);
        CHECK(e.estimate(2200) == 733'125); // 25 % in the second since
    }
}

TEST_CASE("BandwidthEstimator: a bottleneck cuts to 85 % of what was delivered", "[policy][bwe]") {
    BandwidthEstimator e;
    e.onFeedback(clean(1'500'000), 0);
    // A 300 kbit/s tbf under 1.5 Mbit/s: a fifth arrives, the rest overflows.
    // Suspect until three windows over 600 ms say so, then cut.
    e.onFeedback({1'500'000, 300'000, 0.8, 400}, kWindow);
    e.onFeedback({1'500'000, 280'000, 0.8, 400}, 2 * kWindow);
    e.onFeedback({1'500'000, 320'000, 0.8, 400}, 3 * kWindow);
    CHECK(e.lastSignal() == BandwidthEstimator::Signal::Suspect);
    CHECK(e.estimate(3 * kWindow) == 5'000'000);
    e.onFeedback({1'500'000, 300'000, 0.8, 400}, 3 * kWindow + 100);
    CHECK(e.lastSignal() == BandwidthEstimator::Signal::Congested);
    CHECK(e.estimate(3 * kWindow + 100) == 255'000); // the mean of the four
    const std::int64_t cutAt = 3 * kWindow + 100;
    SECTION("the windows right after a cut drain the same queue: no second cut") {
        for (std::int64_t t = cutAt + 100; t < cutAt + 1000; t += 100) e.onFeedback({1'500'000, 100'000, 0.9, 400}, t);
        CHECK(e.estimate(cutAt + 900) == 255'000);
    }
    SECTION("a congested run a cut interval later cuts again, never up") {
        for (std::int64_t t = cutAt + 100; t <= cutAt + 1000; t += 100) e.onFeedback({1'500'000, 100'000, 0.9, 400}, t);
        CHECK(e.estimate(cutAt + 1000) == 85'000);
        for (std::int64_t t = cutAt + 1100; t <= cutAt + 3000; t += 100) e.onFeedback({200'000, 170'000, 0.1, 0}, t);
        CHECK(e.estimate(cutAt + 3000) == 85'000);
    }
}

// Windows recorded from Chromium 156 on loopback, three pages in a room, load
// 31 on the 2 cores (e2e "three Chromium pages"): each of these alone cut the
// estimate to the floor before, and the pages stayed on the low tier.
TEST_CASE("BandwidthEstimator: a busy receiver's windows are not congestion (recorded)", "[policy][bwe]") {
    BandwidthEstimator e;
    std::int64_t t = 0;
    e.onFeedback({57'197, 57'554, 0.0, -411}, t);
    SECTION("a gradient with everything delivered, a handful of packets a window") {
        for (const TransportFeedback& w :
             {TransportFeedback{24'224, 24'127, 0.0, 1671}, TransportFeedback{50'919, 47'848, 0.0, 1791},
              TransportFeedback{74'888, 74'771, 0.0, 2085}, TransportFeedback{12'400, 13'107, 0.0, 3388}}) {
            CHECK(e.onFeedback(w, t += 120));
            CHECK(e.lastSignal() == BandwidthEstimator::Signal::Clean);
        }
    }
    SECTION("a stall: one window short, the next a burst above what was sent") {
        CHECK(e.onFeedback({33'531, 24'774, 0.0, 38'797}, t += 120));
        CHECK(e.lastSignal() == BandwidthEstimator::Signal::Suspect);
        CHECK(e.onFeedback({12'956, 3'548, 0.0, 100'435}, t += 120));
        CHECK(e.onFeedback({18'739, 18'506, 0.0, 205}, t += 120));
        CHECK(e.lastSignal() == BandwidthEstimator::Signal::Clean);
        CHECK_FALSE(e.onFeedback({159'329, 949'428, 0.0, -24'314}, t += 120)); // the burst: an outlier
    }
    SECTION("sparse windows a second apart, each a little short") {
        e.onFeedback({73'089, 65'113, 0.0, 4739}, t += 1000);
        e.onFeedback({73'217, 63'684, 0.0, 8177}, t += 1000);
        CHECK(e.lastSignal() == BandwidthEstimator::Signal::Suspect);
        e.onFeedback({30'424, 32'656, 0.0, -2702}, t += 400);
    }
    CHECK(e.estimate(t) == BandwidthParams{}.maxBps);
}

TEST_CASE("BandwidthEstimator: grows 25 %/s while clean, holds on light loss", "[policy][bwe]") {
    BandwidthEstimator e;
    e.onFeedback(clean(1'500'000), 0);
    std::int64_t t = 0;
    while (e.lastSignal() != BandwidthEstimator::Signal::Congested)
        e.onFeedback({1'500'000, 300'000, 0.8, 0}, t += kWindow);
    REQUIRE(e.estimate(t) == 255'000);
    // The first clean window starts the clock; a second of growth after it.
    for (int i = 0; i < 5; ++i) e.onFeedback(clean(200'000), t += kWindow);
    CHECK(e.lastSignal() == BandwidthEstimator::Signal::Clean);
    CHECK(*e.estimate(t) == Approx(255'000 * 1.25).epsilon(0.001));
    // 5 % loss: neither congested nor clean; the estimate stays.
    e.onFeedback({200'000, 190'000, 0.05, 0}, t += kWindow);
    CHECK(e.lastSignal() == BandwidthEstimator::Signal::Hold);
    const auto held = e.estimate(t);
    e.onFeedback({200'000, 190'000, 0.05, 0}, t += kWindow);
    CHECK(e.estimate(t) == held);
    // Growth restarts from the next clean window: the lossy time earns none.
    e.onFeedback(clean(200'000), t += 5000);
    CHECK(e.estimate(t) == held);
    for (int i = 0; i < 400; ++i) e.onFeedback(clean(200'000), t += kWindow);
    CHECK(e.estimate(t) == BandwidthParams{}.maxBps);
}

TEST_CASE("BandwidthEstimator: silence after feedback is congestion", "[policy][bwe]") {
    BandwidthEstimator e;
    e.onFeedback(clean(1'000'000), 0);
    CHECK(e.estimate(4999) == 5'000'000);
    CHECK(e.estimate(5000) == 2'500'000);
    CHECK(e.lastSignal() == BandwidthEstimator::Signal::Stale);
    CHECK(e.estimate(9999) == 2'500'000);
    CHECK(e.estimate(15'000) == 625'000); // two more periods at once
    CHECK(e.estimate(3'600'000) == BandwidthParams{}.minBps);
    // Feedback again: it grows back from there, no faster.
    e.onFeedback(clean(30'000), 3'600'100);
    e.onFeedback(clean(30'000), 3'601'100);
    CHECK(*e.estimate(3'601'100) == Approx(37'500).epsilon(0.001));
}

TEST_CASE("BandwidthEstimator: a cut on loss alone is told from a full link's", "[policy][bwe]") {
    // Windows every 100 ms from `from` (exclusive) to `to` (inclusive).
    auto windows = [](BandwidthEstimator& e, std::int64_t from, std::int64_t to, TransportFeedback f) {
        for (std::int64_t t = from + 100; t <= to; t += 100) e.onFeedback(f, t);
    };
    BandwidthEstimator e;
    e.onFeedback(clean(1'000'000), 0);
    CHECK_FALSE(e.lossAlone());
    // 30 % lost, the rest on time: 70 % delivered. A cut, on loss alone.
    windows(e, 0, 1000, {1'000'000, 700'000, 0.3, 0});
    CHECK(e.estimate(1000) == 595'000);
    CHECK(e.lossAlone());
    SECTION("a full link: under half delivered, and a queue, in any window since the last clean one") {
        windows(e, 1000, 1100, clean(600'000));
        // A third delivered, two thirds lost amid the window: no queue, still loss alone.
        e.onFeedback({600'000, 200'000, 0.67, 0}, 1150);
        // A quarter delivered and the delay growing: a queue filled.
        e.onFeedback({600'000, 150'000, 0.6, 2000}, 1200);
        windows(e, 1200, 2200, {600'000, 400'000, 0.3, 0});
        CHECK(e.estimate(2200) < 595'000);
        CHECK_FALSE(e.lossAlone());
        // Clean windows do not change what the latest cut answered.
        windows(e, 2200, 4000, clean(300'000));
        CHECK_FALSE(e.lossAlone());
    }
    SECTION("bursts of loss amid windows: a third delivered, two thirds lost, the pace kept: loss alone") {
        windows(e, 1000, 1100, clean(600'000));
        windows(e, 1100, 2200, {600'000, 200'000, 0.67, 0});
        CHECK(e.estimate(2200) < 595'000);
        CHECK(e.lossAlone());
        // Measured in [tiers][adapt]: big video packets lost, small audio ones not.
        windows(e, 2200, 3300, {240'489, 38'027, 0.75, -13});
        CHECK(e.lossAlone());
    }
    SECTION("growth keeps the cut's cause; silence is no loss") {
        windows(e, 1000, 4000, clean(600'000));
        CHECK(e.estimate(4000) > 595'000);
        CHECK(e.lossAlone());
        CHECK(e.estimate(9100) < 595'000);
        CHECK_FALSE(e.lossAlone());
    }
}

TEST_CASE("QueueGrowth: a queue that fills stays in the sum; a stall, jitter and a garbled feedback do not",
          "[policy][bwe]") {
    // Packets every 10 ms; `delay` is each one's time on the way, plus a
    // clock offset between the two ends that must cancel out.
    constexpr std::int64_t kOffset = 7'000'000'000;
    const auto send = [](QueueGrowth& q, std::int64_t fromUs, int n, auto delay) {
        for (int i = 0; i < n; ++i) {
            const std::int64_t sent = fromUs + i * 10'000;
            q.add(sent, sent + kOffset + delay(i));
        }
    };
    QueueGrowth q;
    CHECK(q.growthUs() == 0);
    SECTION("a steady delay with jitter: nothing") {
        send(q, 0, 300, [](int i) { return 20'000 + (i % 3) * 1000; });
        CHECK(std::llabs(q.growthUs()) <= 2000);
    }
    SECTION("a queue filling at twice the link's rate, then full: its 200 ms, for the window's 2 s") {
        send(q, 0, 50, [](int) { return 20'000; });
        send(q, 500'000, 40, [](int i) { return 20'000 + std::min(i * 5000, 200'000); });
        CHECK(q.growthUs() == 195'000);
        send(q, 900'000, 100, [](int) { return 220'000; }); // full: drops, the delay stays
        CHECK(q.growthUs() == 200'000);
        send(q, 1'900'000, 150, [](int) { return 220'000; });
        CHECK(q.growthUs() == 0); // filled more than 2 s before the latest packet
    }
    SECTION("a stall: late packets read in a burst, the last as it left") {
        send(q, 0, 50, [](int) { return 20'000; });
        send(q, 500'000, 10, [](int i) { return 20'000 + 100'000 - i * 10'000; });
        CHECK(std::llabs(q.growthUs()) <= 10'000);
    }
    SECTION("a feedback shifted by seconds (1.22's reference time), and a reported-late packet") {
        send(q, 0, 50, [](int) { return 20'000; });
        send(q, 500'000, 5, [](int) { return 20'000 + 5'000'000; });
        CHECK(q.growthUs() == 0);
        send(q, 550'000, 5, [](int) { return 20'000 - 3'000'000; });
        CHECK(q.growthUs() == 0);
        send(q, 600'000, 50, [](int) { return 20'000; });
        q.add(560'000, 560'000 + kOffset + 900'000); // sent before the latest: ignored
        CHECK(q.growthUs() == 0);
    }
}

TEST_CASE("BandwidthEstimator: per-packet queue growth tells a full link from a lossy one", "[policy][bwe]") {
    const auto windows = [](BandwidthEstimator& e, std::int64_t from, std::int64_t to, TransportFeedback f) {
        for (std::int64_t t = from + 100; t <= to; t += 100) e.onFeedback(f, t);
    };
    BandwidthEstimator e;
    e.onFeedback(clean(1'000'000), 0);
    // A lossy link's windows: a tenth delivered, whatever the gradient says;
    // where the queue did not grow, the cut answered loss alone.
    TransportFeedback lossy{600'000, 60'000, 0.9, 45'000};
    lossy.queueGrowthUs = 2000;
    windows(e, 0, 1000, lossy);
    CHECK(e.estimate(1000) < 5'000'000);
    CHECK(e.lossAlone());
    SECTION("a queue in one window only (a feedback amid a stall's burst): still loss alone") {
        TransportFeedback burst = lossy;
        burst.queueGrowthUs = 100'000;
        e.onFeedback(burst, 1100);
        windows(e, 1100, 2200, lossy);
        CHECK(e.lossAlone());
    }
    SECTION("a queue in two windows in a row: a full link") {
        TransportFeedback full = lossy;
        full.queueGrowthUs = 200'000;
        windows(e, 1000, 1200, full);
        windows(e, 1200, 2200, lossy);
        CHECK_FALSE(e.lossAlone());
    }
}

TEST_CASE("BandwidthEstimator: outlier windows are ignored", "[policy][bwe]") {
    BandwidthEstimator e;
    e.onFeedback(clean(1'000'000), 0);
    // The 24-bit reference time wrapping in 1.22: a gradient of seconds.
    CHECK_FALSE(e.onFeedback({1'000'000, 1'000'000, 0.0, 16'000'000}, kWindow));
    CHECK_FALSE(e.onFeedback({1'000'000, 3'000'000, 0.0, 0}, 2 * kWindow));
    CHECK_FALSE(e.onFeedback({-1, 0, 0.0, 0}, 3 * kWindow));
    // Every packet arrived and nothing was delivered: the arrival times
    // went back (1.22; "sent=68571 recv=0 loss=0.000 dod=-233095us" in
    // [tiers][adapt], which failed the trial that followed the loss).
    CHECK_FALSE(e.onFeedback({68'571, 0, 0.0, -197'186}, 3 * kWindow + 50));
    CHECK(e.estimate(3 * kWindow) == 5'000'000);
    // An ignored window is no feedback: the silence still counts.
    CHECK(e.estimate(5000) == 2'500'000);
    // A window with nothing sent is feedback, but nothing to judge.
    CHECK(e.onFeedback({0, 0, 0.0, 0}, 5100));
    CHECK(e.estimate(10'000) == 2'500'000);
}

// A link of `capacityBps` (none: unlimited) carrying the tier's bit rate plus
// audio, as the feedback would show it: what does not fit is lost and the
// queue grows while it overflows. Jitter from a fixed seed.
// `randomLoss` (0..1) drops packets anywhere in the window, whatever the rate
// (the client's simulated loss), with no queue.
// The first window of an overflow fills the queue (tbf's 200 ms): what
// arrives is spread over 500 ms for the 300 ms it took to send, and less is
// lost; then the full queue drops what does not fit, with no more delay.
struct Link {
    std::optional<std::int64_t> capacityBps;
    double randomLoss = 0;
    bool overflowing = false;
    std::mt19937 random{12};
    TransportFeedback carry(std::int64_t sentBps) {
        std::uniform_int_distribution<std::int64_t> jitter(-sentBps / 20, sentBps / 20);
        const std::int64_t sent = sentBps + jitter(random);
        const bool filling = !overflowing;
        overflowing = capacityBps && sent > *capacityBps;
        if (!overflowing)
            return {sent, static_cast<std::int64_t>(static_cast<double>(sent) * (1 - randomLoss)), randomLoss, 0};
        const std::int64_t delivered = *capacityBps + jitter(random) / 4;
        const double arrived = static_cast<double>(delivered) / static_cast<double>(sent) * (filling ? 5.0 / 3 : 1.0);
        return {sent, delivered, std::max(0.0, 1.0 - arrived), 2000};
    }
};

// The server's glue (peer_bwe.cpp, peer_tiers.cpp, peer_probe.cpp): each
// window's verdict and the estimate go to the selector, a passed trial raises
// the estimate, a failed probe caps it. With probes, a wanted probe is judged
// at the next window: it passes when the link carries what is sent plus the
// padding (the receiver's feedback on a cluster comes within a window).
struct Receiver {
    explicit Receiver(bool probing = false)
        : estimator(probing ? probingParams(172'500) : BandwidthParams{}), tiers(defaultTiers(), params(probing)) {}
    static TierParams params(bool probing) {
        TierParams p;
        p.probe = probing;
        return p;
    }

    BandwidthEstimator estimator;
    TierSelector tiers;
    int switches = 0;
    int probes = 0, failedProbes = 0;
    // Whether the client sends feedback on audio alone (Chromium does; a
    // GStreamer client only at Opus's rare marker bits, Firefox never).
    bool audioFeedback = true;
    bool probing = false; // a cluster went out at the latest window
    void window(Link& link, std::int64_t now) {
        const std::int64_t audio = 40'000;
        if (probing) {
            probing = false;
            const std::int64_t needs = tiers.current().bitrate + audio + tiers.probeBps();
            const bool carried = !link.capacityBps || *link.capacityBps >= needs;
            failedProbes += carried ? 0 : 1;
            tiers.probeResult(carried ? ProbeVerdict::Passed : ProbeVerdict::Failed);
        }
        std::optional<bool> congested;
        const TransportFeedback feedback = link.carry(tiers.current().bitrate + audio);
        if ((!tiers.audioOnly() || audioFeedback) && estimator.onFeedback(feedback, now)) {
            if (estimator.lastSignal() == BandwidthEstimator::Signal::Congested ||
                estimator.lastSignal() == BandwidthEstimator::Signal::Suspect)
                congested = true;
            if (estimator.lastSignal() == BandwidthEstimator::Signal::Clean) congested = false;
        }
        TierInput input{std::nullopt, estimator.estimate(now), std::nullopt};
        input.linkCongested = congested;
        input.estimateFromLossAlone = estimator.lossAlone();
        switches += tiers.update(input, now) ? 1 : 0;
        if (const auto proven = tiers.provenBps()) estimator.raiseTo(*proven, now);
        if (const auto refuted = tiers.refutedBps()) estimator.capBelow(*refuted, now);
        if (tiers.probeWanted()) {
            probing = true;
            ++probes;
        }
    }
};

// The limit goes: how long until the receiver is on the high tier again (60 s
// at most); then a minute on the clean link, in which it must not flap.
std::int64_t backToHigh(Receiver& r, Link& link, std::int64_t& t) {
    link.capacityBps.reset();
    const std::int64_t lifted = t;
    while (r.tiers.current().name != "high" && t < lifted + 60'000) r.window(link, t += kWindow);
    const std::int64_t took = t - lifted;
    r.switches = 0;
    for (const std::int64_t end = t + 60'000; t < end; t += kWindow) r.window(link, t);
    CHECK(r.switches == 0);
    return took;
}

TEST_CASE("A 300 kbit/s bottleneck: low within 3 s, few trials, high again when it goes", "[policy][bwe]") {
    Receiver r;
    Link link;
    std::int64_t t = 0;
    for (; t < 10'000; t += kWindow) r.window(link, t);
    REQUIRE(r.tiers.current().name == "high");
    REQUIRE(r.switches == 0);

    link.capacityBps = 300'000;
    const std::int64_t limited = t;
    std::optional<std::int64_t> low;
    for (; t < limited + 3000; t += kWindow) {
        r.window(link, t);
        if (!low && r.tiers.current().name == "low") low = t;
    }
    REQUIRE(low);
    CHECK(*low - limited <= 1000);

    // Two minutes on the limited link: each failed trial of a higher tier
    // doubles the wait before the next, so the low tier is left only a few
    // times (a trial and its step back are two switches).
    r.switches = 0;
    std::int64_t onLow = 0;
    for (; t < limited + 120'000; t += kWindow) {
        r.window(link, t);
        if (r.tiers.current().name == "low") onLow += kWindow;
    }
    CHECK(r.switches <= 10);
    CHECK(onLow >= 110'000);

    // The limit goes: back to high within 20 s (whatever the back-off reached).
    link.capacityBps.reset();
    const std::int64_t lifted = t;
    std::optional<std::int64_t> high;
    for (; t < lifted + 60'000; t += kWindow) {
        r.window(link, t);
        if (!high && r.tiers.current().name == "high") high = t;
    }
    REQUIRE(high);
    CHECK(*high - lifted <= 25'000);
    CHECK(r.tiers.current().name == "high");
}

TEST_CASE("A short bottleneck: back to high within 15 s of its end", "[policy][bwe]") {
    Receiver r;
    Link link;
    std::int64_t t = 0;
    for (; t < 5000; t += kWindow) r.window(link, t);
    link.capacityBps = 300'000;
    for (; t < 12'000; t += kWindow) r.window(link, t);
    REQUIRE(r.tiers.current().name == "low");
    CHECK(backToHigh(r, link, t) <= 15'000);
}

TEST_CASE("With probes, a 300 kbit/s bottleneck: low within 3 s, no up-step while it lasts, high within 15 s of its "
          "end",
          "[policy][bwe][probe]") {
    Receiver r(true);
    Link link;
    std::int64_t t = 0;
    // The start on the lowest tier, and up once the first probe passed.
    r.window(link, t);
    CHECK(r.tiers.current().name == "low");
    CHECK(r.tiers.probeWanted());
    r.window(link, t += kWindow);
    CHECK(r.tiers.current().name == "high");
    for (; t < 10'000; t += kWindow) r.window(link, t);
    REQUIRE(r.tiers.current().name == "high");
    REQUIRE(r.switches == 2);
    REQUIRE(r.probes == 1);

    link.capacityBps = 300'000;
    const std::int64_t limited = t;
    while (r.tiers.current().name != "low" && t < limited + 10'000) r.window(link, t += kWindow);
    CHECK(t - limited <= 3000);

    // Two minutes: the estimate grows blind between probes, each probe fails
    // (no up-step: the link never sees a higher tier's key frame), and they
    // come at most every 5 s, then every 10 s.
    r.switches = 0;
    r.probes = 0;
    r.failedProbes = 0;
    for (const std::int64_t end = t + 120'000; t < end; t += kWindow) r.window(link, t);
    CHECK(r.switches == 0);
    CHECK(r.probes >= 6);
    CHECK(r.probes <= 14);
    CHECK(r.failedProbes == r.probes);
    CHECK(backToHigh(r, link, t) <= 15'000);
}

TEST_CASE("With probes, a joiner behind 300 kbit/s starts on the lowest tier and stays there", "[policy][bwe][probe]") {
    Receiver r(true);
    Link link;
    link.capacityBps = 300'000;
    std::int64_t t = 0;
    for (; t < 60'000; t += kWindow) {
        r.window(link, t);
        CHECK(r.tiers.current().name == "low");
    }
    CHECK(r.switches == 1); // the start
    CHECK(r.failedProbes == r.probes);
    CHECK(r.probes >= 3);
}

TEST_CASE("TierSelector: a failed up-step doubles the hold of that tier and above", "[policy][bwe]") {
    TierSelector s;
    s.update({std::nullopt, 300'000, std::nullopt}, 0);
    REQUIRE(s.current().name == "low");
    // Medium fits from 1000: up after 5 s.
    s.update({std::nullopt, 700'000, std::nullopt}, 1000);
    CHECK(s.update({std::nullopt, 700'000, std::nullopt}, 6000));
    REQUIRE(s.current().name == "medium");
    // It congests at once: down, and the next try waits 10 s.
    CHECK(s.update({std::nullopt, 300'000, std::nullopt}, 7000));
    s.update({std::nullopt, 2'000'000, std::nullopt}, 8000);
    CHECK_FALSE(s.update({std::nullopt, 2'000'000, std::nullopt}, 17'999));
    CHECK(s.update({std::nullopt, 2'000'000, std::nullopt}, 18'000));
    CHECK(s.current().name == "high");
    SECTION("holding it restores the hold") {
        s.update({std::nullopt, 2'000'000, std::nullopt}, 28'000);
        s.update({std::nullopt, 300'000, std::nullopt}, 30'000);
        s.update({std::nullopt, 2'000'000, std::nullopt}, 31'000);
        CHECK(s.update({std::nullopt, 2'000'000, std::nullopt}, 36'000));
    }
    SECTION("failing again doubles it again, up to four times") {
        // High fails too: its hold is 20 s now, medium's still 10 s.
        s.update({std::nullopt, 300'000, std::nullopt}, 19'000);
        s.update({std::nullopt, 2'000'000, std::nullopt}, 20'000);
        CHECK_FALSE(s.update({std::nullopt, 2'000'000, std::nullopt}, 29'999));
        CHECK(s.update({std::nullopt, 2'000'000, std::nullopt}, 30'000));
        CHECK(s.current().name == "medium");
        CHECK_FALSE(s.update({std::nullopt, 2'000'000, std::nullopt}, 39'999));
        CHECK(s.update({std::nullopt, 2'000'000, std::nullopt}, 40'000));
        CHECK(s.current().name == "high");
        // And again: 40 s would be 8 times; the hold stops at 4 (20 s).
        s.update({std::nullopt, 300'000, std::nullopt}, 41'000);
        s.update({std::nullopt, 2'000'000, std::nullopt}, 42'000);
        s.update({std::nullopt, 2'000'000, std::nullopt}, 61'999);
        CHECK(s.current().name == "medium");
        CHECK(s.update({std::nullopt, 2'000'000, std::nullopt}, 62'000));
        CHECK(s.current().name == "high");
    }
}

TEST_CASE("A 64 kbit/s bottleneck: audio only within 3 s, a few short trials, video within 20 s of its end",
          "[policy][bwe][audio-only]") {
    for (const bool audioFeedback : {true, false}) {
        INFO((audioFeedback ? "feedback on audio" : "no feedback on audio"));
        Receiver r;
        r.audioFeedback = audioFeedback;
        Link link;
        std::int64_t t = 0;
        for (; t < 5000; t += kWindow) r.window(link, t);
        REQUIRE(r.tiers.current().name == "high");

        link.capacityBps = 64'000;
        const std::int64_t limited = t;
        while (!r.tiers.audioOnly() && t < limited + 10'000) r.window(link, t += kWindow);
        REQUIRE(r.tiers.audioOnly());
        CHECK(t - limited <= 3000);
        CHECK(r.tiers.audioOnlyReason() == AudioOnlyReason::Link);

        // A minute on the limited link: trials of the low tier, each ended
        // by its first congested window, no more often than the back-off.
        r.switches = 0;
        std::int64_t onVideo = 0, trial = 0, longestTrial = 0;
        for (const std::int64_t end = t + 60'000; t < end; t += kWindow) {
            r.window(link, t);
            if (!r.tiers.audioOnly()) onVideo += kWindow;
            trial = r.tiers.audioOnly() ? 0 : trial + kWindow;
            longestTrial = std::max(longestTrial, trial);
        }
        CHECK(r.switches <= 12);            // 4 + 8 + 12 + 12 + 12 + 12 s: at most six trials
        CHECK(longestTrial <= 2 * kWindow); // its first window shows congestion, unconfirmed
        CHECK(onVideo <= 6 * 2 * kWindow);
        CHECK(r.tiers.audioOnly());

        // The limit goes: video (a trial that passes) within 20 s, then high, and no flapping.
        link.capacityBps.reset();
        const std::int64_t lifted = t;
        std::optional<std::int64_t> video, high;
        for (; t < lifted + 60'000; t += kWindow) {
            r.window(link, t);
            if (!video && !r.tiers.audioOnly()) video = t;
            if (!high && r.tiers.current().name == "high") high = t;
            if (video) CHECK_FALSE(r.tiers.audioOnly());
        }
        REQUIRE(video);
        CHECK(*video - lifted <= 13'000); // the longest back-off, and the window it starts on
        REQUIRE(high);
        CHECK(*high - lifted <= 40'000);
        CHECK(r.tiers.current().name == "high");
    }
}

TEST_CASE("30 % random loss on an app-limited receiver: the lowest tier at worst, never audio only; high again when "
          "it stops",
          "[policy][bwe][audio-only]") {
    Receiver r;
    Link link;
    std::int64_t t = 0;
    for (; t < 5000; t += kWindow) r.window(link, t);
    REQUIRE(r.tiers.current().name == "high");

    // Every cut follows what was delivered, 70 % of each tier's rate, so the
    // estimate sinks below the lowest tier's bit rate: still video.
    link.randomLoss = 0.3;
    const std::int64_t lossy = t;
    for (; t < lossy + 60'000; t += kWindow) {
        r.window(link, t);
        CHECK_FALSE(r.tiers.audioOnly());
    }
    CHECK(r.tiers.current().name == "low");
    CHECK(*r.estimator.estimate(t) < r.tiers.ladder().back().bitrate);

    link.randomLoss = 0;
    const std::int64_t stopped = t;
    std::optional<std::int64_t> high;
    for (; t < stopped + 60'000; t += kWindow) {
        r.window(link, t);
        CHECK_FALSE(r.tiers.audioOnly());
        if (!high && r.tiers.current().name == "high") high = t;
    }
    REQUIRE(high);
    CHECK(*high - stopped <= 30'000);
}
