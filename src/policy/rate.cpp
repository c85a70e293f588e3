#include "tessera/policy/rate.h"

#include <algorithm>

namespace tessera::policy {
namespace {

constexpr std::uint64_t kMicro = 1'000'000;
// Bounds the arithmetic: burst * 1e6 must fit 64 bits.
constexpr std::uint64_t kMaxTokens = std::uint64_t{1} << 40;

} // namespace

TokenBucket::TokenBucket(std::uint64_t perSecond, std::uint64_t burst) noexcept
    : m_perSecond(std::min(perSecond, kMaxTokens)),
      m_capacity(std::clamp<std::uint64_t>(burst, 1, kMaxTokens) * kMicro), m_level(m_capacity) {}

void TokenBucket::refill(std::int64_t nowUs) noexcept {
    if (!m_started) {
        m_started = true;
        m_lastUs = nowUs;
        return;
    }
    if (nowUs <= m_lastUs) return;
    // A level in millionths grows by perSecond each µs. Comparing with the
    // time to fill up first keeps the product in range after a long idle gap.
    const auto elapsed = static_cast<std::uint64_t>(nowUs - m_lastUs);
    const std::uint64_t missing = m_capacity - m_level;
    m_level = elapsed >= missing / m_perSecond + 1 ? m_capacity : std::min(m_capacity, m_level + elapsed * m_perSecond);
    m_lastUs = nowUs;
}

bool TokenBucket::take(std::int64_t nowUs, std::uint64_t count) noexcept {
    if (m_perSecond == 0) return true;
    refill(nowUs);
    if (count > m_capacity / kMicro) return false;
    const std::uint64_t need = count * kMicro;
    if (m_level < need) return false;
    m_level -= need;
    return true;
}

WindowCounter::WindowCounter(std::uint64_t limit, std::int64_t windowUs) noexcept
    : m_limit(limit), m_windowUs(std::max<std::int64_t>(windowUs, 1)) {}

bool WindowCounter::take(std::string_view key, std::int64_t nowUs) {
    if (m_limit == 0) return true;
    // A clock that goes backwards starts no new window.
    if (!m_started || nowUs - m_startUs >= m_windowUs) {
        m_started = true;
        m_startUs = nowUs;
        m_counts.clear();
    }
    auto found = m_counts.find(key);
    if (found == m_counts.end()) found = m_counts.emplace(std::string(key), 0).first;
    if (found->second >= m_limit) return false;
    ++found->second;
    return true;
}

} // namespace tessera::policy
