// TURN REST credentials: the HMAC against a vector computed with openssl
// (printf '%s' '1800086400:p1' | openssl dgst -sha1 -hmac north-wind-42 -binary | base64),
// and which ICE servers a joiner gets.
#include <catch2/catch.hpp>

#include "tessera/protocol/config.h"
#include "tessera/protocol/turn_credentials.h"

using namespace tessera;
using namespace tessera::protocol;

namespace {
constexpr std::int64_t kNow = 1'800'000'000;
} // namespace

TEST_CASE("a TURN credential is the HMAC-SHA1 of its expiry and owner", "[turn]") {
    const TurnCredential c = turnCredential("north-wind-42", kNow + 86400, "p1");
    CHECK(c.username == "1800086400:p1");
    CHECK(c.credential == "V2OCCzcwa0dhUMIn/b0t3AER1CQ=");
    CHECK(turnCredential("north-wind-43", kNow + 86400, "p1").credential != c.credential);
}

TEST_CASE("without a TURN secret joiners get the configured ICE servers as they are", "[turn]") {
    Config config;
    applyConfigJson(config, R"({"iceServers":[{"urls":"stun:stun.example.org:3478"},
        {"urls":"turn:turn.example.org:3478","username":"u","credential":"p"}]})");
    const auto servers = iceServersFor(config, "p1", kNow);
    REQUIRE(servers.size() == 2);
    CHECK(servers[1].username == "u");
    CHECK(servers[1].credential == "p");
}

TEST_CASE("with a TURN secret each joiner gets its own credential, replacing static ones", "[turn]") {
    Config config;
    applyConfigJson(config, R"({"iceServers":[{"urls":"stun:stun.example.org:3478"},
        {"urls":["turn:turn.example.org:3478","turn:other.example.org:3478"],"username":"u","credential":"p"}],
        "turn":{"secret":"north-wind-42","urls":["turn:turn.example.org:3478"],"ttlSeconds":600}})");
    const auto servers = iceServersFor(config, "p1", kNow);
    REQUIRE(servers.size() == 3);
    CHECK(servers[0].urls == std::vector<std::string>{"stun:stun.example.org:3478"});
    // The other TURN server keeps its static credential; the minted URL left its entry.
    CHECK(servers[1].urls == std::vector<std::string>{"turn:other.example.org:3478"});
    CHECK(servers[1].username == "u");
    CHECK(servers[2].urls == std::vector<std::string>{"turn:turn.example.org:3478"});
    CHECK(servers[2].username == "1800000600:p1");
    CHECK(servers[2].credential == turnCredential("north-wind-42", kNow + 600, "p1").credential);
    // Another participant, another credential.
    CHECK(iceServersFor(config, "p2", kNow)[2].credential != servers[2].credential);
}

TEST_CASE("the turn config is checked", "[turn][config]") {
    Config config;
    CHECK(config.turn.ttlSeconds == 86400);
    CHECK_THROWS_WITH(applyConfigJson(config, R"({"turn":{"secret":"s"}})"),
                      Catch::Contains("turn.urls") && Catch::Contains("go together"));
    CHECK_THROWS_WITH(applyConfigJson(config, R"({"turn":{"urls":["turn:h:3478"]}})"), Catch::Contains("turn.secret"));
    CHECK_THROWS_WITH(applyConfigJson(config, R"({"turn":{"secret":"s","urls":["stun:h:3478"]}})"),
                      Catch::Contains("turn.urls[0]"));
    CHECK_THROWS_WITH(applyConfigJson(config, R"({"turn":{"secret":"s","urls":["turn:h"],"ttlSeconds":0}})"),
                      Catch::Contains("turn.ttlSeconds"));
    CHECK_THROWS_WITH(applyConfigJson(config, R"({"turn":{"realm":"x"}})"), Catch::Contains("turn.realm"));
}
