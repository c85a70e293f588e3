// Room tokens (docs/security.md): with a token secret, only a JWT signed
// with it, for that room, in its time window and not revoked, lets a join in,
// under the token's name and with the token's grants. Tokens come from
// `tessera token` as an operator makes them, and are forged here the way an
// attacker would (libjwt through src/auth, raw base64).
#include <glib.h>

#include <catch2/catch.hpp>

#include "files.h"
#include "harness.h"
#include "tessera/auth/jwt.h"

using namespace tessera::testing;
using tessera::protocol::Grants;
using tessera::protocol::RoomTokenClaims;

namespace {

const std::string kSecret = "a-test-secret-that-is-32-chars-long!";
const std::string kAdmin = "adm1n";

std::string mint(const std::string& room, const std::string& name, const std::string& grants = "publish,subscribe") {
    const Run run = runTessera(
        {"token", "--token-secret", kSecret, "--room", room, "--name", name, "--ttl", "1h", "--grants", grants});
    INFO("stderr: " << run.err);
    REQUIRE(run.status == 0);
    REQUIRE(run.out.size() == 1);
    return run.out.front();
}

std::int64_t now() { return g_get_real_time() / G_USEC_PER_SEC; }

// The header {"alg":"none","typ":"JWT"}, base64url-encoded: an unsigned token's.
constexpr const char* kUnsignedHeader = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";

// The middle of a compact JWT: its payload, base64url-encoded.
std::string payloadOf(const std::string& token) {
    const auto first = token.find('.');
    return token.substr(first + 1, token.find('.', first + 1) - first - 1);
}

std::string joinWith(const std::string& room, const std::string& name, const std::string& token) {
    return Json{{"type", "join"}, {"room", room}, {"name", name}, {"token", token}}.dump();
}

// The join is answered `unauthorized`, and with nothing else.
void refused(Server& server, const std::string& join, const std::string& reason) {
    RawSocket ws(server.ws());
    ws.send(join);
    const auto reply = ws.receive();
    REQUIRE(reply.has_value());
    INFO("reply " << reply->dump());
    CHECK(reply->value("type", "") == "error");
    CHECK(reply->value("code", "") == "unauthorized");
    CHECK_THAT(reply->value("message", ""), Catch::Matchers::Contains(reason));
    CHECK_FALSE(ws.receive(1s).has_value());
}

Json roomsList(Server& server) { return jsonOf(httpRequest("GET", server.http() + "/api/rooms", {}, kAdmin)); }

ClientOptions withToken(const std::string& room, const std::string& name, const std::string& token) {
    return ClientOptions{room, name, "0xff0000", 440, {}, false, {"--token", token}};
}

} // namespace

TEST_CASE("room tokens: every forged, stale or misused token is unauthorized and opens nothing", "[server][tokens]") {
    Server server({"--token-secret", kSecret, "--admin-token", kAdmin});
    const std::string good = mint("club", "Ada");
    const auto forge = [](const RoomTokenClaims& claims, const std::string& secret) {
        return tessera::auth::mintRoomToken(claims, secret);
    };
    const std::int64_t t = now();
    // Eve's claims, encoded as a token carries them (signed with a secret not the server's).
    const std::string payload = payloadOf(forge({"club", "Eve", t + 3600, t, t, "", Grants{}}, kSecret + "?"));
    const std::string header = good.substr(0, good.find('.'));
    const std::string signature = good.substr(good.rfind('.') + 1);

    refused(server, R"({"type":"join","room":"club","name":"Eve"})", "needs a room token");
    refused(server, joinWith("club", "Eve", ""), "not a JWT");
    refused(server, joinWith("club", "Eve", "not.a.jwt"), "not a JWT");
    refused(server, joinWith("club", "Eve", forge({"club", "Eve", t + 3600, t, t, "", Grants{}}, kSecret + "?")),
            "not a JWT signed by this server");
    refused(server, joinWith("club", "Eve", forge({"club", "Eve", t - 120, t - 3600, t - 3600, "", Grants{}}, kSecret)),
            "expired");
    refused(server, joinWith("club", "Eve", forge({"club", "Eve", t + 7200, t + 3600, t, "", Grants{}}, kSecret)),
            "not valid yet");
    // A good token for room "club" does not open "lounge".
    refused(server, joinWith("lounge", "Ada", good), "another room");
    // Ada's signature over Eve's payload.
    refused(server, joinWith("club", "Eve", header + "." + payload + "." + signature), "not a JWT");
    // Unsigned.
    refused(server, joinWith("club", "Eve", std::string(kUnsignedHeader) + "." + payload + "."), "");
    // The static join token means nothing once room tokens are on.
    refused(server, joinWith("club", "Eve", kSecret), "not a JWT");
    CHECK(roomsList(server).empty());

    // The good one gets a call, under the token's name whatever the join says.
    Client ada(server, withToken("club", "Mallory", good));
    ada.waitEvent("first-frame");
    const Json room = jsonOf(httpRequest("GET", server.http() + "/api/rooms/club", {}, kAdmin));
    REQUIRE(room.at("participants").size() == 1);
    CHECK(room.at("participants")[0].value("name", "") == "Ada");
    ada.leave();
}

TEST_CASE("room tokens: a subscribe-only token may receive but not send", "[server][tokens]") {
    Server server({"--token-secret", kSecret, "--admin-token", kAdmin});
    Client speaker(server, withToken("talk", "speaker", mint("talk", "speaker")));
    speaker.waitEvent("connected");
    const std::string listenerToken = mint("talk", "listener", "subscribe");

    // Offering to send: refused, and nothing of it reaches the room.
    Client sender(server, withToken("talk", "listener", listenerToken));
    sender.waitEvent("joined");
    const Json error = sender.waitEvent("error");
    CHECK(error.value("code", "") == "unauthorized");
    CHECK_THAT(error.value("message", ""), Catch::Matchers::Contains("no publish grant"));
    // It stays in the room, without media.
    const Json detail = jsonOf(httpRequest("GET", server.http() + "/api/rooms/talk", {}, kAdmin));
    REQUIRE(detail.at("participants").size() == 2);
    CHECK(detail.at("participants")[1].value("name", "") == "listener");
    CHECK(detail.at("participants")[1].value("bitrateIn", -1) == 0);
    // Its peer connection never connected: exit status 1.
    sender.command("leave");
    CHECK(sender.waitExit() == 1);

    // Receive-only with the same token: the room's mix arrives.
    Client listener(server,
                    ClientOptions{"talk", "listener", "0x00ff00", 660, {440}, true, {"--token", listenerToken}});
    const Json report =
        listener.waitReport([](const Json& r) { return r.value("frames", 0) > 10 && tone(r, 440) > -30; });
    INFO("report " << brief(report));
    CHECK(report.value("frames", 0) > 10);
    CHECK(tone(report, 440) > -30);
    listener.leave();
    speaker.leave();
}

TEST_CASE("room tokens: a kicked participant cannot come back with the same token", "[server][tokens]") {
    Server server({"--token-secret", kSecret, "--admin-token", kAdmin});
    const std::string token = mint("door", "Bob");
    Client bob(server, withToken("door", "Bob", token));
    const std::string id = bob.waitEvent("joined").value("id", "");
    bob.waitEvent("connected");
    CHECK(httpRequest("DELETE", server.http() + "/api/rooms/door/participants/" + id, {}, kAdmin).status == 204);
    bob.waitEvent("closed");
    refused(server, joinWith("door", "Bob", token), "revoked");
    // A token issued anew (even within the same second) lets them in again.
    RawSocket ws(server.ws());
    ws.send(joinWith("door", "Bob", mint("door", "Bob")));
    CHECK(ws.receiveType("joined").has_value());
}

TEST_CASE("room tokens: an admin grant opens its own room's API and nothing else", "[server][tokens]") {
    Server server({"--token-secret", kSecret, "--admin-token", kAdmin});
    for (const std::string room : {"alpha", "beta"}) {
        RawSocket ws(server.ws());
        ws.send(joinWith(room, "x", mint(room, "x")));
        REQUIRE(ws.receiveType("joined").has_value());
        const std::string admin = mint("alpha", "host", "admin");
        const int expected = room == "alpha" ? 200 : 401;
        CHECK(httpRequest("GET", server.http() + "/api/rooms/" + room, {}, admin).status == expected);
        CHECK(httpRequest("PUT", server.http() + "/api/rooms/" + room + "/layout", R"({"layout":"speaker"})", admin)
                  .status == expected);
        // The list of every room, and a participant's token, stay closed.
        CHECK(httpRequest("GET", server.http() + "/api/rooms", {}, admin).status == 401);
        CHECK(httpRequest("GET", server.http() + "/api/rooms/" + room, {}, mint(room, "x")).status == 401);
    }
}

TEST_CASE("tessera token: needs a secret and valid claims; its token joins", "[server][tokens]") {
    CHECK(runTessera({"token", "--room", "r", "--name", "n"}).status == 2);
    CHECK(runTessera({"token", "--token-secret", kSecret, "--room", "a/b", "--name", "n"}).status == 2);
    CHECK(runTessera({"token", "--token-secret", kSecret, "--room", "r", "--name", "n", "--ttl", "0"}).status == 2);
    CHECK(runTessera({"token", "--token-secret", kSecret, "--room", "r", "--name", "n", "--grants", "root"}).status ==
          2);
    const Run shortSecret = runTessera({"token", "--token-secret", "short", "--room", "r", "--name", "n"});
    CHECK(shortSecret.status == 2);
    CHECK_THAT(shortSecret.err, Catch::Matchers::Contains("at least 32 characters"));
}
