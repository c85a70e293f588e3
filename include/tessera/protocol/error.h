#pragma once
// The project error type: thrown at protocol/room level, caught by the
// WebSocket and HTTP handlers and answered per docs/protocol.md.
#include <stdexcept>
#include <string>
#include <string_view>

namespace tessera {

enum class ErrorCode {
    BadRequest,
    Unauthorized,
    RoomFull,
    NotJoined,
    NotFound,
    Conflict,
    Internal,
    Forbidden,   // a cross-site request (Origin not allowed)
    RateLimited, // too many messages or connections
    Timeout,     // joined but did not offer in time
    ServerFull,  // the server has its maximum number of rooms
};

// The wire spelling: "bad-request", "unauthorized", "room-full", "not-joined",
// "not-found", "conflict", "internal", "forbidden", "rate-limited", "timeout",
// "server-full".
std::string_view toString(ErrorCode code) noexcept;
// The HTTP status that fits the code (400, 401, 409, 409, 404, 409, 500, 403,
// 429, 408, 503).
int httpStatus(ErrorCode code) noexcept;

class Error : public std::runtime_error {
public:
    Error(ErrorCode code, const std::string& message) : std::runtime_error(message), m_code(code) {}
    ErrorCode code() const noexcept { return m_code; }

private:
    ErrorCode m_code;
};

} // namespace tessera
