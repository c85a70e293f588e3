#pragma once
// Room tokens as signed JWTs (HS256), through libjwt: only the signature and
// the encoding live here; the claims are protocol::RoomTokenClaims'.
#include <string>
#include <string_view>

#include "tessera/protocol/room_token.h"

namespace tessera::auth {

// The claims of `token` if it is a JWT signed with HS256 by `secret`. Throws
// Error(Unauthorized) otherwise: malformed, another algorithm ("none"
// included), a wrong signature, or claims protocol::parseRoomTokenClaims
// refuses. Time and room are the caller's to check (protocol::checkRoomToken).
protocol::RoomTokenClaims verifyRoomToken(std::string_view token, std::string_view secret);

// `claims` signed with `secret` (HS256), as a compact JWT.
std::string mintRoomToken(const protocol::RoomTokenClaims& claims, std::string_view secret);

} // namespace tessera::auth
