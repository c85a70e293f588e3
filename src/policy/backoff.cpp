#include "tessera/policy/backoff.h"

#include <algorithm>

namespace tessera::policy {

Backoff::Backoff(std::int64_t firstMs, std::int64_t maxMs)
    : m_firstMs(std::max<std::int64_t>(1, firstMs)), m_maxMs(std::max(m_firstMs, maxMs)), m_nextMs(m_firstMs) {}

void Backoff::started(std::int64_t nowMs) { m_startedMs = nowMs; }

std::int64_t Backoff::failed(std::int64_t nowMs) {
    // A long run was a success: whatever broke it is new, so try soon.
    if (nowMs - m_startedMs >= m_maxMs) m_nextMs = m_firstMs;
    const std::int64_t wait = m_nextMs;
    m_nextMs = std::min(m_maxMs, m_nextMs * 2);
    return wait;
}

} // namespace tessera::policy
