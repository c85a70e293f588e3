#pragma once
// Bodies of the HTTP API (PROTOCOL.md "HTTP"). The protocol module owns the JSON.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/error.h"
#include "tessera/layout_spec.h"

namespace tessera::api {

struct ParticipantSummary {
    std::string id;
    std::string name;
    std::string tier = "high";
    bool receiveOnly = false;
    std::uint64_t bitrateIn = 0;  // bits/s
    std::uint64_t bitrateOut = 0; // bits/s
    std::uint64_t packetsLost = 0;
};

struct RoomSummary {
    std::string room;
    unsigned participants = 0;
    std::string layout;
    bool recording = false;
};

struct RoomDetail {
    std::string room;
    std::string layout;
    bool recording = false;
    std::vector<ParticipantSummary> participants;
};

// PUT /api/rooms/{room}/layout: {"layout": "name"} or {"layout": {spec}}.
struct LayoutRequest {
    std::optional<std::string> name;
    std::optional<protocol::LayoutSpec> spec;
};

std::string serialize(const std::vector<RoomSummary>& rooms);
std::string serialize(const RoomDetail& room);
// POST /api/layouts/reload: {"layouts": [names]}
std::string serializeLayoutNames(const std::vector<std::string>& names);
// {"error": code, "message": text}
std::string serializeError(ErrorCode code, std::string_view message);
// Throws Error(BadRequest) naming the problem (for a spec: the field).
LayoutRequest parseLayoutRequest(std::string_view body);

} // namespace tessera::api
