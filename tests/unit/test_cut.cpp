// The recording cut (include/tessera/policy/cut.h): sound and picture start
// and end together, whatever order the two streams reach the recorder in.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "tessera/policy/cut.h"

using tessera::policy::AvCut;

namespace {

constexpr std::uint64_t kMs = 1'000'000;
constexpr std::uint64_t kFrame = 1'000'000'000 / 15; // the room's 15 frames/s
constexpr std::uint64_t kChunk = 10 * kMs;           // the mixer's 10 ms buffers

struct Buffer {
    AvCut::Stream stream;
    std::uint64_t pts, duration, wall; // wall: when it reaches the recorder
};

// Both streams from running time `from` on, each reaching the recorder
// `latency` after its running time, in wall-time order.
std::vector<Buffer> streams(std::uint64_t from, std::uint64_t until, std::uint64_t videoLatency,
                            std::uint64_t audioLatency) {
    std::vector<Buffer> out;
    // Frame times as the compositor makes them: n/15 s rounded down to the
    // nanosecond, so durations alternate between two values.
    const auto frameTime = [](std::uint64_t n) { return n * 1'000'000'000 / 15; };
    for (std::uint64_t n = from / kFrame; frameTime(n) < until; ++n)
        out.push_back({AvCut::Video, frameTime(n), frameTime(n + 1) - frameTime(n), frameTime(n) + videoLatency});
    for (std::uint64_t t = from / kChunk * kChunk; t < until; t += kChunk)
        out.push_back({AvCut::Audio, t, kChunk, t + audioLatency});
    std::stable_sort(out.begin(), out.end(), [](const Buffer& a, const Buffer& b) { return a.wall < b.wall; });
    return out;
}

struct Recorded {
    std::vector<Buffer> video, audio;
    int reached[2] = {0, 0};
};

// Feeds the buffers, calling stop() at wall time `stopAt`.
Recorded record(AvCut& cut, const std::vector<Buffer>& buffers, std::uint64_t stopAt) {
    Recorded r;
    bool stopped = false;
    for (const Buffer& b : buffers) {
        if (!stopped && b.wall >= stopAt) stopped = cut.stop();
        switch (cut.admit(b.stream, b.pts, b.duration)) {
        case AvCut::Verdict::Pass: (b.stream == AvCut::Video ? r.video : r.audio).push_back(b); break;
        case AvCut::Verdict::Reached: ++r.reached[b.stream]; break;
        case AvCut::Verdict::Drop:
        case AvCut::Verdict::After: break;
        }
    }
    return r;
}

std::int64_t diff(std::uint64_t a, std::uint64_t b) { return static_cast<std::int64_t>(a - b); }

} // namespace

TEST_CASE("the recording cut starts and ends both streams together on a frame boundary", "[cut]") {
    // Either stream may be the late one, by up to a third of a second.
    for (std::uint64_t videoLatency : {0 * kMs, 20 * kMs, 90 * kMs, 300 * kMs})
        for (std::uint64_t audioLatency : {0 * kMs, 15 * kMs, 120 * kMs, 300 * kMs})
            for (std::uint64_t from : {0 * kMs, 25 * kMs, 1234 * kMs}) {
                INFO("video latency " << videoLatency / kMs << " ms, audio " << audioLatency / kMs << " ms, from "
                                      << from / kMs << " ms");
                AvCut cut;
                const Recorded r =
                    record(cut, streams(from, from + 12'000 * kMs, videoLatency, audioLatency), from + 10'000 * kMs);
                REQUIRE(cut.start());
                REQUIRE(cut.end());
                REQUIRE(r.video.size() > 140);
                REQUIRE(r.audio.size() > 950);
                // On the frame grid, and the picture fills the cut exactly.
                CHECK(r.video.front().pts == *cut.start());
                CHECK(r.video.back().pts + r.video.back().duration == *cut.end());
                // Sound within half a buffer of the picture at both ends.
                CHECK(std::abs(diff(r.audio.front().pts, *cut.start())) <= static_cast<std::int64_t>(kChunk / 2));
                CHECK(std::abs(diff(r.audio.back().pts + kChunk, *cut.end())) <= static_cast<std::int64_t>(kChunk / 2));
                // Nothing missing in between: no gap in either stream.
                for (std::size_t i = 1; i < r.video.size(); ++i)
                    CHECK(r.video[i].pts == r.video[i - 1].pts + r.video[i - 1].duration);
                for (std::size_t i = 1; i < r.audio.size(); ++i) CHECK(r.audio[i].pts == r.audio[i - 1].pts + kChunk);
                // Each stream is told once that it got to the end.
                CHECK(cut.done());
                CHECK(r.reached[AvCut::Video] == 1);
                CHECK(r.reached[AvCut::Audio] == 1);
                CHECK(cut.last(AvCut::Video) == cut.end());
            }
}

TEST_CASE("the recording cut starts at the first frame boundary neither stream has passed", "[cut]") {
    AvCut cut;
    // Audio runs ahead: 100 ms of it reach the recorder before the first frame.
    for (std::uint64_t t = 0; t < 100 * kMs; t += kChunk)
        CHECK(cut.admit(AvCut::Audio, t, kChunk) == AvCut::Verdict::Drop);
    CHECK_FALSE(cut.start());
    // The first frame (at 0) fixes the grid; 100 ms is passed already: 2 frames on.
    CHECK(cut.admit(AvCut::Video, 0, kFrame) == AvCut::Verdict::Drop);
    REQUIRE(cut.start());
    CHECK(*cut.start() == 2 * kFrame);
    CHECK(cut.admit(AvCut::Audio, 100 * kMs, kChunk) == AvCut::Verdict::Drop);
    CHECK(cut.admit(AvCut::Video, kFrame, kFrame) == AvCut::Verdict::Drop);
    // 130-140 ms has its middle past 133.3 ms: it is in.
    CHECK(cut.admit(AvCut::Audio, 120 * kMs, kChunk) == AvCut::Verdict::Drop);
    CHECK(cut.admit(AvCut::Audio, 130 * kMs, kChunk) == AvCut::Verdict::Pass);
    CHECK(cut.admit(AvCut::Video, 2 * kFrame, kFrame) == AvCut::Verdict::Pass);
}

TEST_CASE("a recording stopped before both streams arrived has no cut", "[cut]") {
    AvCut cut;
    CHECK_FALSE(cut.stop());
    CHECK(cut.admit(AvCut::Video, 0, kFrame) == AvCut::Verdict::Drop);
    CHECK_FALSE(cut.stop());
    CHECK_FALSE(cut.end());
}

TEST_CASE("without frame durations the cut falls back to the later stream's time", "[cut]") {
    AvCut cut;
    CHECK(cut.admit(AvCut::Audio, 40 * kMs, kChunk) == AvCut::Verdict::Drop);
    CHECK(cut.admit(AvCut::Video, 30 * kMs, 0) == AvCut::Verdict::Drop);
    CHECK(cut.start() == 50 * kMs);
    CHECK(cut.admit(AvCut::Audio, 50 * kMs, kChunk) == AvCut::Verdict::Pass);
    CHECK(cut.admit(AvCut::Video, 60 * kMs, 0) == AvCut::Verdict::Pass);
}
