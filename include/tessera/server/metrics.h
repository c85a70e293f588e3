#pragma once
// GET /metrics: the Prometheus text exposition format (version 0.0.4).
// A pure function of a snapshot, so the format is unit-tested without a server.
#include <string>
#include <string_view>

#include "tessera/room/rooms.h"

namespace tessera::server {

inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string formatPrometheus(const room::MetricsSnapshot& snapshot);

} // namespace tessera::server
