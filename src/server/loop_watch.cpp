#define G_LOG_DOMAIN "tessera-server"
#include "loop_watch.h"

#include <algorithm>

namespace tessera::server {
namespace {

constexpr guint kTickMs = 100;
constexpr std::int64_t kStallUs = G_USEC_PER_SEC;
constexpr std::int64_t kWindowUs = 10 * G_USEC_PER_SEC;

} // namespace

LoopWatch::LoopWatch() {
    m_windowStartUs = g_get_monotonic_time();
    m_dueUs = m_windowStartUs + kTickMs * 1000;
    m_source = g_timeout_add(kTickMs, onTick, this);
}

LoopWatch::~LoopWatch() { g_source_remove(m_source); }

// Thread: main. GLib schedules the next tick kTickMs after this one runs.
gboolean LoopWatch::onTick(gpointer data) noexcept {
    auto* self = static_cast<LoopWatch*>(data);
    const std::int64_t now = g_get_monotonic_time();
    const std::int64_t late = std::max<std::int64_t>(0, now - self->m_dueUs);
    if (late >= kStallUs) {
        ++self->m_stalls;
        g_warning("the main loop was held for %" G_GINT64_FORMAT
                  " ms: signaling, the API and every room's congestion control waited",
                  late / 1000);
    }
    if (now - self->m_windowStartUs >= kWindowUs) {
        self->m_previousLongestUs = self->m_longestUs;
        self->m_longestUs = 0;
        self->m_windowStartUs = now;
    }
    self->m_longestUs = std::max(self->m_longestUs, late);
    self->m_dueUs = now + kTickMs * 1000;
    return G_SOURCE_CONTINUE;
}

LoopHealth LoopWatch::health() const {
    return {static_cast<double>(std::max(m_longestUs, m_previousLongestUs)) / G_USEC_PER_SEC, m_stalls};
}

} // namespace tessera::server
