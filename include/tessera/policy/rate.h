#pragma once
// TokenBucket: how many of something (signaling messages, data-channel bytes)
// may pass per second, with a burst. Pure policy: time is passed in
// (monotonic microseconds), integer arithmetic, unit-tested with explicit
// timestamps.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace tessera::policy {

class TokenBucket {
public:
    // `perSecond` tokens are added each second, up to `burst` (at least 1);
    // the bucket starts full. perSecond 0: unlimited (take() always succeeds).
    TokenBucket(std::uint64_t perSecond, std::uint64_t burst) noexcept;

    // Takes `count` tokens if the bucket holds them and says whether it did.
    // A count larger than the burst never passes (unless unlimited). A clock
    // that goes backwards adds nothing.
    bool take(std::int64_t nowUs, std::uint64_t count = 1) noexcept;

private:
    void refill(std::int64_t nowUs) noexcept;

    std::uint64_t m_perSecond;
    std::uint64_t m_capacity; // burst, in millionths of a token
    std::uint64_t m_level;    // millionths of a token: exact for any whole rate per second
    std::int64_t m_lastUs = 0;
    bool m_started = false;
};

// WindowCounter: how many of something (joins) one key (a client address)
// may do per window (a minute). Fixed windows: every count restarts when a
// window ends, so only the keys seen in the current window are held.
class WindowCounter {
public:
    // limit 0: unlimited (take() always succeeds and holds nothing).
    WindowCounter(std::uint64_t limit, std::int64_t windowUs) noexcept;

    // Counts one for `key` and says whether it stayed within the limit; a
    // refused one is not counted.
    bool take(std::string_view key, std::int64_t nowUs);

private:
    std::uint64_t m_limit;
    std::int64_t m_windowUs;
    std::int64_t m_startUs = 0;
    bool m_started = false;
    std::map<std::string, std::uint64_t, std::less<>> m_counts;
};

} // namespace tessera::policy
