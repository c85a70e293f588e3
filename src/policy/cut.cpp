#include "tessera/policy/cut.h"

#include <algorithm>

namespace tessera::policy {

std::uint64_t AvCut::align(std::uint64_t t) const {
    const std::uint64_t d = m_gridDuration, g = m_gridPts;
    if (d == 0) return t;
    if (t <= g) return g - (g - t) / d * d;
    return g + (t - g + d - 1) / d * d;
}

std::optional<std::uint64_t> AvCut::seen() const {
    if (!m_seen[Video]) return m_seen[Audio];
    if (!m_seen[Audio]) return m_seen[Video];
    return std::max(*m_seen[Video], *m_seen[Audio]);
}

AvCut::Verdict AvCut::admit(Stream stream, std::uint64_t pts, std::uint64_t duration) {
    // The newest frame carries the grid: a frame rate that drifts by a
    // nanosecond per frame (30000/1001) stays on it.
    if (stream == Video && duration > 0) {
        m_gridPts = pts;
        m_gridDuration = duration;
    }
    const Stream other = stream == Video ? Audio : Video;
    if (!m_start && m_seen[other]) m_start = align(std::max(seen().value_or(0), pts));
    const std::uint64_t end = pts + duration;
    m_seen[stream] = std::max(m_seen[stream].value_or(0), end);
    if (!m_start) return Verdict::Drop;

    // A buffer belongs to the side of a cut its middle is on: the sound then
    // starts and ends within half a buffer (5 ms) of the picture, and a frame
    // whose time is rounded (1/15 s in nanoseconds) a nanosecond off the
    // predicted grid still falls on the right side.
    const std::uint64_t at = pts + duration / 2;
    if (at < *m_start) return Verdict::Drop;
    // The frames at the cut replace the prediction, which may be off by the
    // nanoseconds their times were rounded by.
    if (m_end && at >= *m_end) {
        if (m_reached[stream]) return Verdict::After;
        m_reached[stream] = true;
        if (stream == Video) m_end = pts;
        return Verdict::Reached;
    }
    if (stream == Video && !m_last[Video]) m_start = pts;
    m_last[stream] = std::max(m_last[stream].value_or(0), end);
    return Verdict::Pass;
}

bool AvCut::stop() {
    if (!m_start) return false;
    if (!m_end) m_end = std::max(align(seen().value_or(0)), *m_start);
    return true;
}

} // namespace tessera::policy
