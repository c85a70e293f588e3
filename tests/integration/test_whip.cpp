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

TEST_CASE("a WHIP publisher (webrtcbin over HTTP) is seen and heard by the room, receives the mix, and leaves by "
          "DELETE",
          "[whip]") {
    Server server(smallCall());
    const std::vector<int> tones = {kTrio[0].tone, kTrio[1].tone, kTrio[2].tone};
    std::vector<std::unique_ptr<Client>> clients;
    for (const Participant& p : {kTrio[0], kTrio[1]}) {
        clients.push_back(
            std::make_unique<Client>(server, ClientOptions{"stage", p.name, p.color, p.tone, tones, false, {}}));
        clients.back()->waitEvent("joined");
    }
    // The third participant publishes through WHIP: no WebSocket, no join.
    const Participant& publisher = kTrio[2];
    Client whip(server, ClientOptions{"stage",
                                      publisher.name,
                                      publisher.color,
                                      publisher.tone,
                                      tones,
                                      false,
                                      {"--whip", server.http() + "/whip/stage?name=Encoder"}});
    const Json joined = whip.waitEvent("joined");
    const std::string id = joined.value("id", "");
    CHECK(joined.value("resource", "") == server.http() + "/whip/stage/" + id);
    whip.waitEvent("connected");
    // Its candidates went by PATCH, the last one with end-of-candidates, and
    // the server took them (204).
    for (;;) {
        const Json trickled = whip.waitEvent("trickled");
        if (trickled.value("end", false)) break;
    }

    // It is a participant of the room, by the name of its URL.
    const Json room = waitRoom(server, "stage", [](const Json& r) { return r.at("participants").size() == 3; });
    bool listed = false;
    for (const Json& p : room.at("participants")) listed |= p.value("id", "") == id && p.value("name", "") == "Encoder";
    CHECK(listed);

    // The others see its colour in the third tile and hear its tone.
    const auto three = gridCentres(3);
    for (auto& c : clients) {
        INFO("client " << c->options().name);
        const Json report = c->waitReport([&](const Json& r) {
            return near(thumbColor(r, three[2].first, three[2].second), publisher.rgb) && tone(r, publisher.tone) > -20;
        });
        CHECK(near(thumbColor(report, three[2].first, three[2].second), publisher.rgb));
        CHECK(tone(report, publisher.tone) > -20);
    }
    // Its offer is sendrecv: it receives the mix, the others' tiles and
    // tones, not its own (mix-minus).
    {
        const Json report = whip.waitReport([&](const Json& r) {
            return near(thumbColor(r, three[0].first, three[0].second), kTrio[0].rgb) &&
                   near(thumbColor(r, three[1].first, three[1].second), kTrio[1].rgb) && tone(r, kTrio[0].tone) > -20 &&
                   tone(r, kTrio[1].tone) > -20;
        });
        CHECK(near(thumbColor(report, three[0].first, three[0].second), kTrio[0].rgb));
        CHECK(near(thumbColor(report, three[1].first, three[1].second), kTrio[1].rgb));
        CHECK(near(thumbColor(report, three[2].first, three[2].second), publisher.rgb));
        CHECK(tone(report, kTrio[0].tone) > -20);
        CHECK(tone(report, kTrio[1].tone) > -20);
        CHECK(tone(report, publisher.tone) < -40);
    }

    // "leave" DELETEs the resource: the others lose its tile and its tone,
    // and their call goes on.
    whip.leave();
    for (auto& c : clients) {
        INFO("client " << c->options().name);
        CHECK(c->waitEvent("participant-left").value("id", "") == id);
    }
    CHECK(httpRequest("GET", server.http() + "/api/rooms/stage").status == 200);
    CHECK(waitRoom(server, "stage", [](const Json& r) { return r.at("participants").size() == 2; })
              .at("participants")
              .size() == 2);
    CHECK(httpRequest("DELETE", server.http() + "/whip/stage/" + id).status == 404);
    const auto two = gridCentres(2);
    for (std::size_t k = 0; k < clients.size(); ++k) {
        Client& c = *clients[k];
        INFO("client " << c.options().name);
        const Json report = c.waitReport([&](const Json& r) {
            return near(thumbColor(r, two[0].first, two[0].second), kTrio[0].rgb) &&
                   near(thumbColor(r, two[1].first, two[1].second), kTrio[1].rgb) && tone(r, publisher.tone) < -40 &&
                   tone(r, kTrio[1 - k].tone) > -20;
        });
        CHECK(near(thumbColor(report, two[0].first, two[0].second), kTrio[0].rgb));
        CHECK(near(thumbColor(report, two[1].first, two[1].second), kTrio[1].rgb));
        CHECK(tone(report, publisher.tone) < -40);
        CHECK(tone(report, kTrio[1 - k].tone) > -20);
    }
    for (auto& c : clients) c->leave();
}
