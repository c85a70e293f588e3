#pragma once
// AvCut: where a recording of one video and one audio stream starts and
// ends, so that both start and end at the same instant (docs/recording.md:
// within 40 ms). Pure: times are nanoseconds of running time, and the
// recorder's entry pads ask it, buffer by buffer, whether to let one in.
//
// Two facts shape it:
// - Video frames are coarse (33-66 ms) and audio buffers fine (10 ms), so
//   the cut lies on a video frame boundary, predicted from the frame grid.
// - A pad that dropped a buffer cannot get it back, and the two streams reach
//   the pads at different wall times. So a cut is never placed before what
//   either stream has already shown: it is the first frame boundary at or
//   after the end of everything seen so far, on both streams.
// Not thread-safe: the recorder calls it under its own lock.
#include <cstdint>
#include <optional>

namespace tessera::policy {

class AvCut {
public:
    enum Stream { Video = 0, Audio = 1 };
    enum class Verdict {
        Pass,    // inside the cut
        Drop,    // before the start (or before there is one)
        Reached, // the first buffer at or past the end: the stream is done (drop it)
        After,   // past the end, after Reached
    };

    // A buffer at `pts` lasting `duration` (0: unknown) on `stream`.
    Verdict admit(Stream stream, std::uint64_t pts, std::uint64_t duration);
    // Sets the end from what has been seen; false when nothing started (no end).
    bool stop();
    // Both streams got to the end.
    bool done() const { return m_reached[Video] && m_reached[Audio]; }

    // Predicted, then set to the first and last frames' own times once they came.
    std::optional<std::uint64_t> start() const { return m_start; }
    std::optional<std::uint64_t> end() const { return m_end; }
    // End of the last buffer let in on a stream.
    std::optional<std::uint64_t> last(Stream stream) const { return m_last[stream]; }

private:
    // The first video frame boundary at or after `t` (t itself without a grid).
    std::uint64_t align(std::uint64_t t) const;
    // The end of everything seen on both streams, before the current buffer.
    std::optional<std::uint64_t> seen() const;

    std::optional<std::uint64_t> m_seen[2]; // end of the last buffer seen (let in or not)
    std::optional<std::uint64_t> m_last[2]; // end of the last buffer let in
    std::uint64_t m_gridPts = 0;            // a video frame's start...
    std::uint64_t m_gridDuration = 0;       // ...and the frame duration (0: no grid yet)
    std::optional<std::uint64_t> m_start, m_end;
    bool m_reached[2] = {false, false};
};

} // namespace tessera::policy
