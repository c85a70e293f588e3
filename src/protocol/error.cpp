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
    }
    return 500;
}

} // namespace tessera
