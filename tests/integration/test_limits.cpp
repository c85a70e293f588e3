// Hostile input against a live server (docs/config.md "Limits",
// docs/protocol.md "Origin"): idle joiners time out and free their room,
// a message flood is cut off while the call goes on, cross-site pages are
// refused, connections and rooms are bounded, and display names are drawn
// as plain text.
#include <sys/stat.h>

#include <filesystem>
#include <thread>

#include <catch2/catch.hpp>

#include "files.h"
#include "harness.h"
#include "hostile.h"

using namespace tessera::testing;

TEST_CASE("a WebSocket message fragmented past limits.maxFrameBytes closes the connection (1009)",
          "[limits][fragments]") {
    Server server({"--max-frame-bytes", std::to_string(1024 * 1024)});
    // 18 x 60000 bytes: no frame is large, the message is over 1 MiB.
    CHECK(fragmentedMessage(server.http(), 18) == 1009);
    // Under the bound a fragmented message is read and answered (an error:
    // it is over the protocol's 64 KiB).
    CHECK(fragmentedMessage(server.http(), 2) == 0);
    CHECK(httpRequest("GET", server.http() + "/healthz").status == 200);
}

TEST_CASE("request bodies are bounded however they are sent: a chunked body over 1 MiB gets 413", "[limits][body]") {
    Server server;
    const std::string layout = R"({"layout":"grid"})";
    // Under the bound a chunked body is read and handled: no such room.
    CHECK(chunkedPut(server.http(), "/api/rooms/nobody/layout", layout) == 404);
    // Spaces are valid JSON around the layout: only the size is wrong.
    CHECK(chunkedPut(server.http(), "/api/rooms/nobody/layout", layout + std::string(2 * 1024 * 1024, ' ')) == 413);
    // So is an announced length, and the server goes on serving.
    CHECK(
        httpRequest("PUT", server.http() + "/api/rooms/nobody/layout", layout + std::string(1100 * 1024, ' ')).status ==
        413);
    CHECK(httpRequest("GET", server.http() + "/healthz").status == 200);
}

TEST_CASE("idle joiners that never offer time out; the 26th join is refused until then, a real client after",
          "[limits][idle]") {
    constexpr int kTimeout = 10;
    Server server(smallCall({"--join-timeout", std::to_string(kTimeout)}));
    std::vector<std::unique_ptr<RawSocket>> idle;
    const auto first = Clock::now();
    for (int i = 0; i < 25; ++i) {
        idle.push_back(std::make_unique<RawSocket>(server.ws()));
        idle.back()->send(joinMessage("idle", "idle" + std::to_string(i)).dump());
        REQUIRE(idle.back()->receiveType("joined"));
    }
    RawSocket late(server.ws());
    late.send(joinMessage("idle", "late").dump());
    const auto refused = late.receiveType("error");
    const double elapsed = std::chrono::duration<double>(Clock::now() - first).count();
    if (elapsed >= kTimeout - 1) FAIL("too loaded to judge: 25 joins took " << elapsed << " s");
    REQUIRE(refused.has_value());
    CHECK(refused->value("code", "") == "room-full");

    // Each idle joiner hears why and is disconnected, no earlier than the limit.
    for (auto& socket : idle) {
        const auto error = socket->receiveType("error", kDeadline);
        REQUIRE(error.has_value());
        CHECK(error->value("code", "") == "timeout");
        CHECK_THAT(error->value("message", ""), Catch::Matchers::Contains("no offer within 10 s"));
    }
    CHECK(std::chrono::duration<double>(Clock::now() - first).count() >= kTimeout - 0.5);
    for (auto& socket : idle) {
        const auto deadline = Clock::now() + 20s;
        while (!socket->closed() && Clock::now() < deadline) socket->receive(100ms);
        CHECK(socket->closed());
    }
    // The room is empty again (closed), and a real client gets in and receives.
    CHECK(httpRequest("GET", server.http() + "/api/rooms/idle").status == 404);
    Client client(server, ClientOptions{"idle", "real", "0xff0000", 440, {}, false, {}});
    client.waitEvent("first-frame");
    keepsReceiving(client);
    // A client that offered is not timed out: it is still there after the limit.
    const auto joined = Clock::now();
    client.waitReport([&](const Json&) { return Clock::now() - joined > std::chrono::seconds(kTimeout + 2); });
    CHECK(waitRoom(server, "idle", [](const Json& r) { return r.at("participants").size() == 1; })
              .at("participants")
              .size() == 1);
    client.leave();
}

TEST_CASE("a flood of 1000 messages from one socket is rate-limited and closed; the call goes on", "[limits][flood]") {
    Server server(smallCall());
    auto clients = joinAll(server, "flood", {kTrio[0], kTrio[1]});
    for (auto& c : clients) c->waitEvent("first-frame");

    RawSocket flood(server.ws());
    flood.send(joinMessage("flood", "flooder").dump());
    REQUIRE(flood.receiveType("joined"));
    const std::string candidate = Json{{"type", "candidate"}, {"candidate", nullptr}}.dump();
    for (int i = 0; i < 1000 && !flood.closed(); ++i) flood.send(candidate);
    int limited = 0;
    // Until the server closes it: then what it sent before is still read.
    while (const auto message = flood.receive()) {
        if (message->value("type", "") == "error") {
            INFO(message->dump());
            CHECK(message->value("code", "") == "rate-limited");
            ++limited;
        }
    }
    CHECK(limited > 0);
    CHECK(flood.closed());
    // The flooder's participant left with its socket; the others keep their call.
    CHECK(waitRoom(server, "flood", [](const Json& r) { return r.at("participants").size() == 2; })
              .at("participants")
              .size() == 2);
    for (auto& c : clients) keepsReceiving(*c);

    // An ordinary pace is never limited: 20 messages at 10 per second.
    RawSocket calm(server.ws());
    calm.send(joinMessage("calm", "calm").dump());
    REQUIRE(calm.receiveType("joined"));
    for (int i = 0; i < 20; ++i) {
        calm.send(candidate);
        // `layout` follows `joined`; a candidate has no answer, so no error may come.
        if (const auto reply = calm.receive(100ms)) CHECK(reply->value("type", "") != "error");
    }
    CHECK_FALSE(calm.closed());
    for (auto& c : clients) c->leave();
}

TEST_CASE("Origin: a cross-site page is refused (403), same-origin, no Origin and listed origins are not",
          "[limits][origin]") {
    Server server({"--allowed-origin", "https://app.example.org"});
    const std::string self = server.http(); // http://127.0.0.1:PORT, the web client's own origin
    CHECK(RawSocket::handshake(server.ws(), "https://evil.example") == 403);
    CHECK(RawSocket::handshake(server.ws(), "http://127.0.0.1:1") == 403);
    CHECK(RawSocket::handshake(server.ws(), "null") == 403);
    CHECK(RawSocket::handshake(server.ws(), self) == 101);
    CHECK(RawSocket::handshake(server.ws(), "https://app.example.org") == 101);
    {
        RawSocket sameSite(server.ws(), self);
        sameSite.send(joinMessage("origin", "ok").dump());
        CHECK(sameSite.receiveType("joined"));
    }
    // State-changing API calls too; reading stays open (a cross-site page cannot read the answer).
    const auto forbidden =
        httpRequest("POST", self + "/api/rooms/origin/recording", "", "", "", "https://evil.example");
    CHECK(forbidden.status == 403);
    CHECK(jsonOf(forbidden).value("error", "") == "forbidden");
    CHECK(httpRequest("PUT", self + "/api/rooms/origin/layout", R"({"layout":"grid"})", "", "", "https://evil.example")
              .status == 403);
    CHECK(
        httpRequest("DELETE", self + "/api/rooms/origin/participants/p1", "", "", "", "https://evil.example").status ==
        403);
    CHECK(httpRequest("GET", self + "/api/rooms", "", "", "", "https://evil.example").status == 200);
    // Same-origin and no Origin reach the API (no such room here: 404).
    CHECK(httpRequest("POST", self + "/api/rooms/origin/recording", "", "", "", self).status == 404);
    CHECK(httpRequest("POST", self + "/api/rooms/origin/recording").status == 404);
}

TEST_CASE("connections per address and rooms are bounded, each with its own code", "[limits][connections]") {
    Server server({"--connections-per-address", "3", "--max-rooms", "2"});
    std::vector<std::unique_ptr<RawSocket>> open;
    for (int i = 0; i < 3; ++i) open.push_back(std::make_unique<RawSocket>(server.ws()));
    CHECK(RawSocket::handshake(server.ws(), "") == 429);
    // Closing one makes room for another (the server counts the close asynchronously).
    open.back()->close();
    open.pop_back();
    int status = 0;
    const auto deadline = Clock::now() + kDeadline;
    while ((status = RawSocket::handshake(server.ws(), "")) != 101 && Clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    CHECK(status == 101);

    // Two rooms may be open; a third is refused with server-full, joining an open one is not.
    open.front()->send(joinMessage("one", "a").dump());
    REQUIRE(open.front()->receiveType("joined"));
    open.back()->send(joinMessage("two", "b").dump());
    REQUIRE(open.back()->receiveType("joined"));
    RawSocket third(server.ws());
    third.send(joinMessage("three", "c").dump());
    const auto full = third.receiveType("error");
    REQUIRE(full.has_value());
    CHECK(full->value("code", "") == "server-full");
    third.send(joinMessage("one", "c").dump());
    CHECK(third.receiveType("joined"));
}

TEST_CASE("participants on the server and joins per address per minute are bounded, each with its own code",
          "[limits][joins]") {
    Server server({"--server-max-participants", "2", "--joins-per-minute", "4"});
    RawSocket a(server.ws()), b(server.ws()), c(server.ws()), d(server.ws());
    a.send(joinMessage("one", "a").dump());
    REQUIRE(a.receiveType("joined"));
    b.send(joinMessage("two", "b").dump());
    REQUIRE(b.receiveType("joined"));
    // Two participants: the next join is refused, in an open room or a new one.
    c.send(joinMessage("one", "c").dump());
    const auto full = c.receiveType("error");
    REQUIRE(full.has_value());
    CHECK(full->value("code", "") == "server-full");
    CHECK_THAT(full->value("message", ""), Catch::Matchers::Contains("2 participants"));
    // One leaves: there is a place again.
    a.send(Json{{"type", "leave"}}.dump());
    const auto deadline = Clock::now() + kDeadline;
    while (httpRequest("GET", server.http() + "/api/rooms/one").status != 404 && Clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    c.send(joinMessage("one", "c").dump());
    REQUIRE(c.receiveType("joined"));
    // That was this address's 4th join this minute (the refused one counts):
    // the 5th is rate-limited, although there is a place, and those in the
    // rooms stay.
    b.send(Json{{"type", "leave"}}.dump());
    while (httpRequest("GET", server.http() + "/api/rooms/two").status != 404 && Clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    d.send(joinMessage("three", "d").dump());
    const auto limited = d.receiveType("error");
    REQUIRE(limited.has_value());
    CHECK(limited->value("code", "") == "rate-limited");
    CHECK_THAT(limited->value("message", ""), Catch::Matchers::Contains("4 joins"));
    CHECK(waitRoom(server, "one", [](const Json& r) { return r.at("participants").size() == 1; })
              .at("participants")
              .size() == 1);
    CHECK_FALSE(c.closed());
    CHECK_FALSE(d.closed());
}

TEST_CASE("a layout canvas over limits.maxCanvasPixels is refused with 400 naming it; the room keeps its layout",
          "[limits][canvas]") {
    Server server(smallCall({"--max-canvas-pixels", std::to_string(640 * 360)}));
    Client client(server, ClientOptions{"canvas", "red", "0xff0000", 440, {}, false, {}});
    client.waitEvent("first-frame");
    const auto spec = [](int width, int height) {
        return Json{{"layout",
                     {{"name", "sized"},
                      {"canvas", {{"width", width}, {"height", height}}},
                      {"rest", {{"x", 0}, {"y", 0}, {"w", 1}, {"h", 1}}}}}}
            .dump();
    };
    const std::string url = server.http() + "/api/rooms/canvas/layout";
    const auto refused = httpRequest("PUT", url, spec(642, 360));
    CHECK(refused.status == 400);
    CHECK(jsonOf(refused).value("error", "") == "bad-request");
    CHECK_THAT(jsonOf(refused).value("message", ""),
               Catch::Matchers::Contains("canvas: 642x360 is 231120 pixels, over limits.maxCanvasPixels (230400)"));
    CHECK(jsonOf(httpRequest("GET", server.http() + "/api/rooms/canvas")).value("layout", "") == "grid");
    keepsReceiving(client);
    // At the bound it is taken.
    CHECK(httpRequest("PUT", url, spec(640, 360)).status == 200);
    CHECK(jsonOf(httpRequest("GET", server.http() + "/api/rooms/canvas")).value("layout", "") == "sized");
    keepsReceiving(client);
    client.leave();
}

TEST_CASE("display names are drawn as plain text, not Pango markup", "[limits][labels]") {
    Server server(smallCall());
    const std::string labelled = R"({"layout": {"name": "labelled", "background": "#000000",
        "rest": {"x": 0, "y": 0, "w": 1, "h": 1}, "keepAspect": false, "padding": 0, "labels": true}})";
    // "&" alone is bad markup: the label would vanish.
    Client tom(server, ClientOptions{"tom", "Tom & Jerry", "0xff0000", 440, {}, false, {}});
    // As markup, a huge W whose shaded box covers most of the tile.
    Client span(server, ClientOptions{"span", R"(<span size="90000">W</span>)", "0x00ff00", 660, {}, false, {}});
    for (auto* c : {&tom, &span}) c->waitEvent("first-frame");
    REQUIRE(httpRequest("PUT", server.http() + "/api/rooms/tom/layout", labelled).status == 200);
    REQUIRE(httpRequest("PUT", server.http() + "/api/rooms/span/layout", labelled).status == 200);

    // The picture fills the canvas (no letterbox), and somewhere in the
    // bottom-left band a label is drawn (white on a dark band): not the tile's colour.
    const auto labelShown = [](const Rgb& colour) {
        return [colour](const Json& r) {
            if (!near(thumbColor(r, 0.5, 0.5), colour) || !near(thumbColor(r, 0.03, 0.5), colour)) return false;
            for (double y = 0.86; y <= 0.96; y += 0.02)
                for (double x = 0.03; x <= 0.2; x += 0.02)
                    if (!near(thumbColor(r, x, y), colour)) return true;
            return false;
        };
    };
    const Json tomReport = tom.waitReport(labelShown({255, 0, 0}));
    CHECK(labelShown({255, 0, 0})(tomReport));
    const Json spanReport = span.waitReport(labelShown({0, 255, 0}));
    CHECK(labelShown({0, 255, 0})(spanReport));
    // ... and only there: the rest of the tile's left half is its flat colour.
    for (double y = 0.3; y <= 0.75; y += 0.15) {
        for (double x = 0.05; x <= 0.45; x += 0.1) {
            const Rgb c = thumbColor(spanReport, x, y);
            INFO("at " << x << "," << y << ": " << c.r << "," << c.g << "," << c.b);
            CHECK(near(c, {0, 255, 0}));
        }
    }
    tom.leave();
    span.leave();
}

TEST_CASE("/metrics needs the admin token when metricsRequireToken is set", "[limits][metrics]") {
    {
        Server server({"--admin-token", "adm1n", "--metrics-require-token"});
        const std::string url = server.http() + "/metrics";
        CHECK(httpRequest("GET", url).status == 401);
        CHECK(httpRequest("GET", url, "", "wrong").status == 401);
        const auto ok = httpRequest("GET", url, "", "adm1n");
        CHECK(ok.status == 200);
        CHECK_THAT(ok.body, Catch::Matchers::Contains("tessera_rooms"));
        CHECK(httpRequest("GET", server.http() + "/healthz").status == 200);
    }
    Server open({"--admin-token", "adm1n"});
    CHECK(httpRequest("GET", open.http() + "/metrics").status == 200);
}

TEST_CASE("recordings are not world-readable; participants are told when recording starts and stops",
          "[limits][recording]") {
    const std::string dir = freshDir("limits-recording");
    Server server(recorderArgs(dir));
    Client client(server, ClientOptions{"rec", "red", "0xff0000", 440, {}, false, {}});
    client.waitEvent("first-frame");
    const auto start = httpRequest("POST", server.http() + "/api/rooms/rec/recording");
    REQUIRE(start.status == 201);
    const std::string file = jsonOf(start).value("file", "");
    CHECK(client.waitEvent("recording").value("recording", false));
    // A joiner during the recording is told right after joining.
    RawSocket late(server.ws());
    late.send(joinMessage("rec", "late").dump());
    REQUIRE(late.receiveType("joined"));
    const auto told = late.receiveType("recording");
    REQUIRE(told.has_value());
    CHECK(told->value("recording", false));

    const auto deadline = Clock::now() + kDeadline;
    std::error_code ec;
    while ((!std::filesystem::exists(file, ec) || std::filesystem::file_size(file, ec) == 0) && Clock::now() < deadline)
        std::this_thread::sleep_for(100ms);
    REQUIRE(httpRequest("DELETE", server.http() + "/api/rooms/rec/recording").status == 200);
    CHECK_FALSE(client.waitEvent("recording").value("recording", true));
    const auto stopped = late.receiveType("recording");
    REQUIRE(stopped.has_value());
    CHECK_FALSE(stopped->value("recording", true));

    for (const std::string& path : {file, metadataFor(file)}) {
        struct stat info {};
        REQUIRE(stat(path.c_str(), &info) == 0);
        INFO(path << " mode " << std::oct << (info.st_mode & 0777));
        CHECK((info.st_mode & 0007) == 0); // nothing for other users
        CHECK((info.st_mode & 0600) == 0600);
    }
    client.leave();
}

TEST_CASE("logs never show tokens, TURN passwords or SDP at the default level or at info", "[limits][logs]") {
    const std::string joinToken = "J0in-t0ken-4f9c";
    const std::string adminToken = "Adm1n-t0ken-7d2e";
    const std::string turnPassword = "Turn-passw0rd-1b8a";
    for (const std::string level : {"", "info"}) {
        INFO("log level " << (level.empty() ? "default" : level));
        std::vector<std::string> args = smallCall({"--join-token", joinToken, "--admin-token", adminToken, "--turn",
                                                   "turn:tessera:" + turnPassword + "@127.0.0.1:9?transport=udp"});
        if (!level.empty()) args.insert(args.end(), {"--log-level", level});
        Server server(args);
        // A refused and a good join, a refused and a good admin call, a whole call.
        RawSocket wrong(server.ws());
        wrong.send(Json{{"type", "join"}, {"room", "logs"}, {"name", "x"}, {"token", joinToken + "x"}}.dump());
        CHECK(wrong.receiveType("error"));
        CHECK(httpRequest("GET", server.http() + "/api/rooms", "", adminToken + "x").status == 401);
        Client client(server, ClientOptions{"logs", "red", "0xff0000", 440, {}, false, {"--token", joinToken}});
        client.waitEvent("first-frame");
        CHECK(httpRequest("GET", server.http() + "/api/rooms/logs", "", adminToken).status == 200);
        client.leave();
        server.stop();
        const std::string log = readText(server.process().logPath());
        INFO("server log " << server.process().logPath());
        // Something was logged at info: the room's life.
        if (!level.empty()) CHECK_THAT(log, Catch::Matchers::Contains("joined room 'logs'"));
        for (const std::string& secret : {joinToken, adminToken, turnPassword, std::string("a=fingerprint"),
                                          std::string("v=0"), std::string("a=ice-pwd")}) {
            INFO("looking for " << secret);
            CHECK(log.find(secret) == std::string::npos);
        }
    }
}
