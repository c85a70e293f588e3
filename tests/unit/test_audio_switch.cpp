// media::AudioSwitch: a receiver's choice among its room's Opus encodes,
// switched on packet boundaries (K+1 audio, docs/architecture.md). The
// switching logic only; the [kaudio] integration test runs it for real.
#include <catch2/catch.hpp>

#include <map>
#include <vector>

#include "../../src/media/audio_switch.h"

using tessera::media::AudioSwitch;
using tessera::media::EncodeDemand;

namespace {

constexpr GstClockTime kFrame = 20 * GST_MSECOND;

// Every source has a packet for each 20 ms from `from` to `to`; they reach
// the switch in the order given (source, packet index). Returns the passed
// packets as (start, source).
std::vector<std::pair<GstClockTime, std::size_t>> run(AudioSwitch& s,
                                                      const std::vector<std::pair<std::size_t, int>>& arrivals) {
    std::vector<std::pair<GstClockTime, std::size_t>> passed;
    for (auto [source, index] : arrivals) {
        const GstClockTime start = static_cast<GstClockTime>(index) * kFrame;
        if (s.pass(source, start, kFrame)) passed.emplace_back(start, source);
    }
    return passed;
}

void checkContinuous(const std::vector<std::pair<GstClockTime, std::size_t>>& passed) {
    for (std::size_t i = 1; i < passed.size(); ++i) CHECK(passed[i].first == passed[i - 1].first + kFrame);
}

} // namespace

TEST_CASE("audio switch: one source passes, the others never", "[audioswitch]") {
    AudioSwitch s(0);
    const auto passed = run(s, {{0, 0}, {1, 0}, {2, 0}, {1, 1}, {0, 1}, {2, 1}});
    REQUIRE(passed.size() == 2);
    CHECK(passed[0].second == 0);
    CHECK(passed[1].second == 0);
    checkContinuous(passed);
}

TEST_CASE("audio switch: a switch neither repeats nor skips a packet, in either arrival order", "[audioswitch]") {
    SECTION("the new source's packet arrives first") {
        AudioSwitch s(0);
        auto passed = run(s, {{0, 0}, {1, 0}, {0, 1}, {1, 1}});
        s.select(1);
        const auto after = run(s, {{1, 2}, {0, 2}, {1, 3}, {0, 3}});
        passed.insert(passed.end(), after.begin(), after.end());
        REQUIRE(passed.size() == 4);
        checkContinuous(passed);
        CHECK(passed[2].second == 1);
    }
    SECTION("the new source is behind: the old one goes on until the new one has caught up") {
        AudioSwitch s(0);
        auto passed = run(s, {{0, 0}, {1, 0}, {0, 1}});
        s.select(1);
        const auto after = run(s, {{1, 1}, {0, 2}, {1, 2}, {1, 3}, {0, 3}});
        passed.insert(passed.end(), after.begin(), after.end());
        REQUIRE(passed.size() == 4);
        checkContinuous(passed);
        CHECK(passed[1].second == 0); // the new source's copy of packet 1 came too late,
        CHECK(passed[2].second == 1); // but it says the new source has caught up: the old one's 2 gives way
        CHECK(passed[3].second == 1);
    }
}

TEST_CASE("audio switch: a new source whose packets always come second still takes over", "[audioswitch]") {
    // The full mix's encoder serves most receivers, one after the other: at
    // a receiver leaving its speaker slot, its copy of each packet can
    // always arrive after the slot's.
    AudioSwitch s(1);
    auto passed = run(s, {{1, 0}, {0, 0}});
    s.select(0);
    const auto after = run(s, {{1, 1}, {0, 1}, {1, 2}, {0, 2}, {1, 3}, {0, 3}});
    passed.insert(passed.end(), after.begin(), after.end());
    REQUIRE(passed.size() == 4);
    checkContinuous(passed);
    CHECK(passed[1].second == 1); // sent before the full mix's copy came
    CHECK(passed[2].second == 0);
    CHECK(passed[3].second == 0);
}

TEST_CASE("audio switch: with a cutoff, nothing of the old source ending after it passes", "[audioswitch]") {
    AudioSwitch s(0);
    auto passed = run(s, {{0, 0}, {0, 1}});
    // The receiver's voice starts at 70 ms: packets ending after it are its own.
    s.select(2, 70 * GST_MSECOND);
    const auto after = run(s, {{0, 2}, {0, 3}, {0, 4}, {2, 2}, {2, 3}, {2, 4}});
    passed.insert(passed.end(), after.begin(), after.end());
    REQUIRE(passed.size() == 5);
    checkContinuous(passed);
    CHECK(passed[2] == std::pair<GstClockTime, std::size_t>{40 * GST_MSECOND, 0}); // ends at 60 ms: before it
    CHECK(passed[3].second == 2);                                                  // 60-80 ms: from the slot
}

TEST_CASE("audio switch: selecting the current source again cancels a pending switch", "[audioswitch]") {
    AudioSwitch s(1);
    run(s, {{1, 0}});
    s.select(0);
    s.select(1);
    const auto passed = run(s, {{0, 1}, {1, 1}});
    REQUIRE(passed.size() == 1);
    CHECK(passed[0].second == 1);
}

TEST_CASE("audio switch: an encode is used by the receivers that hear it or are switching to it", "[audioswitch]") {
    auto demand = std::make_shared<EncodeDemand>(3);
    AudioSwitch a(0, demand), b(0, demand);
    CHECK(demand->used(0));
    CHECK_FALSE(demand->used(1));
    a.select(1);
    CHECK(demand->used(1)); // before its first packet: the encode must start first
    run(a, {{0, 0}, {1, 1}});
    CHECK(demand->used(0)); // b still hears it
    b.select(2);
    b.select(0); // cancelled
    CHECK_FALSE(demand->used(2));
    b.release();
    CHECK_FALSE(demand->used(0)); // a switched away, b left
    CHECK(demand->used(1));
    a.release();
    CHECK_FALSE(demand->used(1));
}
