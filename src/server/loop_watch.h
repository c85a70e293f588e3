#pragma once
// A timer on the main loop that notes how late it fires. Whatever holds
// the main loop (a slow call on it, a wait for a streaming thread) holds
// every room's signaling, the API, probes and congestion feedback with it,
// and shows nowhere else: a latency recalculation once held it 3.7 s in a
// room of 30, and a joiner's media waited that long. Each delay over a
// second is logged with its length and where the time went (the thread
// running, waiting for a CPU, or blocked); /metrics has the longest of late.
#include <cstdint>
#include <utility>

#include <glib.h>

#include "tessera/server/metrics.h"

namespace tessera::server {

class LoopWatch {
public:
    LoopWatch(); // Thread: main (the loop it watches: the default context's).
    ~LoopWatch();
    LoopWatch(const LoopWatch&) = delete;
    LoopWatch& operator=(const LoopWatch&) = delete;

    LoopHealth health() const; // Thread: main.

private:
    static gboolean onTick(gpointer self) noexcept;

    guint m_source = 0;
    std::int64_t m_dueUs = 0;         // when the next tick is due
    std::int64_t m_lastTickUs = 0;    // when the last one ran, and this thread's times then (µs):
    std::int64_t m_runningUs = 0;     // on a CPU
    std::int64_t m_waitingUs = 0;     // waiting for one
    std::int64_t m_windowStartUs = 0; // the longest delay is kept per window, the last two reported
    std::int64_t m_longestUs = 0;
    std::int64_t m_previousLongestUs = 0;
    std::uint64_t m_stalls = 0;
};

} // namespace tessera::server
