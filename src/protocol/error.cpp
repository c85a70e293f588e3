#include "tessera/protocol/error.h"

namespace tessera {

std::string_view toString(ErrorCode code) noexcept {
    switch (code) {
    case ErrorCode::BadRequest: return "bad-request";
    case ErrorCode::Unauthorized: return "unauthorized";
    case ErrorCode::RoomFull: return "room-full";
    case ErrorCode::NotJoined: return "not-joined";
    case ErrorCode::NotFound: return "not-found";
    case ErrorCode::Conflict: return "conflict";
    case ErrorCode::Internal: return "internal";
    case ErrorCode::Forbidden: return "forbidden";
    case ErrorCode::RateLimited: return "rate-limited";
    case ErrorCode::Timeout: return "timeout";
    case ErrorCode::ServerFull: return "server-full";
    }
    // Only reachable with a value cast from outside the enum.
    return "internal";
}

int httpStatus(ErrorCode code) noexcept {
    switch (code) {
    case ErrorCode::BadRequest: return 400;
    case ErrorCode::Unauthorized: return 401;
    case ErrorCode::NotFound: return 404;
    // A full room or a request that needs a join first is a conflict with the
    // current state, not a malformed request.
    case ErrorCode::RoomFull:
    case ErrorCode::NotJoined:
    case ErrorCode::Conflict: return 409;
    case ErrorCode::Internal: return 500;
    case ErrorCode::Forbidden: return 403;
    case ErrorCode::RateLimited: return 429;
    case ErrorCode::Timeout: return 408;
    case ErrorCode::ServerFull: return 503;
    }
    return 500;
}

} // namespace tessera
