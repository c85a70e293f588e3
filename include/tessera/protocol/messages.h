#pragma once
// Typed messages of the signaling WebSocket (docs/protocol.md). Only the
// protocol module sees JSON; everything else uses these structs.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tessera/protocol/error.h"

namespace tessera::protocol {

inline constexpr std::size_t kMaxFrameBytes = 64 * 1024;

struct IceCandidate {
    std::string candidate;
    std::optional<std::string> sdpMid;
    std::optional<unsigned> sdpMLineIndex;
};

struct IceServer {
    std::vector<std::string> urls;
    std::string username;   // empty: omitted on the wire
    std::string credential; // empty: omitted on the wire
};

struct ParticipantInfo {
    std::string id;
    std::string name;
};

// Client to server.
struct Join {
    std::string room; // 1-64 of [A-Za-z0-9_-]
    std::string name; // 1-64 characters (UTF-8 code points)
    std::optional<std::string> token;
    std::optional<std::int64_t> maxBitrate; // bits/s, > 0
    bool receiveOnly = false;
};
struct Offer {
    std::string sdp; // non-empty
};
struct Candidate {
    std::optional<IceCandidate> candidate; // nullopt: end of candidates (JSON null)
};
struct Leave {};
// An extension: the client asks for audio only (true) or video again (false).
struct AudioOnlyRequest {
    bool enabled = false;
};
using ClientMessage = std::variant<Join, Offer, Candidate, Leave, AudioOnlyRequest>;

// Parses one text frame. Throws Error(BadRequest) with a message naming the
// problem: oversize frame, not JSON, not an object, missing/unknown type,
// missing or mistyped field, bad room name, bad name length.
ClientMessage parseClientMessage(std::string_view frame);

bool isValidRoomName(std::string_view room) noexcept;
// A join's `name`: 1-64 characters of UTF-8, no control characters.
bool isValidName(std::string_view name);

// Server to client.
struct Joined {
    std::string id;
    std::string room;
    std::vector<ParticipantInfo> participants; // the others
    std::vector<IceServer> iceServers;
};
struct Answer {
    std::string sdp;
};
struct ParticipantJoined {
    std::string id;
    std::string name;
};
struct ParticipantLeft {
    std::string id;
};
struct LayoutChanged {
    std::string layout;
};
struct Speaker {
    std::string id;
};
struct ErrorMessage {
    ErrorCode code;
    std::string message;
};
// An extension: the room started (or stopped) recording.
struct RecordingChanged {
    bool recording = false;
};
struct VideoSize {
    unsigned width = 0, height = 0; // pixels
    bool operator==(const VideoSize&) const = default;
};
// An extension (docs/protocol.md, `send-size`): the largest size and bit
// rate at which the room shows one of the receiver's own video sources, so
// that it sends no more than that; `active` false: it is not shown at all.
struct SendSize {
    std::string source; // "camera" or "screen"
    bool active = true;
    unsigned width = 0, height = 0; // pixels, even; 0 when not active
    std::int64_t maxBitrate = 0;    // bits/s; 0 when not active
    bool operator==(const SendSize&) const = default;
};
// An extension: the client is sent audio only (enabled, and why: "link",
// "maxBitrate" or "request"), or video again (enabled false, no reason).
struct AudioOnly {
    bool enabled = false;
    std::string reason;
};
// An extension (docs/protocol.md, `on-screen`): whose video the room's
// composite shows now. `shown`: participants with a camera or screen share
// in a tile; `hidden`: participants who send video the layout leaves out
// (e.g. beyond a `recent` layout's eight). Anyone in neither sends no video
// the server has (receive-only, audio-only, not arrived yet). Each in the
// room's order, no id in both.
struct OnScreen {
    std::vector<std::string> shown;
    std::vector<std::string> hidden;
    bool operator==(const OnScreen&) const = default;
};
using ServerMessage = std::variant<Joined, Answer, Candidate, ParticipantJoined, ParticipantLeft, LayoutChanged,
                                   Speaker, ErrorMessage, RecordingChanged, SendSize, AudioOnly, OnScreen>;

// One JSON object per message, "type" first.
std::string serialize(const ServerMessage& message);

// Parses a server message (used by tessera-client and tests). Throws Error.
ServerMessage parseServerMessage(std::string_view frame);
// Serialises a client message (used by tessera-client and tests).
std::string serialize(const ClientMessage& message);

} // namespace tessera::protocol
