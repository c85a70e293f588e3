#pragma once
// Room tokens: the claims of a signed JWT (HS256) that lets its holder into
// one room under one name with some rights (docs/security.md). Pure: the
// signature is checked elsewhere (src/auth, libjwt); this reads and checks
// the claims, with the time passed in, so every rule is unit-tested.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tessera::protocol {

// What a token lets its holder do. A token without a "grants" claim is a
// participant's: publish and subscribe.
struct Grants {
    bool publish = true;   // send audio and video
    bool subscribe = true; // receive the room's mix
    bool admin = false;    // use the room's admin API as a bearer token
    bool operator==(const Grants&) const = default;
};

struct RoomTokenClaims {
    std::string room;                // "room": the one room it opens
    std::string name;                // "name": the display name, used instead of the join's
    std::int64_t exp = 0;            // "exp": expiry, seconds since the epoch; required
    std::optional<std::int64_t> nbf; // "nbf": not valid before
    std::optional<std::int64_t> iat; // "iat": issued at (informational)
    std::string jti;                 // "jti": the token's unique id (tessera token sets one); optional
    Grants grants;                   // "grants": ["publish", "subscribe", "admin"]
};

// How far the issuer's clock may be from ours, seconds: a token is accepted
// this long after "exp" and before "nbf".
inline constexpr std::int64_t kClockSkewSeconds = 30;

// The claims of a verified token's payload (a JSON object). Throws
// Error(Unauthorized) naming the claim that is missing or malformed;
// unknown claims are ignored (issuers add their own).
RoomTokenClaims parseRoomTokenClaims(std::string_view payload);
// The payload `tessera token` signs.
std::string serializeRoomTokenClaims(const RoomTokenClaims& claims);

// Throws Error(Unauthorized) unless the claims let their holder into `room`
// at `now` (seconds since the epoch): the same room, not expired, already valid.
void checkRoomToken(const RoomTokenClaims& claims, std::string_view room, std::int64_t now);

// "publish,subscribe,admin" (any order, a subset) as grants; those not named
// are off. Throws Error(BadRequest) for an unknown or empty list.
Grants parseGrants(std::string_view list);
// "90", "90s", "15m", "1h", "7d" in seconds; nullopt for anything else,
// zero, or more than a year.
std::optional<std::int64_t> parseDuration(std::string_view text);

} // namespace tessera::protocol
