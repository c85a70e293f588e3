#pragma once
// Where a mixer's frame grid can start so that it is the decoders' grid to
// the nanosecond (docs/recording.md, "Synchronisation"). Pure.
//
// GStreamer's frame times at `fps` frames/s are floor(n * 1e9 / fps) ns from
// a grid's start: each participant's videorate counts from running time 0,
// the compositor from its first output. Started at a time that is itself a
// frame time *and* a whole number of nanoseconds past every frame before it
// (3 frames = 200 ms at 15 frames/s), the compositor's frame n + k starts
// exactly where the decoders' frame n + k does; started anywhere else, each
// of its frames overlaps two of theirs (or one by a nanosecond), and which
// one it shows depends on when they arrived.
#include <cstdint>

namespace tessera::policy {

// The first such start at or after `t` (nanoseconds of running time); `fps` > 0.
constexpr std::uint64_t exactFrameBoundary(std::uint64_t t, std::uint64_t fps) {
    constexpr std::uint64_t kSecond = 1'000'000'000;
    std::uint64_t frames = 1; // the fewest whole frames lasting whole nanoseconds (at most fps)
    while (frames * kSecond % fps != 0) ++frames;
    const std::uint64_t period = frames * kSecond / fps;
    return (t + period - 1) / period * period;
}

} // namespace tessera::policy
