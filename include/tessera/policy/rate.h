#pragma once
// TokenBucket: how many of something (signaling messages, data-channel bytes)
// may pass per second, with a burst. Pure policy: time is passed in
// (monotonic microseconds), integer arithmetic, unit-tested with explicit
// timestamps.
#include <cstdint>

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

} // namespace tessera::policy
