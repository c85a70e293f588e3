// Every hostile input of docs/config.md "Limits" against one live room of
// three real clients, one attack after another: after each, every member's
// picture has moved on, its sound never paused over 500 ms, and the
// server's memory stayed within a stated bound over what the room took
// before. The attacks' own refusals are checked in detail by the focused
// tests (test_limits.cpp, test_call.cpp [bad-input], test_datachannels.cpp);
// here each is checked only as far as it shows the attack was refused.
#include <algorithm>
#include <thread>

#include <catch2/catch.hpp>

#include "channels.h"
#include "files.h"
#include "harness.h"
#include "hostile.h"
#include "tessera/analysis/frames.h"

using namespace tessera::testing;

namespace {

constexpr int kJoinTimeout = 10; // seconds, --join-timeout
constexpr int kConnections = 24; // --connections-per-address
constexpr int kRoomSize = 8;     // --max-participants
constexpr long kRssBoundMb = 64; // over the room of three before the attacks
constexpr double kMaxAudioGapMs = 500;

// A video offer of `count` m-lines, each one sending VP8: one camera and
// screen shares without end, 11 KB of SDP.
std::string manyMlines(int count) {
    std::string sdp =
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-ufrag:Fq3e\r\n"
        "a=ice-pwd:lOC5vrz4IJXBvhnSQ6ud3OGq\r\na=fingerprint:sha-256 "
        "7C:35:6A:DB:4A:46:2E:4C:0D:D4:BE:6F:5A:1A:B6:3D:0A:4F:11:91:1B:4F:F4:71:E9:7D:73:61:90:AB:8C:B7\r\n"
        "a=setup:actpass\r\n";
    for (int i = 0; i < count; ++i)
        sdp += "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:" + std::to_string(i) +
               "\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n";
    return sdp;
}

std::string offer(const std::string& sdp) { return Json{{"type", "offer"}, {"sdp", sdp}}.dump(); }

// Replaces every `from` in `text` with `to`.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
    return text;
}

// The next error a socket gets; fails the test if none comes.
Json nextError(RawSocket& socket) {
    const auto error = socket.receiveType("error");
    REQUIRE(error.has_value());
    return *error;
}

} // namespace

TEST_CASE("a live room of three keeps its picture and sound through every hostile input", "[limits][hostile]") {
    Server server(smallCall({"--join-timeout", std::to_string(kJoinTimeout), "--connections-per-address",
                             std::to_string(kConnections), "--max-participants", std::to_string(kRoomSize),
                             "--data-buffered-bytes", std::to_string(256 * 1024)}));
    const pid_t pid = server.process().pid();
    auto alice = joinWithChannels(server, kTrio[0], {}, "live");
    auto bob = joinWithChannels(server, kTrio[1], {"--file-out", logFor("hostile-bob-file")}, "live");
    auto carol = joinWithChannels(server, kTrio[2], {}, "live");
    waitRelay(*alice, *bob);
    waitRelay(*alice, *carol);
    waitRelay(*bob, *carol);
    const std::vector<Client*> trio = {alice.get(), bob.get(), carol.get()};
    std::vector<int> frames;
    for (Client* c : trio) {
        frames.push_back(c->waitReport([](const Json& r) { return r.value("frames", 0) > 30; }).value("frames", 0));
        send(*c, "reset-gap");
    }
    const long baselineKb = procStatus(pid, "VmRSS");
    long peakKb = baselineKb;
    // Under AddressSanitizer freed memory stays in its quarantine, so RSS
    // only grows; the normal integration run checks it.
    const bool checkRss = !sanitized(pid);
    if (!checkRss) WARN("the server runs under AddressSanitizer: its RSS is not checked");

    // After each attack: every member received 15 more frames, its audio
    // never paused longer than kMaxAudioGapMs, and the server's RSS is
    // within the bound.
    const auto stillLive = [&](const std::string& attack) {
        for (std::size_t i = 0; i < trio.size(); ++i) {
            const Json r = trio[i]->waitReport([&](const Json& r) { return r.value("frames", 0) > frames[i] + 15; });
            INFO("after " << attack << ": " << trio[i]->options().name << ", log " << trio[i]->process().logPath()
                          << ", report " << r.dump().substr(0, 600));
            CHECK(r.value("state", "") == "connected");
            CHECK(r.value("frames", 0) > frames[i] + 15);
            CHECK(r.at("rtp").at("audio").value("packets", 0) > 0);
            CHECK(r.at("rtp").at("audio").value("maxGapMs", kMaxAudioGapMs) < kMaxAudioGapMs);
            frames[i] = r.value("frames", 0);
            send(*trio[i], "reset-gap");
        }
        const long rssKb = procStatus(pid, "VmRSS");
        peakKb = std::max(peakKb, rssKb);
        INFO("after " << attack << ": RSS " << rssKb / 1024 << " MB, " << baselineKb / 1024
                      << " MB before the attacks");
        if (checkRss) CHECK(rssKb <= baselineKb + kRssBoundMb * 1024);
    };

    {
        // 100 connections from one address: those over the bound get 429.
        std::vector<std::unique_ptr<RawSocket>> open;
        for (int i = 0; i < kConnections - 3; ++i) open.push_back(std::make_unique<RawSocket>(server.ws()));
        int refused = 0;
        for (int i = kConnections - 3; i < 100; ++i) refused += RawSocket::handshake(server.ws(), "") == 429;
        CHECK(refused == 100 - (kConnections - 3));
    }
    stillLive("100 connections from one address");

    CHECK(RawSocket::handshake(server.ws(), "https://evil.example") == 403);
    CHECK(httpRequest("PUT", server.http() + "/api/rooms/live/layout", R"({"layout":"speaker"})", "", "",
                      "https://evil.example")
              .status == 403);
    CHECK(jsonOf(httpRequest("GET", server.http() + "/api/rooms/live")).value("layout", "") == "grid");
    stillLive("a cross-origin page");

    CHECK(fragmentedMessage(server.http(), 18) == 1009);
    CHECK(chunkedPut(server.http(), "/api/rooms/live/layout",
                     R"({"layout":"speaker"})" + std::string(2 * 1024 * 1024, ' ')) == 413);
    CHECK(jsonOf(httpRequest("GET", server.http() + "/api/rooms/live")).value("layout", "") == "grid");
    stillLive("a fragmented message and a chunked body over their bounds");

    {
        // Connections close asynchronously: wait for a free one.
        const auto deadline = Clock::now() + kDeadline;
        while (RawSocket::handshake(server.ws(), "") != 101 && Clock::now() < deadline)
            std::this_thread::sleep_for(50ms);
        RawSocket flood(server.ws());
        flood.send(joinMessage("live", "flooder").dump());
        REQUIRE(flood.receiveType("joined"));
        const std::string candidate = Json{{"type", "candidate"}, {"candidate", nullptr}}.dump();
        for (int i = 0; i < 1000 && !flood.closed(); ++i) flood.send(candidate);
        while (flood.receive()) {}
        CHECK(flood.closed());
    }
    stillLive("1000 messages from one socket");

    {
        // Malicious SDP, deep JSON and a markup name, from one participant
        // who never offers anything good.
        const std::string markup = R"(<span size="90000">W</span> & <b>Tom)";
        RawSocket bad(server.ws());
        bad.send(joinMessage("live", markup).dump());
        const auto joined = bad.receiveType("joined");
        REQUIRE(joined.has_value());
        const std::string badId = joined->value("id", "");
        const Json room = jsonOf(httpRequest("GET", server.http() + "/api/rooms/live"));
        const auto& members = room.at("participants");
        CHECK(std::any_of(members.begin(), members.end(),
                          [&](const Json& p) { return p.value("id", "") == badId && p.value("name", "") == markup; }));

        const std::string chromium = readText("tests/data/offer-chromium.sdp");
        REQUIRE(!chromium.empty());
        const std::vector<std::pair<std::string, std::string>> offers = {
            {"huge", offer(chromium + std::string(70 * 1024, 'a'))},
            {"truncated", offer(chromium.substr(0, chromium.find("opus") + 2))},
            {"100 m-lines", offer(manyMlines(100))},
            {"unknown codecs", offer(replaced(replaced(chromium, "opus/", "fopus/"), "VP8/", "FOO/"))},
            {"deep JSON", R"({"type":"offer","sdp":)" + std::string(30000, '[') + std::string(30000, ']') + "}"},
        };
        for (const auto& [what, message] : offers) {
            bad.send(message);
            const Json error = nextError(bad);
            INFO(what << ": " << error.dump());
            CHECK(error.value("code", "") == "bad-request");
            CHECK_FALSE(bad.closed());
        }
        bad.send(Json{{"type", "leave"}}.dump());
    }
    stillLive("malicious SDP, deep JSON and a markup name");

    {
        // Joins that never negotiate fill the room to its bound and are
        // refused over it; those that offer but never do ICE are removed
        // after the limit too.
        std::vector<std::unique_ptr<RawSocket>> idle, silent;
        for (int i = 0; i < 3; ++i) {
            idle.push_back(std::make_unique<RawSocket>(server.ws()));
            idle.back()->send(joinMessage("live", "idle" + std::to_string(i)).dump());
            REQUIRE(idle.back()->receiveType("joined"));
        }
        for (int i = 0; i < 2; ++i) {
            silent.push_back(std::make_unique<RawSocket>(server.ws()));
            silent.back()->send(joinMessage("live", "silent" + std::to_string(i)).dump());
            REQUIRE(silent.back()->receiveType("joined"));
            silent.back()->send(offer(readText("tests/data/offer-chromium.sdp")));
            REQUIRE(silent.back()->receiveType("answer"));
        }
        RawSocket over(server.ws());
        over.send(joinMessage("live", "over").dump());
        CHECK(nextError(over).value("code", "") == "room-full");
        for (auto& socket : idle) {
            const auto error = socket->receiveType("error", kDeadline);
            REQUIRE(error.has_value());
            CHECK(error->value("code", "") == "timeout");
        }
        for (auto& socket : silent) {
            const auto error = socket->receiveType("error", kDeadline);
            REQUIRE(error.has_value());
            CHECK_THAT(error->value("message", ""), Catch::Matchers::Contains("ICE did not connect"));
        }
        CHECK(waitRoom(server, "live", [](const Json& r) { return r.at("participants").size() == 3; })
                  .at("participants")
                  .size() == 3);
    }
    stillLive("joins that never negotiate and offers that never connect");

    // Bob writes into Alice's transfer and tries to end it; Carol gets
    // Alice's start, then Bob's own start: nothing of the forgery.
    send(*alice, fileStart("a1", "a.txt", 4));
    CHECK(Json::parse(carol->waitEvent("file-message").value("text", "{}")).value("id", "") == "a1");
    send(*bob, "file-data 02613145564c21"); // id "a1", "EVL!"
    send(*bob, R"(file-text {"type":"end","id":"a1"})");
    send(*bob, fileStart("b1", "b.txt", 2));
    CHECK(Json::parse(carol->waitEvent("file-message").value("text", "{}")).value("id", "") == "b1");
    CHECK(carol->report().value("fileBytes", -1) == 0);
    stillLive("spoofed transfer ids");

    // Carol stops taking data and Alice sends 2 MiB, as fast as Bob takes
    // it: Bob gets it all, Carol's backlog stays bounded, the call goes on.
    send(*carol, "stall-data on");
    constexpr int kChunks = 128, kPayload = 16 * 1024, kWindow = 8;
    send(*alice, fileStart("big", "big.bin", kChunks * kPayload));
    long long sent = 0;
    for (int i = 0; i < kChunks; ++i) {
        std::vector<std::uint8_t> chunk = {3, 'b', 'i', 'g'};
        chunk.resize(4 + kPayload, static_cast<std::uint8_t>(i));
        sent += static_cast<long long>(chunk.size());
        send(*alice, "file-data " + tessera::analysis::toHex(chunk));
        if (i % kWindow == kWindow - 1) {
            const long long behind = sent - kWindow * static_cast<long long>(chunk.size());
            REQUIRE(bob->waitReport([&](const Json& r) { return r.value("fileBytes", 0LL) >= behind; })
                        .value("fileBytes", 0LL) >= behind);
        }
    }
    CHECK(bob->waitReport([&](const Json& r) { return r.value("fileBytes", 0LL) == sent; }).value("fileBytes", 0LL) ==
          sent);
    stillLive("a file flood to a receiver that stopped taking data");
    send(*carol, "stall-data off");
    INFO("RSS before the attacks " << baselineKb / 1024 << " MB, at most " << peakKb / 1024 << " MB during them");
    if (checkRss) CHECK(peakKb <= baselineKb + kRssBoundMb * 1024);
    for (Client* c : trio) c->leave();
}
