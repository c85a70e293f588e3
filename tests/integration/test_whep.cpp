// WHEP egress (the IETF WHEP draft) against a live server: viewers receive
// the room's mix as no members (no tile, nobody told, not counted) and
// share the room's encoders; the exchange's refusals change nothing.
#include <catch2/catch.hpp>

#include <regex>

#include "files.h"
#include "harness.h"

using namespace tessera::testing;

namespace {

constexpr const char* kFragment = "application/trickle-ice-sdpfrag";

const Participant kRed{"red", "0xff0000", {255, 0, 0}, 440};
const Participant kBlue{"blue", "0x0000ff", {0, 0, 255}, 660};

// A Chromium offer made receive-only, as a WHEP player sends it.
std::string recvonlyOffer(const std::string& file = "tests/data/offer-chromium.sdp") {
    return std::regex_replace(readText(file), std::regex("a=sendrecv"), "a=recvonly");
}

Json roomOf(Server& server, const std::string& room) {
    return jsonOf(httpRequest("GET", server.http() + "/api/rooms/" + room));
}

// The room's two members in the grid: red left, blue right.
bool seesDuo(const Json& r) {
    const auto two = gridCentres(2);
    return near(thumbColor(r, two[0].first, two[0].second), kRed.rgb) &&
           near(thumbColor(r, two[1].first, two[1].second), kBlue.rgb);
}

} // namespace

TEST_CASE("10 WHEP viewers of a room of two see both colours and hear both tones, take no tile, are told to nobody "
          "and run no encoder of their own; DELETE removes one; the call goes on",
          "[whep]") {
    Server server(smallCall());
    const std::vector<int> tones = {kRed.tone, kBlue.tone};
    Client red(server, ClientOptions{"show", kRed.name, kRed.color, kRed.tone, tones, false, {}});
    red.waitEvent("joined");
    Client blue(server, ClientOptions{"show", kBlue.name, kBlue.color, kBlue.tone, tones, false, {}});
    blue.waitEvent("joined");
    const auto callGoesOn = [&] {
        for (auto [c, other] : {std::pair{&red, kBlue.tone}, std::pair{&blue, kRed.tone}}) {
            INFO("participant " << c->options().name);
            const Json report =
                c->waitReport([&, other = other](const Json& r) { return seesDuo(r) && tone(r, other) > -20; });
            CHECK(seesDuo(report));
            CHECK(tone(report, other) > -20);
            // Told of the other member only, never of a viewer.
            CHECK(report.at("participants").size() == 1);
        }
    };
    callGoesOn();

    const std::string video = "tessera_encoders{room=\"show\",codec=\"vp8\"}";
    const std::string opus = "tessera_room_opus_encoders{room=\"show\"}";
    const double video0 = server.metric(video), opus0 = server.metric(opus);
    CHECK(video0 == 1);

    // Half the viewers ask for the tier, half leave it to their bandwidth.
    std::vector<std::unique_ptr<Client>> viewers;
    const auto watch = [&](std::size_t i) {
        const std::string name = "viewer" + std::to_string(i);
        viewers.push_back(std::make_unique<Client>(
            server,
            ClientOptions{"show",
                          name,
                          "0x000000",
                          0,
                          tones,
                          false,
                          {"--whep", server.http() + "/whep/show?name=" + name + (i % 2 ? "&tier=high" : "")}}));
    };
    const auto receivesMix = [&](Client& viewer) {
        INFO("viewer " << viewer.options().name);
        const Json report = viewer.waitReport(
            [](const Json& r) { return seesDuo(r) && tone(r, kRed.tone) > -20 && tone(r, kBlue.tone) > -20; });
        CHECK(seesDuo(report));
        CHECK(tone(report, kRed.tone) > -20);
        CHECK(tone(report, kBlue.tone) > -20);
        CHECK(report.at("participants").empty());
    };
    // The first viewer may start the full mix's encode, shared by every
    // receiver who is not speaking; nothing else starts.
    watch(0);
    const std::string firstId = viewers[0]->waitEvent("joined").value("id", "");
    receivesMix(*viewers[0]);
    const double opus1 = server.metric(opus);
    CHECK(opus1 <= opus0 + 1);
    CHECK(server.metric(video) == video0);

    for (std::size_t i = 1; i < 10; ++i) watch(i);
    for (auto& v : viewers) v->waitEvent("connected");
    for (auto& v : viewers) receivesMix(*v);

    // Listed apart: two members, ten viewers, all connected.
    const Json room = waitRoom(server, "show", [](const Json& r) {
        if (r.at("viewers").size() != 10) return false;
        for (const Json& v : r.at("viewers"))
            if (!v.value("connected", false)) return false;
        return true;
    });
    CHECK(room.at("participants").size() == 2);
    REQUIRE(room.at("viewers").size() == 10);
    for (const Json& v : room.at("viewers")) CHECK(v.value("tier", "") == "high");
    CHECK(jsonOf(httpRequest("GET", server.http() + "/api/rooms")).at(0).value("participants", 0) == 2);
    CHECK(server.metric("tessera_room_participants{room=\"show\"}") == 2);
    CHECK(server.metric("tessera_room_viewers{room=\"show\"}") == 10);
    CHECK(server.metric("tessera_viewers") == 10);
    // No encoder per viewer: ten cost what one did (video: what none did).
    CHECK(server.metric(video) == video0);
    CHECK(server.metric(opus) == opus1);
    CHECK(server.metric("tessera_tier_receivers{room=\"show\",tier=\"high\"}") == 12);
    // The members' picture is still two tiles, and nobody told them.
    callGoesOn();

    // A viewer leaves by DELETE (the client's leave): the count drops, and
    // its resource is gone.
    viewers[0]->leave();
    CHECK(waitRoom(server, "show", [](const Json& r) { return r.at("viewers").size() == 9; }).at("viewers").size() ==
          9);
    CHECK(server.metric("tessera_viewers") == 9);
    const std::string resource = server.http() + "/whep/show/" + firstId;
    const std::string trickle = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
                                "a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\n";
    CHECK(httpRequest("PATCH", resource, trickle, {}, {}, {}, kFragment).status == 404);
    CHECK(httpRequest("DELETE", resource).status == 404);
    callGoesOn();
    for (std::size_t i = 1; i < viewers.size(); ++i) receivesMix(*viewers[i]);
    for (std::size_t i = 1; i < viewers.size(); ++i) viewers[i]->leave();
    CHECK(waitRoom(server, "show", [](const Json& r) { return r.at("viewers").empty(); }).at("viewers").empty());
    red.leave();
    blue.leave();
}

TEST_CASE("WHEP refusals (no room, no or a wrong token, content type, bad SDP, an offer that sends, an unknown tier, "
          "no common codec, another site's page, too many from one address, an unknown or deleted resource) change "
          "nothing",
          "[whep]") {
    Server server(smallCall({"--join-token", "s3cret", "--viewers-per-address", "2", "--video-codec", "vp8", "--stun",
                             "stun:127.0.0.1:3478"}));
    Client red(server, ClientOptions{"gate", kRed.name, kRed.color, kRed.tone, {}, false, {"--token", "s3cret"}});
    red.waitEvent("connected");
    const std::string endpoint = server.http() + "/whep/gate";
    const std::string offer = recvonlyOffer();
    const auto post = [&](const std::string& url, const std::string& body, const std::string& token,
                          const std::string& type = "application/sdp") {
        return httpRequest("POST", url, body, token, {}, {}, type);
    };
    const auto unchanged = [&] {
        const Json room = roomOf(server, "gate");
        CHECK(room.at("participants").size() == 1);
        CHECK(room.at("viewers").empty());
        CHECK(server.metric("tessera_viewers") == 0);
    };
    // A viewer opens no room.
    CHECK(post(server.http() + "/whep/nobody", offer, "s3cret").status == 404);
    CHECK(httpRequest("GET", server.http() + "/api/rooms/nobody").status == 404);
    CHECK(post(endpoint, offer, {}).status == 401);
    CHECK(post(endpoint, offer, "wrong").status == 401);
    CHECK(post(endpoint, offer, "s3cret", "application/json").status == 415);
    CHECK(post(endpoint, "v=0\r\n", "s3cret").status == 400);
    CHECK(post(endpoint, "not sdp at all", "s3cret").status == 400);
    // Its media would get a tile: a viewer's offer receives only.
    CHECK(post(endpoint, readText("tests/data/offer-chromium.sdp"), "s3cret").status == 400);
    CHECK(post(endpoint + "?tier=ultra", offer, "s3cret").status == 400);
    // H.264 only, to a VP8-only server: well-formed, but nothing it sends.
    CHECK(post(endpoint, recvonlyOffer("tests/data/offer-chromium-h264.sdp"), "s3cret").status == 422);
    CHECK(httpRequest("POST", endpoint, offer, "s3cret", {}, "https://evil.example.com", "application/sdp").status ==
          403);
    CHECK(httpRequest("GET", endpoint).status == 405);
    unchanged();

    const auto first = post(endpoint + "?tier=high&name=Player", offer, "s3cret");
    INFO("answer: " << first.body);
    REQUIRE(first.status == 201);
    REQUIRE(first.location.starts_with("/whep/gate/"));
    CHECK(first.body.starts_with("v=0"));
    CHECK(first.body.find("a=candidate:") != std::string::npos);
    CHECK(first.body.find("a=end-of-candidates") != std::string::npos);
    CHECK(first.headers.count("etag") == 1);
    const auto link = first.headers.find("link");
    REQUIRE(link != first.headers.end());
    CHECK(link->second == "<stun:127.0.0.1:3478>; rel=\"ice-server\"");
    const std::string resource = server.http() + first.location;
    Json room = roomOf(server, "gate");
    CHECK(room.at("participants").size() == 1);
    REQUIRE(room.at("viewers").size() == 1);
    CHECK(room.at("viewers").at(0).value("name", "") == "Player");
    CHECK(server.metric("tessera_viewers") == 1);

    const std::string trickle = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
                                "a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n";
    // The resource's PATCH and DELETE need the POST's token; a guessed id is 404.
    for (const std::string token : {"", "wrong"}) {
        CHECK(httpRequest("PATCH", resource, trickle, token, {}, {}, kFragment).status == 401);
        CHECK(httpRequest("DELETE", resource, {}, token).status == 401);
    }
    CHECK(roomOf(server, "gate").at("viewers").size() == 1);
    CHECK(httpRequest("PATCH", resource, trickle, "s3cret", {}, {}, kFragment).status == 204);
    CHECK(httpRequest("PATCH", resource, trickle, "s3cret").status == 415);
    CHECK(httpRequest("PATCH", server.http() + "/whep/gate/nobody", trickle, "s3cret", {}, {}, kFragment).status ==
          404);
    const std::string viewerId = roomOf(server, "gate").at("viewers").at(0).at("id");
    CHECK(httpRequest("DELETE", server.http() + "/whep/gate/" + viewerId, {}, "s3cret").status == 404);
    const auto options = httpRequest("OPTIONS", endpoint);
    CHECK(options.status == 204);
    CHECK(options.headers.find("accept-post")->second == "application/sdp");

    // Two from one address at once (--viewers-per-address 2): a third waits.
    const auto second = post(endpoint, offer, "s3cret");
    CHECK(second.status == 201);
    CHECK(post(endpoint, offer, "s3cret").status == 429);
    CHECK(roomOf(server, "gate").at("viewers").size() == 2);

    CHECK(httpRequest("DELETE", resource, {}, "s3cret").status == 200);
    CHECK(roomOf(server, "gate").at("viewers").size() == 1);
    CHECK(httpRequest("PATCH", resource, trickle, "s3cret", {}, {}, kFragment).status == 404);
    CHECK(httpRequest("DELETE", resource, {}, "s3cret").status == 404);
    CHECK(roomOf(server, "gate").at("participants").size() == 1);
    // The member heard of none of this.
    CHECK(red.report().at("participants").empty());

    // Viewers hold no room open: the last member leaving ends them.
    red.leave();
    CHECK(waitUntil([&] { return httpRequest("GET", server.http() + "/api/rooms/gate").status == 404; }));
    CHECK(httpRequest("DELETE", server.http() + second.location, {}, "s3cret").status == 404);
    CHECK(server.metric("tessera_viewers") == 0);
}

TEST_CASE("a WHEP viewer's ?tier= picks the tier it receives; viewers of one tier share its encoder", "[whep]") {
    Server server(smallCall({"--video-tiers", "high:640x360:600000,low:320x180:150000"}));
    Client red(server, ClientOptions{"tiers", kRed.name, kRed.color, kRed.tone, {}, false, {}});
    red.waitEvent("first-frame");
    std::vector<std::unique_ptr<Client>> viewers;
    for (const char* name : {"low1", "low2"}) {
        viewers.push_back(std::make_unique<Client>(
            server,
            ClientOptions{
                "tiers", name, "0x000000", 0, {kRed.tone}, false, {"--whep", server.http() + "/whep/tiers?tier=low"}}));
    }
    for (auto& v : viewers) {
        INFO("viewer " << v->options().name);
        const Json report = v->waitReport([](const Json& r) {
            return r.value("width", 0) == 320 && near(thumbColor(r, 0.5, 0.5), kRed.rgb) && tone(r, kRed.tone) > -20;
        });
        CHECK(report.value("width", 0) == 320);
        CHECK(near(thumbColor(report, 0.5, 0.5), kRed.rgb));
        CHECK(tone(report, kRed.tone) > -20);
    }
    const Json room = roomOf(server, "tiers");
    REQUIRE(room.at("viewers").size() == 2);
    for (const Json& v : room.at("viewers")) CHECK(v.value("tier", "") == "low");
    // One encoder per tier in use, both viewers on low's. Red's tier follows
    // its link (a loaded loopback may step it down): read with the metrics.
    std::string redTier;
    double encoders = 0, onLow = 0;
    const bool shared = waitUntil([&] {
        redTier = roomOf(server, "tiers").at("participants").at(0).value("tier", "");
        encoders = server.metric("tessera_encoders{room=\"tiers\",codec=\"vp8\"}");
        onLow = server.metric("tessera_encoder_receivers{room=\"tiers\",tier=\"low\",codec=\"vp8\"}");
        const bool redLow = redTier == "low";
        return encoders == (redLow ? 1 : 2) && onLow == (redLow ? 3 : 2);
    });
    INFO("red on " << redTier << ", " << encoders << " encoders, " << onLow << " receivers of low's");
    CHECK(shared);
    for (auto& v : viewers) v->leave();
    red.leave();
}
