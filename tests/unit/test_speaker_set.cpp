// policy::SpeakerSet: who gets a private mix-minus, on level traces (one
// level per 20 ms Opus frame, as the server measures them).
#include <catch2/catch.hpp>

#include <fstream>
#include <set>
#include <sstream>

#include "tessera/policy/speaker_set.h"

using namespace tessera::policy;

namespace {

constexpr double kQuiet = -70, kLoud = -20;

// Feeds `who` frames of `level` every 20 ms from `fromMs` to `toMs`
// (exclusive); returns every change, in order.
std::vector<SpeakerSet::Change> feed(SpeakerSet& set, const std::vector<std::string>& who, double level,
                                     std::int64_t fromMs, std::int64_t toMs) {
    std::vector<SpeakerSet::Change> changes;
    for (std::int64_t t = fromMs; t < toMs; t += 20)
        for (const auto& id : who)
            if (auto c = set.update(id, level, t)) changes.push_back(*c);
    return changes;
}

// A recorded trace: lines "<ms> <participant> <dBFS>" (tests/data/levels-*.txt),
// replayed in order; returns every change.
std::vector<SpeakerSet::Change> replay(SpeakerSet& set, const std::string& file) {
    std::ifstream in(std::string(TESSERA_SOURCE_DIR "/tests/data/") + file);
    REQUIRE(in);
    std::vector<SpeakerSet::Change> changes;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream fields(line);
        std::int64_t ms = 0;
        std::string id;
        double dbfs = 0;
        REQUIRE(fields >> ms >> id >> dbfs);
        if (auto c = set.update(id, dbfs, ms)) changes.push_back(*c);
    }
    return changes;
}

} // namespace

TEST_CASE("speaker set: nobody below the threshold takes a slot", "[policy][speakerset]") {
    SpeakerSet set;
    CHECK(feed(set, {"a", "b", "c", "d"}, kQuiet, 0, 5000).empty());
    CHECK(set.owners() == std::vector<std::optional<std::string>>(3));
}

TEST_CASE("speaker set: the first loud frame takes a free slot at once", "[policy][speakerset]") {
    SpeakerSet set;
    feed(set, {"a"}, kQuiet, 0, 1000);
    // No hold time: the frame that starts a sentence is already left out of
    // the speaker's own mix.
    const auto c = set.update("a", kLoud, 1000);
    REQUIRE(c);
    CHECK(*c == SpeakerSet::Change{0, "a", std::nullopt});
    CHECK(set.slotOf("a") == 0u);
    CHECK_FALSE(set.update("a", kLoud, 1020)); // already in
}

TEST_CASE("speaker set: an owner keeps its slot through pauses while slots are free", "[policy][speakerset]") {
    SpeakerSet set;
    feed(set, {"a"}, kLoud, 0, 1000);
    feed(set, {"a"}, kQuiet, 1000, 60000);
    CHECK(set.slotOf("a") == 0u);
    // Speaking again after a minute: no switch at all.
    CHECK(feed(set, {"a"}, kLoud, 60000, 61000).empty());
}

TEST_CASE("speaker set: a new speaker evicts the owner quiet the longest, only after the release time",
          "[policy][speakerset]") {
    SpeakerSet set({2, -45.0, 1500});
    feed(set, {"a"}, kLoud, 0, 1000);
    feed(set, {"b"}, kLoud, 1000, 2000); // a quiet from 1000, b from 2000
    // c speaks at 2200: a has been quiet 1.2 s only; nobody is evicted, c hears itself.
    CHECK(feed(set, {"c"}, kLoud, 2200, 2400).empty());
    CHECK(set.overflows() == 10);
    CHECK_FALSE(set.slotOf("c"));
    // At 2500, a has been quiet 1.5 s: c takes a's slot, not b's.
    const auto changes = feed(set, {"c"}, kLoud, 2500, 3000);
    REQUIRE(changes.size() == 1);
    CHECK(changes[0] == SpeakerSet::Change{0, "c", std::string("a")});
    CHECK(set.slotOf("b") == 1u);
    CHECK_FALSE(set.slotOf("a"));
}

TEST_CASE("speaker set: K people taking turns never switch", "[policy][speakerset]") {
    SpeakerSet set;
    std::vector<SpeakerSet::Change> changes;
    // a, b, c alternate, 700 ms each, with pauses, for a minute.
    const std::vector<std::string> who = {"a", "b", "c"};
    for (std::int64_t t = 0, turn = 0; t < 60000; t += 1000, ++turn) {
        auto c = feed(set, {who[static_cast<std::size_t>(turn) % 3]}, kLoud, t, t + 700);
        changes.insert(changes.end(), c.begin(), c.end());
        feed(set, who, kQuiet, t + 700, t + 1000);
    }
    CHECK(changes.size() == 3); // each took a free slot once
    CHECK(set.overflows() == 0);
}

TEST_CASE("speaker set: a leaver's slot is free at once", "[policy][speakerset]") {
    SpeakerSet set({1, -45.0, 1500});
    feed(set, {"a"}, kLoud, 0, 200);
    CHECK(set.remove("a") == 0u);
    CHECK_FALSE(set.remove("a"));
    const auto c = set.update("b", kLoud, 220);
    REQUIRE(c);
    CHECK(*c == SpeakerSet::Change{0, "b", std::nullopt});
}

TEST_CASE("speaker set: NaN, silence floors and a clock going back are handled", "[policy][speakerset]") {
    SpeakerSet set;
    CHECK_FALSE(set.update("a", std::nan(""), 0));
    CHECK_FALSE(set.update("a", -1e9, 20));
    CHECK(set.update("a", kLoud, 10)); // clamped to 20
    CHECK(set.slotOf("a") == 0u);
}

TEST_CASE("speaker set: a recorded room of six speaking in turns and over each other", "[policy][speakerset]") {
    // Levels the server measured (GST_DEBUG=tessera-media:6, "speaker level")
    // in the [kaudio] integration test: six tone clients, K = 3, starting and
    // stopping their tones in the order of that test.
    SpeakerSet set;
    const auto changes = replay(set, "levels-six.txt");
    // Every participant that spoke got a slot at its first loud frame, and
    // nobody found every slot held by someone speaking: no overflow.
    CHECK(set.overflows() == 0);
    std::set<std::string> joined;
    for (const auto& c : changes) joined.insert(c.joined);
    CHECK(joined.size() == 6);
    // Nobody who spoke within the release time was evicted.
    CHECK(changes.size() <= 8);
}
