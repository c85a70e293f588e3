// URI schemes: one check for the configuration's ICE server URLs and a
// WHIP/WHEP Link header's.
#include <catch2/catch.hpp>

#include "tessera/protocol/uri.h"

using tessera::protocol::hasScheme;

TEST_CASE("uri: a scheme is matched whole and in any case (RFC 3986 3.1)", "[uri]") {
    CHECK(hasScheme("stun:stun.example.org:3478", {"stun"}));
    CHECK(hasScheme("STUN:stun.example.org", {"stun"}));
    CHECK(hasScheme("Turns:t.example:5349?transport=tcp", {"turn", "turns"}));
    CHECK(hasScheme("turn:t", {"stun", "turn"}));
    // Whole: "stuns" is not "stun", nor "stun" "stuns".
    CHECK_FALSE(hasScheme("stuns:s", {"stun"}));
    CHECK_FALSE(hasScheme("stun:s", {"stuns"}));
    CHECK_FALSE(hasScheme("turn:t", {"turns"}));
    CHECK_FALSE(hasScheme("http://b", {"stun", "stuns", "turn", "turns"}));
}

TEST_CASE("uri: no scheme, an empty one, or nothing after it is no match", "[uri]") {
    for (const char* uri : {"", ":", "stun", "stun:", "STUN:", ":stun:s", " stun:s", "st un:s", "stun.example.org"})
        CHECK_FALSE(hasScheme(uri, {"stun", "turn"}));
    CHECK_FALSE(hasScheme("stun:s", {}));
    // Case folds ASCII letters only: no other byte stands in for one.
    CHECK_FALSE(hasScheme("\xc5\xbftun:s", {"stun"}));
}
