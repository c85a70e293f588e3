#pragma once
// When to try again after a failure (a live target's reconnects): the wait
// doubles with each failure in a row, from `firstMs` up to `maxMs`; an
// attempt that ran for `maxMs` or longer counts as a success, so the next
// failure waits `firstMs` again. Pure: time is passed in.
#include <cstdint>

namespace tessera::policy {

class Backoff {
public:
    Backoff(std::int64_t firstMs, std::int64_t maxMs);
    // An attempt started at `nowMs`.
    void started(std::int64_t nowMs);
    // The attempt failed at `nowMs`: how long to wait before the next one.
    std::int64_t failed(std::int64_t nowMs);

private:
    std::int64_t m_firstMs;
    std::int64_t m_maxMs;
    std::int64_t m_nextMs; // the wait after the next failure
    std::int64_t m_startedMs = 0;
};

} // namespace tessera::policy
