#pragma once
// GET /metrics: the Prometheus text exposition format (version 0.0.4).
// A pure function of a snapshot, so the format is unit-tested without a server.
#include <cstdint>
#include <string>
#include <string_view>

#include "tessera/room/rooms.h"

namespace tessera::server {

inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

// The main loop's health (server/loop_watch.h), which the rooms cannot say.
struct LoopHealth {
    double longestDelaySeconds = 0; // the longest a due timer ran late, over the last 10-20 s
    std::uint64_t stalls = 0;       // times it ran over a second late
};

std::string formatPrometheus(const room::MetricsSnapshot& snapshot, const LoopHealth& loop);

} // namespace tessera::server
