#define G_LOG_DOMAIN "tessera-server"
#include "loop_watch.h"

#include <algorithm>
#include <cstdio>
#include <tuple>

namespace tessera::server {
namespace {

constexpr guint kTickMs = 100;
constexpr std::int64_t kStallUs = G_USEC_PER_SEC;
constexpr std::int64_t kWindowUs = 10 * G_USEC_PER_SEC;

// This thread's time on a CPU and waiting for one, in µs, from the kernel's
// scheduler statistics; zeros where they cannot be read.
std::pair<std::int64_t, std::int64_t> schedulerTimes() {
    unsigned long long running = 0, waiting = 0;
    if (FILE* f = std::fopen("/proc/thread-self/schedstat", "r")) {
        if (std::fscanf(f, "%llu %llu", &running, &waiting) != 2) running = waiting = 0;
        std::fclose(f);
    }
    return {static_cast<std::int64_t>(running / 1000), static_cast<std::int64_t>(waiting / 1000)};
}

} // namespace

LoopWatch::LoopWatch() {
    m_windowStartUs = g_get_monotonic_time();
    m_dueUs = m_windowStartUs + kTickMs * 1000;
    m_lastTickUs = m_windowStartUs;
    std::tie(m_runningUs, m_waitingUs) = schedulerTimes();
    m_source = g_timeout_add(kTickMs, onTick, this);
}

LoopWatch::~LoopWatch() { g_source_remove(m_source); }

// Thread: main. GLib schedules the next tick kTickMs after this one runs.
gboolean LoopWatch::onTick(gpointer data) noexcept {
    auto* self = static_cast<LoopWatch*>(data);
    const std::int64_t now = g_get_monotonic_time();
    const std::int64_t late = std::max<std::int64_t>(0, now - self->m_dueUs);
    const auto [running, waiting] = schedulerTimes();
    if (late >= kStallUs) {
        ++self->m_stalls;
        // Since the last tick: on a CPU is a slow call on the main loop;
        // waiting for a CPU is a machine that has none to give; the rest it
        // slept, on a lock or another thread.
        const std::int64_t ran = running - self->m_runningUs, queued = waiting - self->m_waitingUs;
        const std::int64_t slept = std::max<std::int64_t>(0, now - self->m_lastTickUs - ran - queued);
        g_warning("the main loop ran %" G_GINT64_FORMAT " ms late (signaling, the API and every room's congestion "
                  "control waited): %" G_GINT64_FORMAT " ms running, %" G_GINT64_FORMAT
                  " ms waiting for a CPU, %" G_GINT64_FORMAT " ms blocked",
                  late / 1000, ran / 1000, queued / 1000, slept / 1000);
    }
    if (now - self->m_windowStartUs >= kWindowUs) {
        self->m_previousLongestUs = self->m_longestUs;
        self->m_longestUs = 0;
        self->m_windowStartUs = now;
    }
    self->m_longestUs = std::max(self->m_longestUs, late);
    self->m_dueUs = now + kTickMs * 1000;
    self->m_lastTickUs = now;
    self->m_runningUs = running;
    self->m_waitingUs = waiting;
    return G_SOURCE_CONTINUE;
}

LoopHealth LoopWatch::health() const {
    return {static_cast<double>(std::max(m_longestUs, m_previousLongestUs)) / G_USEC_PER_SEC, m_stalls};
}

} // namespace tessera::server
