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

// The first value of a response header (lower-case name), or "".
std::string header(const HttpResponse& r, const std::string& name) {
    const auto it = r.headers.find(name);
    return it != r.headers.end() ? it->second : "";
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
    // If-Match names the session a PATCH is for (RFC 9725 4.3.1): its ETag, or any.
    const auto etag = post.headers.find("etag");
    REQUIRE(etag != post.headers.end());
    for (const std::string& match : {etag->second, std::string("*")})
        CHECK(httpRequest("PATCH", resource, trickle, {}, {}, {}, kFragment, {{"If-Match", match}}).status == 204);
    CHECK(httpRequest("PATCH", resource, trickle, {}, {}, {}, kFragment, {{"If-Match", "\"another\""}}).status == 412);
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

TEST_CASE("WHIP refusals: no or a wrong token 401, an unsupported codec 422, a full room 409; none joins anyone",
          "[whip]") {
    Server server({"--join-token", "s3cret", "--max-participants", "1", "--video-codec", "vp8"});
    const std::string endpoint = server.http() + "/whip/stage?name=Encoder";
    const std::string offer = readText("tests/data/offer-chromium.sdp");
    for (const std::string token : {"", "wrong"}) {
        const HttpResponse r = httpRequest("POST", endpoint, offer, token, {}, {}, "application/sdp");
        CHECK(r.status == 401);
        // The scheme that gets past it (RFC 9110 11.6.1).
        const auto challenge = r.headers.find("www-authenticate");
        CHECK((challenge != r.headers.end() && challenge->second.starts_with("Bearer")));
    }
    // H.264 only, to a VP8-only server: well-formed, but nothing it takes.
    const auto h264 = httpRequest("POST", endpoint, readText("tests/data/offer-chromium-h264.sdp"), "s3cret", {}, {},
                                  "application/sdp");
    CHECK(h264.status == 422);
    CHECK(h264.body.find("VP8") != std::string::npos);
    CHECK(participants(server, "stage") == 0);
    CHECK(server.metric("tessera_participants") == 0);

    const auto first = httpRequest("POST", endpoint, offer, "s3cret", {}, {}, "application/sdp");
    REQUIRE(first.status == 201);
    // The room holds one: the next publisher is refused, the first stays.
    const auto second = httpRequest("POST", endpoint, offer, "s3cret", {}, {}, "application/sdp");
    CHECK(second.status == 409);
    CHECK(second.location.empty());
    CHECK(participants(server, "stage") == 1);
    CHECK(httpRequest("DELETE", server.http() + first.location, {}, "s3cret").status == 200);
    CHECK(participants(server, "stage") == 0);
}

TEST_CASE("WHIP resources: the id is a 128-bit secret; a guessed or altered one is 404, a PATCH or DELETE without "
          "the POST's token 401, and neither changes anything",
          "[whip]") {
    Server server({"--join-token", "s3cret"});
    const std::string offer = readText("tests/data/offer-chromium.sdp");
    const auto post =
        httpRequest("POST", server.http() + "/whip/stage?name=Encoder", offer, "s3cret", {}, {}, "application/sdp");
    REQUIRE(post.status == 201);
    const std::string prefix = "/whip/stage/";
    REQUIRE(post.location.starts_with(prefix));
    const std::string id = post.location.substr(prefix.size());
    // 32 hex digits: 128 bits, and not the participant id the members see.
    CHECK(id.size() == 32);
    CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
    const Json detail = Json::parse(httpRequest("GET", server.http() + "/api/rooms/stage").body);
    REQUIRE(detail.at("participants").size() == 1);
    const std::string participantId = detail.at("participants").at(0).at("id");
    CHECK(id.find(participantId) == std::string::npos);

    const std::string trickle = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
                                "a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\n";
    const auto patch = [&](const std::string& path, const std::string& token) {
        return httpRequest("PATCH", server.http() + path, trickle, token, {}, {}, kFragment);
    };
    const auto remove = [&](const std::string& path, const std::string& token) {
        return httpRequest("DELETE", server.http() + path, {}, token);
    };
    // Guessed or altered ids, with the right token: none names the session.
    std::string altered = id;
    altered.back() = altered.back() == '0' ? '1' : '0';
    for (const std::string& path : {prefix + altered, prefix + id.substr(0, 31), prefix + id + "0",
                                    prefix + participantId, "/whip/other/" + id, prefix + std::string(32, '0')}) {
        INFO(path);
        CHECK(patch(path, "s3cret").status == 404);
        CHECK(remove(path, "s3cret").status == 404);
        CHECK(participants(server, "stage") == 1);
    }
    // The right id without the POST's token: 401 with the scheme that gets past it.
    for (const std::string token : {"", "wrong", "s3cret2", "s3cre"}) {
        INFO("token '" << token << "'");
        for (const HttpResponse& r : {patch(post.location, token), remove(post.location, token)}) {
            CHECK(r.status == 401);
            const auto challenge = r.headers.find("www-authenticate");
            CHECK((challenge != r.headers.end() && challenge->second.starts_with("Bearer")));
        }
        CHECK(participants(server, "stage") == 1);
    }
    // A browser's preflight carries no token: it is answered.
    CHECK(httpRequest("OPTIONS", server.http() + post.location).status == 204);

    // The right id and token work.
    CHECK(patch(post.location, "s3cret").status == 204);
    CHECK(remove(post.location, "s3cret").status == 200);
    CHECK(participants(server, "stage") == 0);
    CHECK(remove(post.location, "s3cret").status == 404);

    // Two sessions get two ids.
    const auto again = httpRequest("POST", server.http() + "/whip/stage", offer, "s3cret", {}, {}, "application/sdp");
    REQUIRE(again.status == 201);
    CHECK(again.location != post.location);
    CHECK(remove(again.location, "s3cret").status == 200);
}

TEST_CASE("WHIP from a browser page: CORS for allowed origins only, ICE servers as Link headers, no ICE restart",
          "[whip]") {
    Server server({"--allowed-origin", "https://studio.example.org", "--stun", "stun:127.0.0.1:3478", "--turn",
                   "turn:alice:pw@127.0.0.1:3478?transport=udp"});
    const std::string endpoint = server.http() + "/whip/stage";
    const std::string page = "https://studio.example.org", other = "https://evil.example.com";
    const std::string offer = readText("tests/data/offer-chromium.sdp");

    // The preflight: an allowed page may POST an offer with a token.
    const auto preflight = httpRequest("OPTIONS", endpoint, {}, {}, {}, page);
    CHECK(preflight.status == 204);
    CHECK(header(preflight, "access-control-allow-origin") == page);
    CHECK(header(preflight, "access-control-allow-methods").find("POST") != std::string::npos);
    CHECK(header(preflight, "access-control-allow-headers").find("Authorization") != std::string::npos);
    CHECK(header(preflight, "access-control-allow-headers").find("Content-Type") != std::string::npos);
    CHECK(header(preflight, "accept-post") == "application/sdp");
    // Another site's page gets no grant, and its POST is refused.
    CHECK(httpRequest("OPTIONS", endpoint, {}, {}, {}, other).headers.count("access-control-allow-origin") == 0);
    CHECK(httpRequest("POST", endpoint, offer, {}, {}, other, "application/sdp").status == 403);
    CHECK(participants(server, "stage") == 0);

    const auto post = httpRequest("POST", endpoint + "?name=Studio", offer, {}, {}, page, "application/sdp");
    REQUIRE(post.status == 201);
    CHECK(header(post, "access-control-allow-origin") == page);
    for (const char* exposed : {"Location", "ETag", "Link"})
        CHECK(header(post, "access-control-expose-headers").find(exposed) != std::string::npos);
    // The ICE servers, one Link each (RFC 9725), the TURN one with its credential.
    std::vector<std::string> links;
    for (auto [it, end] = post.headers.equal_range("link"); it != end; ++it) {
        // libsoup may fold repeated headers into one, comma-separated.
        std::string value = it->second;
        for (std::size_t at; (at = value.find(", <")) != std::string::npos; value.erase(0, at + 2))
            links.push_back(value.substr(0, at));
        links.push_back(value);
    }
    INFO("Link: " << links.size());
    REQUIRE(links.size() == 2);
    CHECK(links[0] == "<stun:127.0.0.1:3478>; rel=\"ice-server\"");
    CHECK(links[1].starts_with("<turn:127.0.0.1:3478?transport=udp>; rel=\"ice-server\""));
    CHECK(links[1].find("username=\"alice\"") != std::string::npos);
    CHECK(links[1].find("credential=\"pw\"") != std::string::npos);

    const std::string resource = server.http() + post.location;
    const auto resourcePreflight = httpRequest("OPTIONS", resource, {}, {}, {}, page);
    CHECK(resourcePreflight.status == 204);
    CHECK(header(resourcePreflight, "access-control-allow-origin") == page);
    CHECK(header(resourcePreflight, "access-control-allow-methods").find("PATCH") != std::string::npos);
    CHECK(header(resourcePreflight, "access-control-allow-methods").find("DELETE") != std::string::npos);
    CHECK(header(resourcePreflight, "accept-patch") == kFragment);
    // An ICE restart (new credentials) is refused with 422 (RFC 9725); the
    // session goes on.
    const std::string restart = "a=ice-ufrag:fresh\r\na=ice-pwd:freshfreshfreshfreshfresh\r\n"
                                "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
                                "a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\n";
    CHECK(httpRequest("PATCH", resource, restart, {}, {}, page, kFragment).status == 422);
    CHECK(participants(server, "stage") == 1);
    const auto removed = httpRequest("DELETE", resource, {}, {}, {}, page);
    CHECK(removed.status == 200);
    CHECK(header(removed, "access-control-allow-origin") == page);
    CHECK(participants(server, "stage") == 0);
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
    // The resource is a secret of its own, not the id the room shows.
    const std::string resource = joined.value("resource", "");
    CHECK(resource.starts_with(server.http() + "/whip/stage/"));
    CHECK(resource.size() == (server.http() + "/whip/stage/").size() + 32);
    CHECK(resource.find(id) == std::string::npos);
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

TEST_CASE("an OBS-style WHIP publisher (send-only, no SSRCs in its offer) is seen and heard, and is sent nothing",
          "[whip]") {
    Server server(smallCall());
    const Participant& viewer = kTrio[0];
    const Participant& publisher = kTrio[1];
    Client participant(server,
                       ClientOptions{"obs", viewer.name, viewer.color, viewer.tone, {publisher.tone}, false, {}});
    participant.waitEvent("joined");
    Client whip(server,
                ClientOptions{"obs",
                              publisher.name,
                              publisher.color,
                              publisher.tone,
                              {viewer.tone},
                              false,
                              {"--whip", server.http() + "/whip/obs?name=OBS", "--send-only", "--offer-without-ssrc"}});
    const std::string offer = whip.waitEvent("offer").value("sdp", "");
    CHECK(offer.find("a=sendonly") != std::string::npos);
    CHECK(offer.find("a=ssrc") == std::string::npos);
    whip.waitEvent("connected");

    const auto two = gridCentres(2);
    const Json report = participant.waitReport([&](const Json& r) {
        return near(thumbColor(r, two[1].first, two[1].second), publisher.rgb) && tone(r, publisher.tone) > -20;
    });
    CHECK(near(thumbColor(report, two[0].first, two[0].second), viewer.rgb));
    CHECK(near(thumbColor(report, two[1].first, two[1].second), publisher.rgb));
    CHECK(tone(report, publisher.tone) > -20);
    // Its offer receives nothing: no media comes back.
    const Json sent = whip.report();
    CHECK(sent.value("frames", -1) == 0);
    CHECK(sent.at("rtp").at("video").value("packets", -1) == 0);
    CHECK(sent.at("rtp").at("audio").value("packets", -1) == 0);
    whip.leave();
    CHECK(participant.waitEvent("participant-left").value("id", "") != "");
    participant.leave();
}
