// Media promises of README and docs/architecture.md: the other codecs in a
// real call, receive-only participants, the key-frame request limit, the
// ICE connect limit and the RTP port range.
#include <functional>
#include <optional>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <glib.h>

#include "files.h"
#include "harness.h"

using namespace tessera::testing;

namespace {

// The video `track` event of a client.
Json videoTrack(Client& client) {
    for (;;) {
        const Json track = client.waitEvent("track");
        if (track.value("kind", "") == "video") return track;
    }
}

// The UDP port of an ICE candidate line ("candidate:F C UDP PRIO ADDR PORT typ ..."),
// or nullopt for another transport (TCP active candidates carry the discard port 9).
std::optional<int> udpPort(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> words(6);
    for (std::string& word : words) in >> word;
    if (g_ascii_strcasecmp(words[2].c_str(), "udp") != 0) return std::nullopt;
    return std::atoi(words[5].c_str());
}

// Joins over a raw socket and offers what Chromium offers, never sending a
// candidate: the server answers and trickles its own.
void joinAndOffer(RawSocket& ws, const std::string& room, const std::string& name,
                  const std::string& offer = "tests/data/offer-chromium.sdp") {
    ws.send(Json{{"type", "join"}, {"room", room}, {"name", name}}.dump());
    REQUIRE(ws.receiveType("joined"));
    ws.send(Json{{"type", "offer"}, {"sdp", readText(offer)}}.dump());
}

// tests/data/offer-chromium.sdp with a third m-line, a screen share in
// `direction` (mid 2), as a browser renegotiates one.
std::string offerWithShare(const std::string& direction) {
    std::string sdp = readText("tests/data/offer-chromium.sdp");
    const auto video = sdp.find("m=video");
    std::string share = sdp.substr(video);
    auto replace = [](std::string& text, const std::string& from, const std::string& to) {
        for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
            text.replace(at, from.size(), to);
    };
    replace(share, "a=mid:1", "a=mid:2");
    replace(share, "a=sendrecv", "a=" + direction);
    replace(share, "a=msid:- v0", "a=msid:- v1");
    replace(share, "2001", "3001"); // the share's own SSRCs
    replace(share, "2002", "3002");
    replace(sdp, "a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 2");
    if (!sdp.ends_with("\n")) sdp += "\r\n";
    return sdp + share;
}

// Two participants in a call whose composite and cameras are in `codec`,
// each client run with `clientArgs` too.
void callIn(const std::string& codec, const std::vector<std::string>& clientArgs = {}) {
    INFO("codec " << codec);
    const std::string encoding = codec == "h264" ? "H264" : codec == "vp9" ? "VP9" : "VP8";
    Server server(smallCall({"--video-codec", codec}));
    std::vector<std::unique_ptr<Client>> clients;
    std::vector<std::string> args = {"--video-codec", codec};
    args.insert(args.end(), clientArgs.begin(), clientArgs.end());
    for (const Participant& p : {kTrio[0], kTrio[1]}) {
        clients.push_back(
            std::make_unique<Client>(server, ClientOptions{"codec", p.name, p.color, p.tone, {440, 660}, false, args}));
        clients.back()->waitEvent("joined");
    }
    const auto centres = gridCentres(2);
    for (std::size_t k = 0; k < clients.size(); ++k) {
        Client& c = *clients[k];
        INFO("client " << c.options().name);
        CHECK(videoTrack(c).value("encoding", "") == encoding);
        c.waitEvent("first-frame");
        const Json report = c.waitReport([&](const Json& r) {
            return near(thumbColor(r, centres[0].first, centres[0].second), kTrio[0].rgb) &&
                   near(thumbColor(r, centres[1].first, centres[1].second), kTrio[1].rgb) &&
                   tone(r, kTrio[1 - k].tone) > -20;
        });
        CHECK(near(thumbColor(report, centres[0].first, centres[0].second), kTrio[0].rgb));
        CHECK(near(thumbColor(report, centres[1].first, centres[1].second), kTrio[1].rgb));
        CHECK(tone(report, kTrio[1 - k].tone) > -20);
        CHECK(tone(report, kTrio[k].tone) < -40); // mix-minus holds in every codec
        CHECK(report.value("width", 0) == 640);
    }
    for (auto& c : clients) c->leave();
}

} // namespace

TEST_CASE("a VP9 call: each participant decodes the grid in VP9 and hears the other", "[media][codecs]") {
    callIn("vp9");
}

// Some encoders (WHIP publishers among them) announce no SSRC in their
// offer. webrtcbin 1.22 then maps the packets to the bundle's first m-line,
// the audio one, whatever their kind: the server must still find the camera.
TEST_CASE("clients whose offers announce no SSRC still show in the grid and hear each other", "[media][ssrc]") {
    callIn("vp8", {"--offer-without-ssrc"});
}

// A screen share started mid-call by a GStreamer (webrtcbin) client, not a
// browser: its renegotiation's audio m-line carries Opus sprop-stereo=0,
// which webrtcbin 1.22 once intersected with the room mix's sprop-stereo=1,
// rejecting the m-line and failing the sharer (peer_negotiation.cpp,
// dropOpusSenderHints). The share must reach the others' picture.
TEST_CASE("a client that starts a screen share mid-call stays in it, and the others see the share",
          "[media][renegotiate][share]") {
    Server server(smallCall());
    auto clients = joinAll(server, "share", {kTrio[0], kTrio[1]});
    for (auto& c : clients) c->waitEvent("first-frame");
    Client& sharer = *clients[0];
    Client& viewer = *clients[1];
    // The presentation layout's share slot: the left 80%, the 16:9 share fitted in it.
    REQUIRE(viewer.call("watch 0.4 0.5 0x00ffff").value("ok", false));
    const Json shared = sharer.call("share 0x00ffff");
    REQUIRE(shared.value("ok", false));
    const Json seen = viewer.waitEvent("watch-seen", 60s);
    CHECK(seen.value("color", "") == "#00ffff");
    for (Client* c : {&sharer, &viewer}) {
        const Json report = c->waitReport([](const Json& r) { return r.value("layout", "") == "presentation"; });
        INFO(c->options().name << "'s report " << report.dump());
        CHECK(report.value("layout", "") == "presentation");
        CHECK(report.value("state", "") == "connected");
        CHECK(report.value("errors", Json::array()).empty());
    }
    CHECK(server.metric("tessera_participants") == 2);
    for (auto& c : clients) c->leave();
}

// tessera-client offers x264's constrained baseline as profile-level-id
// 42c01f, Chromium as 42e01f: the same profile, which the server once
// refused for not being written 42e0...
TEST_CASE("an H.264 call: each participant decodes the grid in H.264 and hears the other", "[media][codecs]") {
    callIn("h264");
}

// ... and webrtcbin answers only where the transceiver's preferences repeat
// the offer's own text. Debian's Chromium offers no H.264 (issue 15): this
// is the offer of a Chromium that does.
TEST_CASE("an H.264 room answers Chromium with its packetization-mode 1 constrained baseline", "[media][codecs]") {
    Server server(smallCall({"--video-codec", "h264"}));
    RawSocket ws(server.ws());
    joinAndOffer(ws, "chromium", "chromium", "tests/data/offer-chromium-h264.sdp");
    const auto answer = ws.receiveType("answer", kDeadline);
    REQUIRE(answer.has_value());
    const std::string sdp = answer->value("sdp", "");
    INFO(sdp);
    CHECK_THAT(sdp, Catch::Matchers::Contains("m=video 9 UDP/TLS/RTP/SAVPF 108 "));
    CHECK_THAT(sdp, Catch::Matchers::Contains("a=rtpmap:108 H264/90000"));
    const auto fmtp = sdp.find("a=fmtp:108 ");
    REQUIRE(fmtp != std::string::npos);
    const std::string params = sdp.substr(fmtp, sdp.find('\r', fmtp) - fmtp);
    CHECK_THAT(params, Catch::Matchers::Contains("packetization-mode=1"));
    CHECK_THAT(params, Catch::Matchers::Contains("profile-level-id=42e01f"));
}

// Issue 15: one room, three codecs. Each participant's offer carries one
// codec only (tessera-client --video-codec), so each sends and receives in
// its own, and the composite is encoded once per codec, not per receiver.
TEST_CASE("a VP8, an H.264-only and a VP9-only participant share one call, each receiving the grid in its own codec",
          "[media][codecs][mixed]") {
    Server server(smallCall());
    const std::vector<std::string> codecs = {"vp8", "h264", "vp9"};
    std::vector<std::unique_ptr<Client>> clients;
    for (std::size_t k = 0; k < kTrio.size(); ++k) {
        const Participant& p = kTrio[k];
        clients.push_back(std::make_unique<Client>(
            server,
            ClientOptions{"mixed", p.name, p.color, p.tone, {440, 660, 880}, false, {"--video-codec", codecs[k]}}));
        clients.back()->waitEvent("joined");
    }
    const auto centres = gridCentres(3);
    auto everyone = [&](const Json& r) {
        for (std::size_t k = 0; k < kTrio.size(); ++k)
            if (!near(thumbColor(r, centres[k].first, centres[k].second), kTrio[k].rgb)) return false;
        return true;
    };
    for (std::size_t k = 0; k < clients.size(); ++k) {
        Client& c = *clients[k];
        INFO("client " << c.options().name << " in " << codecs[k]);
        CHECK(videoTrack(c).value("encoding", "") == (codecs[k] == "h264"  ? "H264"
                                                      : codecs[k] == "vp9" ? "VP9"
                                                                           : "VP8"));
        c.waitEvent("first-frame");
        const Json report = c.waitReport([&](const Json& r) {
            return everyone(r) && tone(r, kTrio[(k + 1) % 3].tone) > -20 && tone(r, kTrio[(k + 2) % 3].tone) > -20;
        });
        CHECK(everyone(report));
        CHECK(tone(report, kTrio[(k + 1) % 3].tone) > -20);
        CHECK(tone(report, kTrio[(k + 2) % 3].tone) > -20);
        CHECK(tone(report, kTrio[k].tone) < -40);
    }
    // The room's details name each one's codecs ...
    const Json room = jsonOf(httpRequest("GET", server.http() + "/api/rooms/mixed"));
    REQUIRE(room.at("participants").size() == 3);
    for (std::size_t k = 0; k < codecs.size(); ++k) {
        const Json& p = room.at("participants").at(k);
        INFO(p.dump());
        CHECK(p.value("sendCodec", "") == codecs[k]);
        CHECK(p.value("receiveCodec", "") == codecs[k]);
    }
    // ... and the one tier is encoded once per codec: three encoders, each
    // with its one receiver.
    for (const std::string& codec : codecs) {
        INFO(codec);
        CHECK(server.metric("tessera_encoders{room=\"mixed\",codec=\"" + codec + "\"}") == 1);
        CHECK(server.metric("tessera_encoder_receivers{room=\"mixed\",tier=\"high\",codec=\"" + codec + "\"}") == 1);
    }
    CHECK(server.metric("tessera_tier_receivers{room=\"mixed\",tier=\"high\"}") == 3);
    for (auto& c : clients) c->leave();
}

// An encoder of a codec is built for its first receiver and stops, as a tier
// does, when its last one leaves; the next receiver of that codec starts it
// again and gets a picture at once (a forced key frame, not the periodic one).
TEST_CASE("the last H.264 receiver leaves: the H.264 encoder stops; a new one joins: it starts at a key frame",
          "[media][codecs][restart]") {
    Server server(smallCall());
    auto metric = [&](const std::string& family, const std::string& codec) {
        return server.metric(family + "{room=\"restart\"," + (family == "tessera_encoders" ? "" : "tier=\"high\",") +
                             "codec=\"" + codec + "\"}");
    };
    auto frames = [&](const std::string& codec) { return metric("tessera_encoder_frames_total", codec); };
    // The (tier, codec) encoders the room has built, as /metrics lists them.
    auto built = [&](const std::string& codec) {
        return httpRequest("GET", server.http() + "/metrics")
                   .body.find("tessera_encoder_frames_total{room=\"restart\",tier=\"high\",codec=\"" + codec + "\"}") !=
               std::string::npos;
    };
    // Time measured in the VP8 encoder's frames (15 a second).
    auto vp8Encodes = [&](double count) {
        const double start = frames("vp8");
        REQUIRE(waitUntil([&] { return frames("vp8") >= start + count; }));
    };
    auto h264Client = [&](const Participant& p) {
        return std::make_unique<Client>(
            server, ClientOptions{"restart", p.name, p.color, p.tone, {}, false, {"--video-codec", "h264"}});
    };

    Client red(server, ClientOptions{"restart", "red", "0xff0000", 440, {}, false, {"--video-codec", "vp8"}});
    red.waitEvent("first-frame");
    // VP8 only so far: no H.264 or VP9 encoder exists.
    CHECK(metric("tessera_encoders", "vp8") == 1);
    CHECK(metric("tessera_encoders", "h264") == 0);
    CHECK(metric("tessera_encoders", "vp9") == 0);
    CHECK_FALSE(built("h264"));
    CHECK_FALSE(built("vp9"));

    double elements = 0;
    {
        auto green = h264Client(kTrio[1]);
        CHECK(videoTrack(*green).value("encoding", "") == "H264");
        green->waitEvent("first-frame");
        CHECK(metric("tessera_encoders", "h264") == 1);
        const double h264 = frames("h264");
        CHECK(waitUntil([&] { return frames("h264") >= h264 + 15; }));
        elements = server.metric("tessera_room_pipeline_elements{room=\"restart\"}");
        green->leave();
    }
    // The last H.264 receiver left: its encoder is fed nothing. A second's
    // worth of VP8 frames passes first, for frames already inside it.
    REQUIRE(waitUntil([&] { return metric("tessera_encoders", "h264") == 0; }));
    vp8Encodes(15);
    const double stopped = frames("h264");
    vp8Encodes(45);
    CHECK(frames("h264") == stopped);
    CHECK(metric("tessera_encoders", "vp8") == 1);
    CHECK_FALSE(built("vp9"));

    // A new H.264 receiver: the same encoder starts again (no second one:
    // the room has as many elements as with the first), and its first
    // picture comes within a second's worth of its frames, where waiting for
    // the periodic key frame could take two.
    auto blue = h264Client(kTrio[2]);
    blue->waitEvent("first-frame");
    const double restarted = frames("h264");
    INFO("the H.264 encoder's frames before the joiner's first picture: " << restarted - stopped);
    CHECK(restarted - stopped <= 15);
    CHECK(metric("tessera_encoders", "h264") == 1);
    CHECK(waitUntil([&] { return server.metric("tessera_room_pipeline_elements{room=\"restart\"}") == elements; }));
    const auto centres = gridCentres(2);
    const Json report = blue->waitReport([&](const Json& r) {
        return near(thumbColor(r, centres[0].first, centres[0].second), kTrio[0].rgb) &&
               near(thumbColor(r, centres[1].first, centres[1].second), kTrio[2].rgb);
    });
    CHECK(near(thumbColor(report, centres[0].first, centres[0].second), kTrio[0].rgb));
    CHECK(near(thumbColor(report, centres[1].first, centres[1].second), kTrio[2].rgb));
    blue->leave();
    red.leave();
}

TEST_CASE("a receive-only participant sees and hears the call and takes no tile", "[media][receive-only]") {
    Server server(smallCall());
    Client red(server, ClientOptions{"listen", "red", "0xff0000", 440, {440}, false, {}});
    red.waitEvent("first-frame");
    Client listener(server, ClientOptions{"listen", "ear", "0x00ff00", 660, {440}, true, {}});
    listener.waitEvent("first-frame");
    const auto heard = listener.waitReport([](const Json& r) { return tone(r, 440) > -20; });
    CHECK(tone(heard, 440) > -20);
    // The listener is in the room ...
    const Json room = jsonOf(httpRequest("GET", server.http() + "/api/rooms/listen"));
    CHECK(room.at("participants").size() == 2);
    // ... but the composite is one tile, red's, across the canvas: with a
    // tile for the listener, the grid would be two side by side.
    auto oneTile = [](const Json& r) {
        return near(thumbColor(r, 0.25, 0.5), kTrio[0].rgb) && near(thumbColor(r, 0.75, 0.5), kTrio[0].rgb);
    };
    for (Client* c : {&red, &listener}) {
        INFO("client " << c->options().name);
        const Json report = c->waitReport(oneTile);
        CHECK(oneTile(report));
    }
    // It sends nothing: red hears no one.
    CHECK(tone(red.report(), 660) < -40);
    listener.leave();
    red.leave();
}

TEST_CASE("key-frame requests: a receiver asking all the time gets at most two forced key frames a second",
          "[media][keyframes]") {
    Server server(smallCall());
    Client sender(server, ClientOptions{"kf", "red", "0xff0000", 440, {}, false, {}});
    sender.waitEvent("first-frame");
    Client asker(server, ClientOptions{"kf", "asker", "0x00ff00", 660, {}, false, {}});
    asker.waitEvent("first-frame");
    const std::string forced = "tessera_room_keyframes_forced_total{room=\"kf\"}";
    // Twenty key-frame requests (PLI) a second, on a clean link: loss would
    // ask as often, but would also (rightly) move the receiver to the
    // audio-only tier, where it has no video to ask for.
    REQUIRE(asker.call("keyframe-requests on").value("ok", false));
    const double before = server.metric(forced);
    REQUIRE(before >= 0);
    const auto from = Clock::now();
    std::this_thread::sleep_until(from + 10s);
    const double after = server.metric(forced);
    const double window = std::chrono::duration<double>(Clock::now() - from).count();
    INFO(after - before << " key frames forced in " << window << " s");
    // If too few: the receiver's tier and estimate, and its frames.
    INFO("room: " << httpRequest("GET", server.http() + "/api/rooms/kf").body);
    INFO("asker: " << brief(asker.report()));
    REQUIRE(asker.call("keyframe-requests off").value("ok", false));
    // Requests did arrive (or the limit would be untested) ...
    CHECK(after - before >= 5);
    // ... and were held to two a second (plus one pending at each end).
    CHECK(after - before <= 2 * window + 2);
    sender.leave();
    asker.leave();
}

TEST_CASE("a peer whose ICE does not connect within the join timeout (20 s) fails, and nothing is encoded for it; "
          "the room goes on",
          "[media][ice]") {
    Server server(smallCall());
    Client anchor(server, ClientOptions{"ice", "anchor", "0xff0000", 440, {}, false, {}});
    anchor.waitEvent("first-frame");
    // A client that offers but never sends a candidate: ICE cannot start.
    RawSocket ws(server.ws());
    joinAndOffer(ws, "ice", "silent");
    REQUIRE(ws.receiveType("answer", kDeadline));
    const auto answered = Clock::now();
    // Nothing is encoded for it meanwhile (docs/protocol.md, room details).
    const Json waiting = waitRoom(server, "ice", [](const Json& r) { return r.at("participants").size() == 2; });
    CHECK(waiting.at("participants").at(0).value("connected", false));
    CHECK_FALSE(waiting.at("participants").at(1).value("connected", true));
    // Only the anchor takes the (high) tier it would take too.
    CHECK(server.metric("tessera_tier_receivers{room=\"ice\",tier=\"high\"}") == 1);
    const auto error = ws.receiveType("error", 2 * kDeadline);
    const double after = std::chrono::duration<double>(Clock::now() - answered).count();
    REQUIRE(error.has_value());
    INFO("error " << error->dump() << " " << after << " s after the answer");
    CHECK(error->value("code", "") == "internal");
    CHECK_THAT(error->value("message", ""), Catch::Matchers::Contains("ICE did not connect within 20 s"));
    CHECK(after >= 19);
    CHECK(after <= 35);
    const Json room = waitRoom(server, "ice", [](const Json& r) { return r.at("participants").size() == 1; });
    CHECK(room.at("participants").size() == 1);
    const auto before = anchor.report().value("frames", 0);
    const auto later = anchor.waitReport([&](const Json& r) { return r.value("frames", 0) > before + 30; });
    CHECK(later.value("frames", 0) > before + 30);
    anchor.leave();
}

// webrtcbin 1.22 cannot re-activate an inactive m-line ("transceiver
// direction changes are not implemented"): its answer cannot be applied. The
// client must be told, not left waiting for media (docs/protocol.md).
TEST_CASE("an offer whose answer the server cannot apply gets an error; the room goes on", "[media][renegotiate]") {
    Server server(smallCall());
    Client anchor(server, ClientOptions{"reneg", "anchor", "0xff0000", 440, {}, false, {}});
    anchor.waitEvent("first-frame");
    RawSocket ws(server.ws());
    ws.send(Json{{"type", "join"}, {"room", "reneg"}, {"name", "sharer"}}.dump());
    REQUIRE(ws.receiveType("joined"));
    ws.send(Json{{"type", "offer"}, {"sdp", offerWithShare("sendonly")}}.dump());
    REQUIRE(ws.receiveType("answer", kDeadline));
    ws.send(Json{{"type", "offer"}, {"sdp", offerWithShare("inactive")}}.dump());
    REQUIRE(ws.receiveType("answer", kDeadline));
    ws.send(Json{{"type", "offer"}, {"sdp", offerWithShare("sendonly")}}.dump());
    // Candidates and layout changes may come first.
    std::optional<Json> reply;
    while ((reply = ws.receive(kDeadline)) && reply->value("type", "") != "error" &&
           reply->value("type", "") != "answer") {}
    REQUIRE(reply.has_value());
    INFO("reply " << reply->dump());
    CHECK(reply->value("type", "") == "error");
    CHECK_THAT(reply->value("message", ""), Catch::Matchers::Contains("could not apply its answer"));
    const Json room = waitRoom(server, "reneg", [](const Json& r) { return r.at("participants").size() == 1; });
    CHECK(room.at("participants").size() == 1);
    const auto before = anchor.report().value("frames", 0);
    const auto later = anchor.waitReport([&](const Json& r) { return r.value("frames", 0) > before + 30; });
    CHECK(later.value("frames", 0) > before + 30);
    anchor.leave();
}

TEST_CASE("RTP ports: the server's UDP candidates stay within minRtpPort-maxRtpPort and calls connect",
          "[media][ports]") {
    constexpr int kMin = 42000, kMax = 42009;
    Server server(smallCall({"--min-rtp-port", std::to_string(kMin), "--max-rtp-port", std::to_string(kMax)}));
    Client red(server, ClientOptions{"ports", "red", "0xff0000", 440, {}, false, {}});
    red.waitEvent("first-frame");
    RawSocket ws(server.ws());
    joinAndOffer(ws, "ports", "raw");
    int candidates = 0;
    while (auto message = ws.receiveType("candidate", kDeadline)) {
        if (message->at("candidate").is_null()) break; // end of candidates
        const std::string line = message->at("candidate").value("candidate", "");
        INFO("candidate " << line);
        if (const auto port = udpPort(line)) {
            CHECK(*port >= kMin);
            CHECK(*port <= kMax);
            ++candidates;
        }
    }
    CHECK(candidates > 0);
    // A second real client still fits in the range and gets its call.
    Client green(server, ClientOptions{"ports", "green", "0x00ff00", 660, {}, false, {}});
    green.waitEvent("first-frame");
    green.leave();
    red.leave();
}
