#pragma once
// Coalesces changes to what the server tells clients, per key: a key's first
// value is due at once, a change is due at once too unless that key's last
// one went less than `intervalMs` ago, then when the interval ends, with the
// latest value. A change back to what was sent cancels it. So a burst of
// joins, speaker changes or layout switches costs at most one message per key
// per interval, and a single change is never delayed. Used for `send-size`
// (a key per source) and `on-screen` (one key per room). Pure policy: no
// GStreamer, no GLib; time is passed in (ms, monotonic).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tessera::policy {

template <class T>
class Coalescer {
public:
    explicit Coalescer(std::int64_t intervalMs = 500) : m_intervalMs(intervalMs) {}

    // When it is due depends on when the last one went, not on when it changed.
    void want(const std::string& key, const T& value) {
        State& state = m_states[key];
        if (state.sent == value)
            state.pending.reset();
        else
            state.pending = value;
    }
    // The key is gone: nothing pending, and its next value is a first one.
    void forget(const std::string& key) { m_states.erase(key); }
    // The values due at nowMs, each marked sent; in key order.
    std::vector<std::pair<std::string, T>> due(std::int64_t nowMs) {
        std::vector<std::pair<std::string, T>> out;
        for (auto& [key, state] : m_states) {
            if (!state.pending || dueAt(state) > nowMs) continue;
            out.emplace_back(key, *state.pending);
            state.sent = std::move(state.pending);
            state.pending.reset();
            state.sentAtMs = nowMs;
        }
        return out;
    }
    // When the earliest pending value is due (a first one: INT64_MIN, so
    // compare it with now rather than subtract); none pending: nullopt.
    std::optional<std::int64_t> nextDueMs() const {
        std::optional<std::int64_t> next;
        for (const auto& [key, state] : m_states)
            if (state.pending) next = std::min(next.value_or(std::numeric_limits<std::int64_t>::max()), dueAt(state));
        return next;
    }

private:
    struct State {
        std::optional<T> sent;
        std::int64_t sentAtMs = 0;
        std::optional<T> pending;
    };
    std::int64_t dueAt(const State& state) const {
        if (!state.sent) return std::numeric_limits<std::int64_t>::min();
        return state.sentAtMs + m_intervalMs;
    }

    std::int64_t m_intervalMs;
    std::map<std::string, State> m_states;
};

} // namespace tessera::policy
