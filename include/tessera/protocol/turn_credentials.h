#pragma once
// TURN REST credentials (draft-uberti-behave-turn-rest, coturn's
// use-auth-secret): a user name that carries its own expiry, and a password
// the TURN server can recompute from the secret it shares with Tessera. A
// leaked pair opens TURN for one participant until it expires, nothing more.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/protocol/messages.h"

namespace tessera {

struct Config;

namespace protocol {

struct TurnCredential {
    std::string username;   // "<expiry, Unix seconds>:<who>"
    std::string credential; // base64(HMAC-SHA1(secret, username))
};

TurnCredential turnCredential(std::string_view secret, std::int64_t expiresAt, std::string_view who);

// The ICE servers for `who` at `now` (Unix seconds): config.iceServers, and
// with a TURN secret configured, turn.urls with a credential minted for
// `who` that expires turn.ttlSeconds later. Static entries for those URLs
// are left out: the minted credential replaces them.
std::vector<IceServer> iceServersFor(const Config& config, std::string_view who, std::int64_t now);

} // namespace protocol
} // namespace tessera
