// WHIP (RFC 9725) over plain HTTP against a live server: the exchange, its
// errors, and the publisher as a participant of the room.
#include <catch2/catch.hpp>

#include "files.h"
#include "harness.h"

using namespace tessera::testing;

namespace {

constexpr const char* kFragment = "application/trickle-ice-sdpfrag";

std::size_t participants(Server& server, const std::string& room) {
    const auto r = httpRequest("GET", server.http() + "/api/rooms/" + room);
    if (r.status != 200) return 0;
    return Json::parse(r.body).at("participants").size();
}

} // namespace

TEST_CASE("WHIP: a publisher's offer is answered with every server candidate; PATCH trickles, DELETE leaves",
          "[whip]") {
    Server server;
    const std::string offer = readText("tests/data/offer-chromium.sdp");
    const auto post =
        httpRequest("POST", server.http() + "/whip/stage?name=Encoder", offer, {}, {}, {}, "application/sdp");
    INFO("answer: " << post.body);
    REQUIRE(post.status == 201);
    REQUIRE(post.location.starts_with("/whip/stage/"));
    CHECK(post.body.starts_with("v=0"));
    CHECK(post.body.find("a=candidate:") != std::string::npos);
    CHECK(post.body.find("a=end-of-candidates") != std::string::npos);
    CHECK(participants(server, "stage") == 1);
    const auto detail = Json::parse(httpRequest("GET", server.http() + "/api/rooms/stage").body);
    CHECK(detail.at("participants").at(0).value("name", "") == "Encoder");

    const std::string resource = server.http() + post.location;
    // A fragment with a candidate of the offer's m-line 0 (its mid "0").
    const std::string trickle = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
                                "a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n";
    CHECK(httpRequest("PATCH", resource, trickle, {}, {}, {}, kFragment).status == 204);
    // Bad input: each gets its status, and the resource lives on.
    CHECK(httpRequest("PATCH", resource, trickle).status == 415);
    CHECK(httpRequest("PATCH", resource, "{not sdp}", {}, {}, {}, kFragment).status == 400);
    CHECK(httpRequest("PATCH", server.http() + "/whip/stage/nobody", trickle, {}, {}, {}, kFragment).status == 404);
    CHECK(httpRequest("PUT", resource, trickle, {}, {}, {}, kFragment).status == 405);
    CHECK(participants(server, "stage") == 1);

    CHECK(httpRequest("DELETE", resource).status == 200);
    CHECK(participants(server, "stage") == 0);
    // Gone: PATCH and DELETE on it are 404.
    CHECK(httpRequest("PATCH", resource, trickle, {}, {}, {}, kFragment).status == 404);
    CHECK(httpRequest("DELETE", resource).status == 404);
}

TEST_CASE("WHIP: a bad offer, a wrong content type and a bad name are refused and join nobody", "[whip]") {
    Server server;
    const std::string offer = readText("tests/data/offer-chromium.sdp");
    CHECK(httpRequest("POST", server.http() + "/whip/stage", offer).status == 415);
    CHECK(httpRequest("POST", server.http() + "/whip/stage", "v=0\r\n", {}, {}, {}, "application/sdp").status == 400);
    CHECK(httpRequest("POST", server.http() + "/whip/bad%20room", offer, {}, {}, {}, "application/sdp").status == 400);
    CHECK(httpRequest("GET", server.http() + "/whip/stage").status == 405);
    CHECK(participants(server, "stage") == 0);
    // The server is fine: a good offer still works.
    CHECK(httpRequest("POST", server.http() + "/whip/stage", offer, {}, {}, {}, "application/sdp").status == 201);
}
