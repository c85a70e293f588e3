// policy: active-speaker hysteresis and tier choice, on explicit timestamps.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "tessera/policy/backoff.h"
#include "tessera/policy/frame_grid.h"
#include "tessera/policy/speaker.h"
#include "tessera/policy/tiers.h"

using namespace tessera::policy;

namespace {

constexpr std::int64_t kStep = 50; // ms between level reports, like `level interval=50000000`

// Raw levels, so the tests can pin takeover times to the millisecond.
SpeakerParams unsmoothed() {
    SpeakerParams p;
    p.smoothingMs = 0;
    return p;
}

// Feeds every participant its level each kStep in [from, to); returns the
// number of speaker changes. `onStep` runs after each time step.
template <typename Levels, typename OnStep>
int feed(SpeakerDetector& d, std::int64_t from, std::int64_t to, Levels levels, OnStep onStep) {
    int changes = 0;
    for (std::int64_t t = from; t < to; t += kStep) {
        for (const auto& [id, level] : levels(t)) changes += d.update(id, level, t) ? 1 : 0;
        onStep(t);
    }
    return changes;
}
template <typename Levels>
int feed(SpeakerDetector& d, std::int64_t from, std::int64_t to, Levels levels) {
    return feed(d, from, to, levels, [](std::int64_t) {});
}

using Levels = std::map<std::string, double>;
auto constant(Levels levels) {
    return [levels](std::int64_t) { return levels; };
}

// The first time step at which the speaker is `id`, or -1.
template <typename Levels>
std::int64_t firstTimeSpeaker(SpeakerDetector& d, std::int64_t from, std::int64_t to, Levels levels,
                              const std::string& id) {
    std::int64_t when = -1;
    feed(d, from, to, levels, [&](std::int64_t t) {
        if (when < 0 && d.speaker() == id) when = t;
    });
    return when;
}

} // namespace

TEST_CASE("nobody speaks below the threshold", "[policy]") {
    SpeakerDetector d;
    CHECK(feed(d, 0, 10'000, constant({{"a", -50}, {"b", -60}})) == 0);
    CHECK_FALSE(d.speaker());
}

TEST_CASE("the first speaker takes the floor after the hold time, not before", "[policy]") {
    SpeakerDetector d(unsmoothed());
    // Speaking from t=0: the run reaches 500 ms at t=500.
    CHECK(firstTimeSpeaker(d, 0, 2000, constant({{"a", -20}, {"b", -70}}), "a") == 500);
}

TEST_CASE("a louder challenger takes over after the hold time, not before", "[policy]") {
    SpeakerDetector d(unsmoothed());
    feed(d, 0, 1000, constant({{"a", -30}, {"b", -70}}));
    REQUIRE(d.speaker() == "a");

    // From t=1000 b is 10 dB louder than a, which keeps talking: still a at
    // t=1450, b at t=1500.
    std::int64_t when = -1;
    feed(d, 1000, 3000, constant({{"a", -30}, {"b", -20}}), [&](std::int64_t t) {
        if (t == 1450) CHECK(d.speaker() == "a");
        if (when < 0 && d.speaker() == "b") when = t;
    });
    CHECK(when == 1500);
}

TEST_CASE("a challenger within the margin never takes over", "[policy]") {
    SpeakerDetector d(unsmoothed());
    feed(d, 0, 1000, constant({{"a", -30}, {"b", -70}}));
    REQUIRE(d.speaker() == "a");
    CHECK(feed(d, 1000, 30'000, constant({{"a", -30}, {"b", -24.5}})) == 0); // 5.5 dB louder
    CHECK(d.speaker() == "a");
    // Exactly the margin is enough.
    CHECK(firstTimeSpeaker(d, 30'000, 32'000, constant({{"a", -30}, {"b", -24}}), "b") == 30'500);
}

TEST_CASE("a broken lead restarts the hold", "[policy]") {
    SpeakerDetector d(unsmoothed());
    feed(d, 0, 1000, constant({{"a", -30}, {"b", -70}}));
    REQUIRE(d.speaker() == "a");
    // b leads for 400 ms, drops back for one report, leads again: never 500 in a row.
    const auto levels = [](std::int64_t t) {
        const bool lead = t < 1400 || t >= 1450;
        return Levels{{"a", -30}, {"b", lead ? -20.0 : -30.0}};
    };
    CHECK(feed(d, 1000, 1900, levels) == 0);
    CHECK(d.speaker() == "a");
    // ...and then takes over 500 ms after the lead resumed.
    CHECK(firstTimeSpeaker(d, 1900, 3000, levels, "b") == 1950);
}

TEST_CASE("a new speaker must be beaten for a whole hold from when it took the floor", "[policy]") {
    SpeakerDetector d(unsmoothed());
    feed(d, 0, 1000, constant({{"a", -40}}));
    REQUIRE(d.speaker() == "a");
    // b leads a from t=1000 and takes over at 1500; c, louder still, led a
    // from 1300 but must beat b afresh: 1500 + 500.
    const auto levels = [](std::int64_t t) {
        Levels l{{"a", -40}, {"b", -30}};
        if (t >= 1300) l["c"] = -20;
        return l;
    };
    CHECK(firstTimeSpeaker(d, 1000, 3000, levels, "b") == 1500);
    SpeakerDetector again(unsmoothed());
    feed(again, 0, 1000, constant({{"a", -40}}));
    CHECK(firstTimeSpeaker(again, 1000, 3000, levels, "c") == 2000);
}

TEST_CASE("two similar voices talking over each other do not flap", "[policy]") {
    SpeakerDetector d; // default smoothing, as in production
    std::mt19937 rng(42);
    std::uniform_real_distribution<double> jitter(-5.0, 5.0);
    // Both around -30 dBFS, each report off by up to 5 dB: who is louder
    // changes many times a second.
    const auto levels = [&](std::int64_t) { return Levels{{"a", -30 + jitter(rng)}, {"b", -30 + jitter(rng)}}; };
    const int changes = feed(d, 0, 60'000, levels);
    CHECK(changes == 1); // someone took the floor, and kept it
    CHECK(d.speaker());
}

TEST_CASE("taking turns moves the floor once per turn", "[policy]") {
    SpeakerDetector d; // default smoothing
    // a talks for 4 s, then b for 4 s, then a again; the other is near silence.
    const auto levels = [](std::int64_t t) {
        const bool aTalks = (t / 4000) % 2 == 0;
        return Levels{{"a", aTalks ? -25.0 : -65.0}, {"b", aTalks ? -65.0 : -25.0}};
    };
    std::vector<std::pair<std::int64_t, std::string>> history{{-1, ""}}; // (time, speaker); "" nobody
    feed(d, 0, 12'000, levels, [&](std::int64_t t) {
        const std::string now = d.speaker().value_or("");
        if (history.back().second != now) history.emplace_back(t, now);
    });
    INFO("b took over at " << history[2].first << ", a at " << history[3].first);
    REQUIRE(history.size() == 4);
    CHECK(history[1].second == "a");
    CHECK(history[2].second == "b");
    CHECK(history[3].second == "a");
    // Within a second of the turn: hold time plus the smoothing's rise.
    CHECK(history[1].first == 500); // the first level sets the average: no rise
    CHECK(history[2].first > 4500);
    CHECK(history[2].first < 5000);
    CHECK(history[3].first > 8500);
    CHECK(history[3].first < 9000);
}

TEST_CASE("a single loud report does not make a speaker", "[policy]") {
    SpeakerDetector d; // default smoothing bridges a click
    const auto levels = [](std::int64_t t) { return Levels{{"a", t == 1000 ? -5.0 : -70.0}}; };
    CHECK(feed(d, 0, 5000, levels) == 0);
    CHECK_FALSE(d.speaker());
    REQUIRE(d.smoothedLevel("a"));
    CHECK(*d.smoothedLevel("a") == Approx(-70).margin(0.01));
    CHECK_FALSE(d.smoothedLevel("nobody"));
}

TEST_CASE("the speaker is released after the release time of silence", "[policy]") {
    SpeakerDetector d(unsmoothed());
    feed(d, 0, 1000, constant({{"a", -30}}));
    REQUIRE(d.speaker() == "a");

    SECTION("a pause shorter than the release time keeps the floor") {
        CHECK(feed(d, 1000, 2450, constant({{"a", -70}})) == 0); // silent 1000..2400
        CHECK(feed(d, 2450, 5000, constant({{"a", -30}})) == 0);
        CHECK(d.speaker() == "a");
    }
    SECTION("silence from t=1000 releases at t=2500, not before") {
        CHECK(feed(d, 1000, 2500, constant({{"a", -70}})) == 0);
        CHECK(d.speaker() == "a");
        CHECK(d.update("a", -70, 2500));
        CHECK_FALSE(d.speaker());
    }
    SECTION("someone already speaking (within the margin) takes over at the release") {
        // b speaks at -44, only 4 dB above a's -48: no takeover while a holds the floor.
        CHECK(feed(d, 1000, 2500, constant({{"a", -48}, {"b", -44}})) == 0);
        CHECK(d.speaker() == "a");
        CHECK(d.update("a", -48, 2500));
        CHECK(d.speaker() == "b");
    }
}

TEST_CASE("removing participants", "[policy]") {
    SpeakerDetector d(unsmoothed());
    SECTION("removing the speaker with nobody else speaking leaves no speaker") {
        feed(d, 0, 1000, constant({{"a", -30}, {"b", -70}}));
        REQUIRE(d.speaker() == "a");
        CHECK(d.remove("a"));
        CHECK_FALSE(d.speaker());
        CHECK_FALSE(d.smoothedLevel("a"));
    }
    SECTION("someone who has spoken for the hold time takes over at once") {
        feed(d, 0, 1000, constant({{"a", -25}, {"b", -35}, {"c", -40}}));
        REQUIRE(d.speaker() == "a");
        CHECK(d.remove("a"));
        CHECK(d.speaker() == "b"); // the loudest of those qualified
    }
    SECTION("removing someone else or an unknown id changes nothing") {
        feed(d, 0, 1000, constant({{"a", -30}, {"b", -70}}));
        CHECK_FALSE(d.remove("b"));
        CHECK_FALSE(d.remove("nobody"));
        CHECK(d.speaker() == "a");
    }
    SECTION("a removed participant can come back as a new one") {
        feed(d, 0, 1000, constant({{"a", -30}}));
        d.remove("a");
        CHECK(firstTimeSpeaker(d, 1000, 3000, constant({{"a", -30}}), "a") == 1500);
    }
}

TEST_CASE("stale participants count as silent", "[policy]") {
    SpeakerDetector d(unsmoothed());
    feed(d, 0, 1000, constant({{"a", -10}, {"b", -70}}));
    REQUIRE(d.speaker() == "a");
    // a's last report was at t=950, loud; then its stream stops.
    SECTION("a stopped speaker is released release time after going stale") {
        CHECK_FALSE(d.tick(2950)); // not stale yet
        CHECK_FALSE(d.tick(4449)); // stale since 2950, silent 1499 ms
        CHECK(d.tick(4450));
        CHECK_FALSE(d.speaker());
    }
    SECTION("its last loud level no longer holds off a quieter challenger") {
        // b at -40 is far below a's last -10, but beats a stale a after 500 ms.
        CHECK(firstTimeSpeaker(d, 1000, 6000, constant({{"b", -40}}), "b") == 2950 + kStep + 500);
    }
    SECTION("a challenger whose stream stopped is not picked when the speaker leaves") {
        feed(d, 1000, 2000, constant({{"a", -10}, {"b", -30}})); // b's last report: t=1950
        feed(d, 2000, 4000, constant({{"a", -10}}));
        SpeakerDetector fresh = d; // at t=3950 b is 2000 ms old: not yet stale
        CHECK(fresh.remove("a"));
        CHECK(fresh.speaker() == "b");
        d.tick(3951); // now it is
        CHECK(d.remove("a"));
        CHECK_FALSE(d.speaker());
    }
}

TEST_CASE("levels are clamped and NaN is silence", "[policy]") {
    SpeakerDetector d(unsmoothed());
    d.update("a", -1e300, 0);
    CHECK(*d.smoothedLevel("a") == -127.0);
    d.update("a", 12.0, 50);
    CHECK(*d.smoothedLevel("a") == 0.0);
    d.update("a", std::numeric_limits<double>::quiet_NaN(), 100);
    CHECK(*d.smoothedLevel("a") == -127.0);
}

// ---------------------------------------------------------------------------

TEST_CASE("fittingTier: declared and estimated limits with 15% headroom", "[policy]") {
    const auto ladder = defaultTiers();
    CHECK(fittingTier(ladder, std::nullopt, std::nullopt) == 0);
    // high needs 1.5M * 1.15 = 1.725M, medium 690k, low 230k.
    CHECK(fittingTier(ladder, 1'725'000, std::nullopt) == 0);
    CHECK(fittingTier(ladder, 1'724'999, std::nullopt) == 1);
    CHECK(fittingTier(ladder, std::nullopt, 690'000) == 1);
    CHECK(fittingTier(ladder, std::nullopt, 689'999) == 2);
    // The smaller of the two limits wins, whichever it is.
    CHECK(fittingTier(ladder, 2'000'000, 700'000) == 1);
    CHECK(fittingTier(ladder, 700'000, 5'000'000) == 1);
    CHECK(fittingTier(ladder, 250'000, 5'000'000) == 2);
    // Nothing fits: the lowest tier is the least we can send.
    CHECK(fittingTier(ladder, std::nullopt, 50'000) == 2);
    CHECK(fittingTier(ladder, std::nullopt, 0) == 2);
}

TEST_CASE("TierSelector: the first update takes the fit directly", "[policy]") {
    TierSelector s;
    CHECK(s.current().name == "high");
    CHECK(s.update({std::nullopt, 700'000, std::nullopt}, 0));
    CHECK(s.current().name == "medium");
    CHECK(s.current().width == 640);
    CHECK(s.current().height == 360);
}

TEST_CASE("TierSelector: down at once, up only after 5 s of room", "[policy]") {
    TierSelector s;
    s.update({std::nullopt, 2'000'000, std::nullopt}, 0);
    REQUIRE(s.current().name == "high");

    // The estimate collapses: down without delay, straight to the fit.
    CHECK(s.update({std::nullopt, 300'000, std::nullopt}, 1000));
    CHECK(s.current().name == "low");

    SECTION("back up after the estimate allowed it for 5 s, not before") {
        for (std::int64_t t = 2000; t < 7000; t += 500) {
            CHECK_FALSE(s.update({std::nullopt, 2'000'000, std::nullopt}, t));
            CHECK(s.current().name == "low");
        }
        CHECK(s.update({std::nullopt, 2'000'000, std::nullopt}, 7000));
        CHECK(s.current().name == "high");
    }
    SECTION("one report without room restarts the hold") {
        s.update({std::nullopt, 2'000'000, std::nullopt}, 2000);
        s.update({std::nullopt, 2'000'000, std::nullopt}, 6000);
        s.update({std::nullopt, 650'000, std::nullopt}, 6500); // medium no longer fits
        s.update({std::nullopt, 2'000'000, std::nullopt}, 7000);
        CHECK_FALSE(s.update({std::nullopt, 2'000'000, std::nullopt}, 11'500));
        CHECK(s.current().name == "low");
        CHECK(s.update({std::nullopt, 2'000'000, std::nullopt}, 12'000));
        CHECK(s.current().name == "high");
    }
    SECTION("up to the highest tier allowed for the whole hold") {
        s.update({std::nullopt, 700'000, std::nullopt}, 2000);   // medium fits from 2000
        s.update({std::nullopt, 2'000'000, std::nullopt}, 4000); // high fits from 4000
        CHECK(s.update({std::nullopt, 2'000'000, std::nullopt}, 7000));
        CHECK(s.current().name == "medium");
        CHECK_FALSE(s.update({std::nullopt, 2'000'000, std::nullopt}, 8500));
        CHECK(s.update({std::nullopt, 2'000'000, std::nullopt}, 9000));
        CHECK(s.current().name == "high");
    }
}

TEST_CASE("TierSelector: the declared limit caps the tier however good the estimate", "[policy]") {
    TierSelector s;
    s.update({700'000, std::nullopt, std::nullopt}, 0);
    CHECK(s.current().name == "medium");
    for (std::int64_t t = 1000; t <= 60'000; t += 1000) CHECK_FALSE(s.update({700'000, 10'000'000, 0.0}, t));
    CHECK(s.current().name == "medium");
}

TEST_CASE("TierSelector: loss steps down one tier per lossy report", "[policy]") {
    TierSelector s;
    const std::optional<std::int64_t> plenty = 5'000'000;
    s.update({std::nullopt, plenty, 0.0}, 0);
    REQUIRE(s.current().name == "high");

    CHECK_FALSE(s.update({std::nullopt, plenty, 0.10}, 1000)); // 10% is not above 10%
    CHECK(s.update({std::nullopt, plenty, 0.12}, 2000));
    CHECK(s.current().name == "medium");
    // A report with no loss figure (REMB only) neither steps down nor counts as lossy.
    CHECK_FALSE(s.update({std::nullopt, plenty, std::nullopt}, 2500));
    CHECK(s.update({std::nullopt, plenty, 0.30}, 3000));
    CHECK(s.current().name == "low");
    CHECK_FALSE(s.update({std::nullopt, plenty, 0.30}, 4000)); // nothing below low
    CHECK(s.current().name == "low");

    // The way back up needs 5 s counted from the first clean report.
    for (std::int64_t t = 5000; t < 10'000; t += 1000) CHECK_FALSE(s.update({std::nullopt, plenty, 0.01}, t));
    CHECK(s.update({std::nullopt, plenty, 0.01}, 10'000));
    CHECK(s.current().name == "high");
}

TEST_CASE("TierSelector: loss on the first report and with a falling estimate", "[policy]") {
    SECTION("first report") {
        TierSelector s;
        CHECK(s.update({std::nullopt, 5'000'000, 0.2}, 0));
        CHECK(s.current().name == "medium");
    }
    SECTION("the estimate already fell to medium: loss takes one more step") {
        TierSelector s;
        s.update({std::nullopt, 5'000'000, 0.0}, 0);
        CHECK(s.update({std::nullopt, 700'000, 0.2}, 1000));
        CHECK(s.current().name == "low");
    }
}

TEST_CASE("TierSelector: ladders are sorted; an empty one is refused", "[policy]") {
    TierSelector s({{"low", 200'000, 320, 180}, {"high", 1'500'000, 1280, 720}});
    REQUIRE(s.ladder().size() == 2);
    CHECK(s.ladder()[0].name == "high");
    s.update({std::nullopt, 1'000'000, std::nullopt}, 0);
    CHECK(s.current().name == "low");
    CHECK(s.currentIndex() == 1);
    CHECK_THROWS_AS(TierSelector(std::vector<Tier>{}), std::invalid_argument);
}

namespace {

// One feedback window's verdict for TierInput::linkCongested.
constexpr bool kClean = false, kCongested = true;

// An update after a feedback window: the estimate and the window's verdict.
TierInput window(std::int64_t estimateBps, std::optional<bool> congested) {
    TierInput input{std::nullopt, estimateBps, std::nullopt};
    input.linkCongested = congested;
    return input;
}

// A selector gone audio only for its link at time 0 (trials as `params` say).
TierSelector audioOnlyAt0(TierParams params = {}) {
    TierSelector s(defaultTiers(), params);
    s.update(window(300'000, kClean), -1000);
    REQUIRE(s.current().name == "low");
    REQUIRE(s.update(window(40'000, kCongested), 0));
    REQUIRE(s.audioOnlyReason() == AudioOnlyReason::Link);
    return s;
}

// Where the receiver's feedback can judge probes (TierParams::probe).
TierParams probing() {
    TierParams params;
    params.probe = true;
    return params;
}

// A selector with probes, after its first update with `input` at time 0.
TierSelector startedWithProbes(const TierInput& input) {
    TierSelector s(defaultTiers(), probing());
    s.update(input, 0);
    return s;
}

// A selector with probes whose start's probe failed at 100 ms (an estimate
// of `estimateBps` then): on the low tier, high's hold doubled.
TierSelector failedStart(std::int64_t estimateBps) {
    TierSelector s = startedWithProbes(window(172'500, kClean));
    s.probeResult(ProbeVerdict::Failed);
    CHECK_FALSE(s.update(window(estimateBps, kClean), 100));
    REQUIRE(s.current().name == "low");
    return s;
}

// Clean windows at `estimateBps` every 100 ms from `from`: no change and no
// probe wanted before `at`, then, at `at`, a probe wanted (still no change).
void probeDueAt(TierSelector& s, std::int64_t estimateBps, std::int64_t from, std::int64_t at) {
    for (std::int64_t t = from; t < at; t += 100) {
        CHECK_FALSE(s.update(window(estimateBps, kClean), t));
        CHECK_FALSE(s.probeWanted());
    }
    CHECK_FALSE(s.update(window(estimateBps, kClean), at));
    CHECK(s.probeWanted());
}

// Clean windows every 100 ms from `from` to `to` (exclusive) at the estimate
// an app-limited receiver's audio leaves: the number of tier changes.
int cleanWindows(TierSelector& s, std::int64_t from, std::int64_t to, std::int64_t estimateBps = 40'000) {
    int changes = 0;
    for (std::int64_t t = from; t < to; t += 100) changes += s.update(window(estimateBps, kClean), t) ? 1 : 0;
    return changes;
}

} // namespace

TEST_CASE("TierSelector: below the lowest tier's bit rate, audio only, at once", "[policy][audio-only]") {
    TierSelector s;
    s.update({std::nullopt, 300'000, std::nullopt}, 0);
    REQUIRE(s.current().name == "low");
    CHECK_FALSE(s.audioOnly());

    // Under low's 150 kbit/s even without headroom: audio only, at once.
    CHECK_FALSE(s.update({std::nullopt, 150'000, std::nullopt}, 1000)); // exactly low's rate: still low
    CHECK(s.update({std::nullopt, 149'999, std::nullopt}, 1500));
    CHECK(s.audioOnly());
    CHECK(s.currentIndex() == s.ladder().size());
    CHECK(s.current().name == kAudioOnly);
    CHECK(s.current().bitrate == 0);
    CHECK(s.audioOnlyReason() == AudioOnlyReason::Link);
    // An estimate that fits low again does not bring video back by itself
    // (it may be a guess: the receiver is app-limited), nor before the back-off.
    for (std::int64_t t = 2000; t < 5500; t += 100) CHECK_FALSE(s.update(window(2'000'000, kClean), t));
    CHECK(s.audioOnlyReason() == AudioOnlyReason::Link);
}

TEST_CASE("TierSelector: an app-limited audio-only receiver whose link recovered gets a trial of the lowest tier, "
          "and keeps it",
          "[policy][audio-only]") {
    TierSelector s = audioOnlyAt0();
    // The audio's windows are clean but its estimate stays where the cut
    // left it: 4 s on, a trial of the lowest tier regardless.
    CHECK(cleanWindows(s, 100, 4000) == 0);
    CHECK(s.audioOnly());
    CHECK_FALSE(s.inTrial());
    CHECK(s.update(window(40'000, kClean), 4000));
    CHECK(s.current().name == "low");
    CHECK(s.inTrial());
    CHECK(s.audioOnlyReason() == AudioOnlyReason::None);
    // The estimate (still the audio's) does not end it; 3 s of clean windows pass it.
    CHECK(cleanWindows(s, 4100, 7000) == 0);
    CHECK(s.inTrial());
    CHECK_FALSE(s.provenBps());
    CHECK_FALSE(s.update(window(40'000, kClean), 7000));
    CHECK_FALSE(s.inTrial());
    // What the link proved, for the estimator: low with its headroom.
    REQUIRE(s.provenBps());
    CHECK(*s.provenBps() == 172'500);
    // With the estimate raised to that, it stays, and climbs as the estimate does.
    CHECK(cleanWindows(s, 7100, 30'000, 172'500) == 0);
    CHECK(s.current().name == "low");
    CHECK_FALSE(s.provenBps());
    cleanWindows(s, 30'000, 36'000, 700'000);
    CHECK(s.current().name == "medium");
}

TEST_CASE("TierSelector: a trial that congests returns to audio only and doubles the back-off, up to 12 s",
          "[policy][audio-only]") {
    TierSelector s = audioOnlyAt0();
    cleanWindows(s, 100, 4000);
    REQUIRE(s.update(window(40'000, kClean), 4000));
    REQUIRE(s.inTrial());
    // Its first congested window (or lossy report) ends it.
    CHECK_FALSE(s.update(window(40'000, kClean), 4100));
    CHECK(s.update(window(40'000, kCongested), 4800));
    CHECK(s.audioOnly());
    CHECK(s.audioOnlyReason() == AudioOnlyReason::Link);
    CHECK_FALSE(s.provenBps());
    // The next in 8 s, then 12 s, and 12 s after that.
    std::int64_t failedAt = 4800;
    for (const std::int64_t backoff : {8000, 12'000, 12'000}) {
        INFO("back-off " << backoff);
        CHECK(cleanWindows(s, failedAt + 100, failedAt + backoff) == 0);
        CHECK(s.update(window(40'000, kClean), failedAt + backoff));
        REQUIRE(s.inTrial());
        failedAt += backoff + 500;
        TierInput lossy{std::nullopt, 40'000, 0.3};
        CHECK(s.update(lossy, failedAt));
        CHECK(s.audioOnly());
    }
}

TEST_CASE("TierSelector: a trial with no verdict fails; congested audio holds the trial back", "[policy][audio-only]") {
    TierSelector s = audioOnlyAt0();
    // Congestion on the audio alone restarts the wait.
    cleanWindows(s, 100, 3000);
    CHECK_FALSE(s.update(window(40'000, kCongested), 3000));
    CHECK(cleanWindows(s, 3100, 7000) == 0);
    CHECK(s.update(window(40'000, kClean), 7000));
    REQUIRE(s.inTrial());
    // No feedback at all on the lowest tier (stats polls only): failed after 6 s.
    for (std::int64_t t = 7100; t < 13'000; t += 100) CHECK_FALSE(s.update({std::nullopt, 40'000, std::nullopt}, t));
    CHECK(s.update({std::nullopt, 40'000, std::nullopt}, 13'000));
    CHECK(s.audioOnly());
    // Windows that prove neither (none clean) do not pass it either.
    CHECK(cleanWindows(s, 13'100, 21'000) == 0);
    CHECK(s.update(window(40'000, kClean), 21'000));
    REQUIRE(s.inTrial());
    for (std::int64_t t = 21'100; t < 27'000; t += 100) CHECK_FALSE(s.update(window(40'000, std::nullopt), t));
    CHECK(s.update(window(40'000, std::nullopt), 27'000));
    CHECK(s.audioOnly());
}

TEST_CASE("TierSelector: a passed trial that holds restores the back-off; one that does not doubles it",
          "[policy][audio-only]") {
    TierSelector s = audioOnlyAt0();
    // A failed trial first (the next waits 8 s), then one that passes.
    cleanWindows(s, 100, 4100);
    REQUIRE(s.inTrial());
    REQUIRE(s.update(window(40'000, kCongested), 4500));
    CHECK(cleanWindows(s, 4600, 12'500) == 0);
    CHECK(cleanWindows(s, 12'500, 15'600) == 1);
    REQUIRE(s.current().name == "low");
    REQUIRE_FALSE(s.inTrial());
    SECTION("held for 10 s: 4 s again") {
        cleanWindows(s, 15'600, 26'000, 172'500);
        CHECK(s.update(window(40'000, kCongested), 26'000));
        CHECK(s.audioOnly());
        CHECK(cleanWindows(s, 26'100, 30'000) == 0);
        CHECK(s.update(window(40'000, kClean), 30'000));
    }
    SECTION("lost within 10 s: 16 s, capped at 12") {
        cleanWindows(s, 15'600, 17'000, 172'500);
        CHECK(s.update(window(40'000, kCongested), 17'000));
        CHECK(cleanWindows(s, 17'100, 29'000) == 0);
        CHECK(s.update(window(40'000, kClean), 29'000));
    }
}

TEST_CASE("TierSelector: with probes, a trial is due only once a probe passed", "[policy][probe][audio-only]") {
    TierSelector s = audioOnlyAt0(probing());
    CHECK(s.probeBps() == 172'500); // low with its headroom
    for (std::int64_t t = 100; t < 4000; t += 100) CHECK_FALSE(s.update(window(40'000, kClean), t));
    CHECK_FALSE(s.probeWanted());
    // The back-off went by: a probe, not the trial.
    CHECK_FALSE(s.update(window(40'000, kClean), 4000));
    CHECK(s.probeWanted());
    CHECK(s.audioOnly());
    // The windows its own queue congests do not decide, nor hold the trial back.
    CHECK_FALSE(s.update(window(40'000, kCongested), 4300));
    CHECK(s.probeWanted());
    s.probeResult(ProbeVerdict::Pending); // no verdict yet: nothing
    CHECK_FALSE(s.update(window(40'000, kClean), 4400));
    CHECK(s.probeWanted());

    SECTION("passed, or no usable verdict (as without probes): the trial, at once, whatever the window") {
        s.probeResult(GENERATE(ProbeVerdict::Passed, ProbeVerdict::Unknown));
        CHECK(s.update(window(40'000, kCongested), 4500));
        CHECK(s.inTrial());
        CHECK(s.current().name == "low");
        CHECK_FALSE(s.probeWanted());
    }
    SECTION("failed: no video at all, and the next probe waits twice as long, up to 8 s") {
        s.probeResult(ProbeVerdict::Failed);
        CHECK_FALSE(s.update(window(40'000, kClean), 4500));
        CHECK(s.audioOnly());
        CHECK_FALSE(s.probeWanted());
        for (std::int64_t t = 4600; t < 12'500; t += 100) CHECK_FALSE(s.update(window(40'000, kClean), t));
        CHECK_FALSE(s.probeWanted());
        CHECK_FALSE(s.update(window(40'000, kClean), 12'500));
        CHECK(s.probeWanted());
        s.probeResult(ProbeVerdict::Failed);
        CHECK_FALSE(s.update(window(40'000, kClean), 12'600));
        for (std::int64_t t = 12'700; t < 20'600; t += 100) CHECK_FALSE(s.update(window(40'000, kClean), t));
        CHECK_FALSE(s.probeWanted());
        CHECK_FALSE(s.update(window(40'000, kClean), 20'600));
        CHECK(s.probeWanted());
        // A verdict given twice counts once.
        s.probeResult(ProbeVerdict::Failed);
        s.update(window(40'000, kClean), 20'700);
        s.probeResult(ProbeVerdict::Passed);
        CHECK_FALSE(s.update(window(40'000, kClean), 20'800));
        CHECK(s.audioOnly());
        CHECK_FALSE(s.probeWanted());
    }
    SECTION("asking for audio only meanwhile: no probe wanted, its verdict ignored") {
        TierInput asked = window(40'000, kClean);
        asked.audioOnlyRequested = true;
        s.update(asked, 4500);
        CHECK_FALSE(s.probeWanted());
        s.probeResult(ProbeVerdict::Passed);
        CHECK_FALSE(s.update(asked, 4600));
        CHECK(s.audioOnlyReason() == AudioOnlyReason::Requested);
    }
}

TEST_CASE("TierSelector: with probes, a receiver starts on the lowest tier and takes its fit once a probe passed",
          "[policy][probe]") {
    TierSelector s(defaultTiers(), probing());
    CHECK(s.update({std::nullopt, std::nullopt, std::nullopt}, 0));
    CHECK(s.current().name == "low");
    REQUIRE(s.probeWanted());
    CHECK(s.probeTier() == 0);
    CHECK(s.probeBps() == 1'575'000); // high with its headroom, less what low sends meanwhile
    // The windows meanwhile decide nothing, congested or not (they show the probe's queue).
    CHECK_FALSE(s.update(window(5'000'000, kCongested), 100));
    CHECK_FALSE(s.update(window(5'000'000, kClean), 200));
    CHECK(s.probeWanted());

    SECTION("passed: the fit, with no hold, and the estimate raised to its need") {
        s.probeResult(ProbeVerdict::Passed);
        CHECK_FALSE(s.probeWanted());
        CHECK(s.update(window(5'000'000, kClean), 300));
        CHECK(s.current().name == "high");
        CHECK_FALSE(s.probeWanted());
        CHECK_FALSE(s.refutedBps());
        REQUIRE(s.provenBps());
        CHECK(*s.provenBps() == 1'725'000);
    }
    SECTION("no usable verdict: no step into a link that may be full, no cut; another probe one hold later") {
        s.probeResult(ProbeVerdict::Unknown);
        CHECK_FALSE(s.update(window(5'000'000, kClean), 300));
        CHECK(s.current().name == "low");
        CHECK_FALSE(s.refutedBps());
        CHECK_FALSE(s.provenBps());
        probeDueAt(s, 5'000'000, 400, 5300);
        CHECK(s.probeTier() == 0);
    }
    SECTION("failed: the lowest tier, the estimate capped below the tier, the next probe one hold later") {
        s.probeResult(ProbeVerdict::Failed);
        CHECK_FALSE(s.update(window(5'000'000, kClean), 300));
        CHECK(s.current().name == "low");
        REQUIRE(s.refutedBps());
        CHECK(*s.refutedBps() == 1'725'000);
        CHECK_FALSE(s.probeWanted());
        // The capped estimate (85 %) allows medium: probed for 5 s after the failure.
        for (std::int64_t t = 400; t < 5300; t += 100) {
            CHECK_FALSE(s.update(window(1'466'250, kClean), t));
            CHECK_FALSE(s.probeWanted());
            CHECK_FALSE(s.refutedBps());
        }
        CHECK_FALSE(s.update(window(1'466'250, kClean), 5300));
        REQUIRE(s.probeWanted());
        CHECK(s.probeTier() == 1);
        CHECK(s.probeBps() == 540'000);
    }
    SECTION("the link falls below the lowest tier meanwhile: audio only, no probe, no step") {
        CHECK(s.update(window(100'000, kCongested), 300));
        CHECK(s.audioOnly());
        CHECK_FALSE(s.probeWanted());
        s.probeResult(ProbeVerdict::Passed);
        CHECK_FALSE(s.update(window(100'000, kClean), 400));
        CHECK(s.audioOnly());
    }
}

TEST_CASE("TierSelector: with probes, the start probe is for what the receiver declared; none where that is the "
          "lowest tier or audio only",
          "[policy][probe]") {
    // No estimate knows the link yet (the estimator's start is the lowest tier's need).
    const TierSelector guessed = startedWithProbes(window(172'500, kClean));
    CHECK(guessed.current().name == "low");
    CHECK(guessed.probeTier() == 0);
    const TierSelector declared = startedWithProbes({700'000, std::nullopt, std::nullopt});
    CHECK(declared.current().name == "low");
    CHECK(declared.probeTier() == 1); // medium: what the receiver declared
    const TierSelector low = startedWithProbes({300'000, std::nullopt, std::nullopt});
    CHECK(low.current().name == "low");
    CHECK_FALSE(low.probeWanted());
    const TierSelector audio = startedWithProbes({64'000, std::nullopt, std::nullopt});
    CHECK(audio.audioOnly());
    CHECK_FALSE(audio.probeWanted());
}

TEST_CASE("TierSelector: with probes, the tier above is probed once the current one held clean; a failed probe "
          "holds the next 10 s at most",
          "[policy][probe]") {
    // The start's probe fails: low, and high's hold is 10 s from now on.
    TierSelector s = failedStart(172'500);
    // An estimate bound to what the link delivered never allows medium; the
    // probe for it comes once low has held 5 s.
    probeDueAt(s, 285'000, 200, 5100);
    CHECK(s.probeTier() == 1);
    CHECK(s.probeBps() == 540'000); // medium's 690 kbit/s less low's 150

    SECTION("passed: up, and the estimate is raised to what medium needs") {
        s.probeResult(ProbeVerdict::Passed);
        CHECK(s.update(window(285'000, kClean), 5200));
        CHECK(s.current().name == "medium");
        REQUIRE(s.provenBps());
        CHECK(*s.provenBps() == 690'000);
        // High next, once the link has been clean on medium for 5 s (the
        // hold the start's failed probe doubled went with the pass: the link
        // got better), at high's need less medium's rate.
        probeDueAt(s, 960'000, 5300, 10'200);
        CHECK(s.probeTier() == 0);
        CHECK(s.probeBps() == 1'125'000);
    }
    SECTION("a declared limit rules the tier above out: no probe") {
        TierSelector capped = startedWithProbes({300'000, 172'500, std::nullopt});
        for (std::int64_t t = 100; t < 60'000; t += 100) {
            capped.update({300'000, 285'000, std::nullopt}, t);
            CHECK_FALSE(capped.probeWanted());
        }
    }
    SECTION("failed: the hold doubles for the probed tier and above, up to 10 s") {
        std::int64_t t = 5100;
        for (int round = 0; round < 3; ++round) {
            s.probeResult(ProbeVerdict::Failed);
            t += 100;
            CHECK_FALSE(s.update(window(285'000, kClean), t));
            REQUIRE(s.refutedBps());
            CHECK(*s.refutedBps() == 690'000);
            const std::int64_t failed = t;
            for (t += 100; t < failed + 10'000; t += 100) {
                CHECK_FALSE(s.update(window(285'000, kClean), t));
                CHECK_FALSE(s.probeWanted());
            }
            CHECK_FALSE(s.update(window(285'000, kClean), t));
            CHECK(s.probeWanted());
            CHECK(s.probeTier() == 1);
            CHECK(s.current().name == "low");
        }
    }
    SECTION("the link falls below the lowest tier meanwhile: audio only, the probe dropped") {
        CHECK(s.update(window(100'000, kCongested), 5200));
        CHECK(s.audioOnly());
        CHECK_FALSE(s.probeWanted());
    }
}

TEST_CASE("TierSelector: with probes, an app-limited receiver whose estimate is under its own tier's need still "
          "gets probes; congestion restarts the wait",
          "[policy][probe]") {
    // A still composite sends a fraction of the low tier's rate, and the
    // estimate grows to 150 % of what was delivered: 160 kbit/s, under
    // low's 172.5 kbit/s need (but over its 150 kbit/s rate: video).
    TierSelector s = failedStart(160'000);
    SECTION("clean: the probe for medium one hold after the failure") {
        probeDueAt(s, 160'000, 200, 5100);
        CHECK(s.probeTier() == 1);
    }
    SECTION("a congested window at 3 s restarts the wait: the probe 5 s after it") {
        for (std::int64_t t = 200; t < 3000; t += 100) CHECK_FALSE(s.update(window(160'000, kClean), t));
        CHECK_FALSE(s.update(window(160'000, kCongested), 3000));
        CHECK_FALSE(s.probeWanted());
        probeDueAt(s, 160'000, 3100, 8000);
    }
}

TEST_CASE("TierSelector: no trials for a receiver that asked for audio only or declared 64 kbit/s",
          "[policy][audio-only]") {
    TierSelector asked;
    TierInput input = window(40'000, kClean);
    input.audioOnlyRequested = true;
    for (std::int64_t t = 0; t < 60'000; t += 100) asked.update(input, t);
    CHECK(asked.audioOnlyReason() == AudioOnlyReason::Requested);
    // Withdrawn on a link too slow: the back-off starts then.
    input.audioOnlyRequested = false;
    asked.update(input, 60'000);
    CHECK(asked.audioOnlyReason() == AudioOnlyReason::Link);
    CHECK(cleanWindows(asked, 60'100, 64'000) == 0);
    CHECK(asked.update(input, 64'000));
    CHECK(asked.inTrial());
    // Asking again during the trial ends it at once.
    input.audioOnlyRequested = true;
    CHECK(asked.update(input, 64'100));
    CHECK(asked.audioOnlyReason() == AudioOnlyReason::Requested);
    CHECK_FALSE(asked.inTrial());

    TierSelector declared;
    TierInput tiny = window(40'000, kClean);
    tiny.declaredBps = 64'000;
    declared.update(tiny, 0);
    REQUIRE(declared.audioOnly());
    for (std::int64_t t = 100; t < 60'000; t += 100) CHECK_FALSE(declared.update(tiny, t));
    CHECK(declared.audioOnlyReason() == AudioOnlyReason::Declared);
}

TEST_CASE("TierSelector: a declared maxBitrate of 64 kbit/s or less is audio only for good", "[policy][audio-only]") {
    TierSelector s;
    CHECK(s.update({64'000, std::nullopt, std::nullopt}, 0));
    CHECK(s.audioOnly());
    CHECK(s.audioOnlyReason() == AudioOnlyReason::Declared);
    for (std::int64_t t = 1000; t <= 60'000; t += 1000) CHECK_FALSE(s.update({64'000, 10'000'000, 0.0}, t));
    CHECK(s.audioOnly());
    // Above it (but under the lowest tier): the lowest tier, as before.
    TierSelector above;
    above.update({64'001, std::nullopt, std::nullopt}, 0);
    CHECK(above.current().name == "low");
    // With a ladder whose lowest tier is below 64 kbit/s the declared bound still holds.
    TierSelector tiny({{"high", 500'000, 640, 360}, {"tiny", 40'000, 160, 90}});
    tiny.update({60'000, std::nullopt, std::nullopt}, 0);
    CHECK(tiny.audioOnly());
}

TEST_CASE("TierSelector: audio only on request, video again as soon as the request goes", "[policy][audio-only]") {
    TierSelector s;
    TierInput input{std::nullopt, 5'000'000, std::nullopt};
    s.update(input, 0);
    REQUIRE(s.current().name == "high");
    input.audioOnlyRequested = true;
    CHECK(s.update(input, 1000));
    CHECK(s.audioOnly());
    CHECK(s.audioOnlyReason() == AudioOnlyReason::Requested);
    // The link was good all along: straight back to the tier it allows, no hold.
    input.audioOnlyRequested = false;
    CHECK(s.update(input, 2000));
    CHECK(s.current().name == "high");
    // Asking again right after going up is no failed trial: no longer hold.
    input.audioOnlyRequested = true;
    CHECK(s.update(input, 2500));
    input.audioOnlyRequested = false;
    CHECK(s.update(input, 3000));
    CHECK(s.current().name == "high");

    // Requested wins over the other reasons.
    TierSelector both;
    both.update({64'000, 50'000, std::nullopt, true}, 0);
    CHECK(both.audioOnlyReason() == AudioOnlyReason::Requested);
}

TEST_CASE("TierSelector: loss never takes video away; audio only can be turned off", "[policy][audio-only]") {
    TierSelector s;
    s.update({std::nullopt, 300'000, 0.5}, 0);
    CHECK(s.current().name == "low");
    CHECK_FALSE(s.update({std::nullopt, 300'000, 0.9}, 1000));
    CHECK(s.current().name == "low");

    TierParams params;
    params.audioOnly = false;
    TierSelector never(defaultTiers(), params);
    never.update({10'000, 10'000, std::nullopt, true}, 0);
    CHECK(never.current().name == "low");
    CHECK_FALSE(never.audioOnly());
}

TEST_CASE("ReportedLoss: each receiver report's loss counts once, over the packets it covers", "[policy]") {
    ReportedLoss loss;
    // The first report: a baseline, whatever it lost before.
    CHECK_FALSE(loss.update(5, 1000));
    // Clean reports: no loss, but each is the next one's baseline.
    CHECK_FALSE(loss.update(5, 1500));
    CHECK_FALSE(loss.update(5, 6000));
    // 30 of the 100 packets expected since the latest report: 30 %, however
    // long the clean time before it (a fraction over everything since the
    // last lossy report read 30 lost in 5100 as 0.6 %).
    CHECK(*loss.update(35, 6100) == Approx(0.30));
    // The same report polled again: not counted twice.
    CHECK_FALSE(loss.update(35, 6100));
    CHECK(*loss.update(45, 6200) == Approx(0.10));
    // Counts that make no sense (a restarted stream) never give more than 1.
    CHECK(*loss.update(1000, 6201) == 1.0);
    CHECK_FALSE(loss.update(1000, 6201));
    // Fewer lost than before (duplicates count back): no loss.
    CHECK_FALSE(loss.update(990, 6300));
}

TEST_CASE("a compositor started at exactFrameBoundary has the decoders' frame times to the nanosecond", "[policy]") {
    // videorate's and the compositor's frame times: floor(n * 1e9 / fps) from their start.
    auto frameTime = [](std::uint64_t n, std::uint64_t fps) { return n * 1'000'000'000 / fps; };
    for (std::uint64_t fps : {15u, 24u, 25u, 30u, 60u}) {
        for (std::uint64_t t :
             {0ull, 1ull, 75'209'392ull, 152'000'000ull, 199'999'999ull, 200'000'000ull, 3'600'000'000'001ull}) {
            const std::uint64_t start = exactFrameBoundary(t, fps);
            INFO(fps << " frames/s from " << t << " ns: start " << start);
            CHECK(start >= t);
            CHECK(start - t < 1'000'000'000 / fps * 3 + 3); // at most 3 frames later at these rates
            // A frame time of the grid from 0...
            const std::uint64_t k = start * fps / 1'000'000'000;
            REQUIRE(frameTime(k, fps) == start);
            // ...from which the compositor's own frame times stay on it.
            for (std::uint64_t n = 0; n < 2 * fps; ++n) CHECK(start + frameTime(n, fps) == frameTime(k + n, fps));
        }
    }
    // The nearest one is not always exact: 1 frame at 15 frames/s is 66666666.67 ns.
    CHECK(exactFrameBoundary(1, 15) == 200'000'000);
    CHECK(exactFrameBoundary(1, 25) == 40'000'000);
    CHECK(exactFrameBoundary(40'000'000, 25) == 40'000'000);
}

TEST_CASE("backoff: waits double from the first to the cap; a long run starts over", "[policy][backoff]") {
    tessera::policy::Backoff backoff(1000, 8000);
    std::int64_t now = 0;
    std::vector<std::int64_t> waits;
    for (int i = 0; i < 6; ++i) {
        backoff.started(now);
        now += 100; // fails at once (a refused connection)
        waits.push_back(backoff.failed(now));
        now += waits.back();
    }
    CHECK(waits == std::vector<std::int64_t>{1000, 2000, 4000, 8000, 8000, 8000});
    // An attempt that ran as long as the cap was a success: the next failure waits the first again.
    backoff.started(now);
    CHECK(backoff.failed(now + 8000) == 1000);
    // Bad bounds are made sane.
    tessera::policy::Backoff odd(0, -5);
    odd.started(0);
    CHECK(odd.failed(0) == 1);
}
