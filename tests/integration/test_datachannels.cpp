// docs/datachannels.md through real tessera-clients: nothing is stored for
// late joiners, `cancel` is relayed like any control message, and a sender
// leaving mid-transfer is announced to the receivers; a receiver that stops
// taking data loses the transfer, not the call.
#include <algorithm>
#include <fstream>
#include <iterator>

#include <catch2/catch.hpp>

#include "channels.h"
#include "files.h"
#include "harness.h"
#include "tessera/analysis/frames.h"

using namespace tessera::testing;

namespace {

// The next chat event that is not a ping.
Json nextChat(Client& client) {
    for (;;) {
        Json chat = client.waitEvent("chat");
        if (chat.value("text", "") != "ping") return chat;
    }
}

} // namespace

TEST_CASE("data channels: a late joiner gets no earlier chat or file messages, only later ones",
          "[datachannels][late]") {
    Server server;
    auto alice = joinWithChannels(server, kTrio[0]);
    auto bob = joinWithChannels(server, kTrio[1]);
    waitRelay(*alice, *bob);
    send(*alice, "chat before");
    send(*alice, fileStart("old1", "a.txt", 2));
    send(*alice, "file-data 046f6c64316869"); // id "old1", payload "hi"
    // Bob, already there, got them: they were relayed before Carol came.
    CHECK(nextChat(*bob).value("text", "") == "before");
    CHECK(bob->waitEvent("file-message").value("text", "").find("old1") != std::string::npos);
    bob->waitEvent("file-data");

    auto carol = joinWithChannels(server, kTrio[2]);
    waitRelay(*alice, *carol);
    send(*alice, "chat after");
    const Json chat = nextChat(*carol);
    CHECK(chat.value("text", "") == "after");
    CHECK(chat.value("name", "") == "red");
    // Nothing from before Carol came: no "before" among her chats (it would
    // have come before the pings), and nothing of the file.
    const Json report = carol->report();
    CHECK(report.value("fileMessages", -1) == 0);
    CHECK(report.value("fileBytes", -1) == 0);
    for (auto* c : {alice.get(), bob.get(), carol.get()}) c->leave();
}

TEST_CASE("data channels: cancel reaches the other participants with the sender added", "[datachannels][cancel]") {
    Server server;
    auto alice = joinWithChannels(server, kTrio[0]);
    auto bob = joinWithChannels(server, kTrio[1]);
    waitRelay(*alice, *bob);
    const std::string aliceId = alice->report().value("id", ""); // the sender, as receivers see it
    send(*alice, fileStart("c1", "big.bin", 100000));
    send(*alice, "file-data 02633100010203"); // id "c1", 4 bytes
    send(*alice, R"(file-text {"type":"cancel","id":"c1"})");

    const Json start = Json::parse(bob->waitEvent("file-message").value("text", "{}"));
    CHECK(start.value("type", "") == "start");
    CHECK(bob->waitEvent("file-data").value("bytes", 0) == 7); // forwarded unchanged: 1 + 2 + 4
    const Json cancel = Json::parse(bob->waitEvent("file-message").value("text", "{}"));
    INFO("cancel as received: " << cancel.dump());
    CHECK(cancel.value("type", "") == "cancel");
    CHECK(cancel.value("id", "") == "c1");
    CHECK(cancel.value("from", "") == aliceId);
    CHECK(cancel.value("fromName", "") == "red");
    // Not echoed to the sender.
    CHECK(alice->report().value("fileMessages", -1) == 0);
    alice->leave();
    bob->leave();
}

TEST_CASE("data channels: a sender leaving mid-transfer is announced to its receivers", "[datachannels][leave]") {
    // The receiver marks the sender's unfinished transfers failed on
    // participant-left (data/www/datachannels.js, tested by the e2e suite);
    // the server's part is to deliver the start and then that announcement.
    Server server;
    auto alice = joinWithChannels(server, kTrio[0]);
    auto bob = joinWithChannels(server, kTrio[1]);
    waitRelay(*alice, *bob);
    const std::string aliceId = alice->report().value("id", ""); // the sender, as receivers see it
    send(*alice, fileStart("gone1", "x.bin", 1000000));
    const Json start = Json::parse(bob->waitEvent("file-message").value("text", "{}"));
    CHECK(start.value("from", "") == aliceId);
    alice->leave();
    CHECK(bob->waitEvent("participant-left").value("id", "") == aliceId);
    // No end ever came for it.
    CHECK(bob->report().value("fileMessages", -1) == 1);
    bob->leave();
}

TEST_CASE("data channels: a transfer id belongs to its sender; another participant cannot write into it",
          "[datachannels][limits][inject]") {
    Server server;
    auto alice = joinWithChannels(server, kTrio[0]);
    auto bob = joinWithChannels(server, kTrio[1]);
    auto carol = joinWithChannels(server, kTrio[2]);
    waitRelay(*alice, *carol);
    waitRelay(*bob, *carol);
    send(*alice, fileStart("a1", "a.txt", 8));
    CHECK(Json::parse(carol->waitEvent("file-message").value("text", "{}")).value("id", "") == "a1");
    // Bob writes into Alice's transfer, then tries to take over and end its id.
    send(*bob, "file-data 02613145564c21"); // id "a1", "EVL!"
    send(*bob, fileStart("a1", "evil.txt", 4));
    send(*bob, R"(file-text {"type":"end","id":"a1"})");
    // Then a transfer of his own, on the same ordered channel: once it
    // arrives, everything before it has been judged.
    send(*bob, fileStart("b1", "b.txt", 2));
    send(*bob, "file-data 0262316869"); // id "b1", "hi"
    const Json next = Json::parse(carol->waitEvent("file-message").value("text", "{}"));
    INFO("the message after Alice's start: " << next.dump());
    CHECK(next.value("id", "") == "b1");
    CHECK(next.value("type", "") == "start");
    CHECK(carol->waitEvent("file-data").value("bytes", 0) == 5); // Bob's own chunk, not his 7-byte forgery
    // Alice's transfer is still hers and goes on.
    send(*alice, "file-data 0261316f6b6f6b"); // id "a1", "okok"
    send(*alice, R"(file-text {"type":"end","id":"a1"})");
    CHECK(carol->waitEvent("file-data").value("bytes", 0) == 7);
    const Json end = Json::parse(carol->waitEvent("file-message").value("text", "{}"));
    CHECK(end.value("type", "") == "end");
    CHECK(end.value("from", "") == alice->report().value("id", ""));
    CHECK(carol->report().value("fileBytes", -1) == 12);
    for (auto* c : {alice.get(), bob.get(), carol.get()}) c->leave();
}

TEST_CASE("data channels: a receiver that stops taking data loses the transfer, not the call; the others get it whole",
          "[datachannels][limits][slow]") {
    constexpr int kBound = 256 * 1024;
    Server server({"--data-buffered-bytes", std::to_string(kBound)});
    const std::string bobFile = logFor("bob-file"), carolFile = logFor("carol-file");
    auto alice = joinWithChannels(server, kTrio[0]);
    auto bob = joinWithChannels(server, kTrio[1], {"--file-out", bobFile});
    auto carol = joinWithChannels(server, kTrio[2], {"--file-out", carolFile});
    waitRelay(*alice, *bob);
    waitRelay(*alice, *carol);
    std::vector<Client*> everyone = {alice.get(), bob.get(), carol.get()};
    // Everyone on the top tier first: each starts on the lowest and steps up
    // once a probe passes, and what is measured here is the transfer.
    const auto allHigh = [](const Json& room) {
        return std::ranges::all_of(room.at("participants"),
                                   [](const Json& p) { return p.value("tier", "") == "high"; });
    };
    REQUIRE(allHigh(waitRoom(server, "dc", allHigh)));
    std::vector<int> framesBefore;
    for (Client* c : everyone) {
        c->waitEvent("first-frame");
        send(*c, "reset-gap");
        framesBefore.push_back(c->report().value("frames", 0));
    }

    const std::string dropped = "tessera_room_frames_dropped_total{room=\"dc\"}";
    const std::string composed = "tessera_room_frames_total{room=\"dc\"}";
    const double droppedBefore = server.metric(dropped), composedBefore = server.metric(composed);
    const auto transferFrom = Clock::now();

    // Carol's link stops taking data (her media still flows); Alice sends
    // 2 MiB, as fast as Bob takes it. What the server's SCTP buffers for
    // Carol (about 1 MiB) and the bound are sent to her, the rest not.
    send(*carol, "stall-data on");
    constexpr int kChunks = 128, kPayload = 16 * 1024, kWindow = 8;
    const std::string id = "slow1";
    send(*alice, fileStart(id, "big.bin", kChunks * kPayload));
    std::string sent; // the binary messages, as relayed unchanged
    for (int i = 0; i < kChunks; ++i) {
        std::vector<std::uint8_t> chunk = {static_cast<std::uint8_t>(id.size())};
        chunk.insert(chunk.end(), id.begin(), id.end());
        for (int b = 0; b < kPayload; ++b) chunk.push_back(static_cast<std::uint8_t>((i * 131 + b * 7) & 0xff));
        sent.append(chunk.begin(), chunk.end());
        send(*alice, "file-data " + tessera::analysis::toHex(chunk));
        if (i % kWindow == kWindow - 1) {
            const auto behind = static_cast<long long>(sent.size()) - kWindow * static_cast<long long>(chunk.size());
            const Json r = bob->waitReport([&](const Json& r) { return r.value("fileBytes", 0LL) >= behind; });
            REQUIRE(r.value("fileBytes", 0LL) >= behind);
        }
    }
    send(*alice, R"(file-text {"type":"end","id":"slow1"})");

    // Bob gets the whole file and its end.
    const auto whole = static_cast<long long>(sent.size());
    CHECK(bob->waitReport([&](const Json& r) { return r.value("fileBytes", 0LL) == whole; }).value("fileBytes", 0LL) ==
          whole);
    for (;;) {
        const Json control = Json::parse(bob->waitEvent("file-message").value("text", "{}"));
        if (control.value("type", "") == "start") continue;
        CHECK(control.value("type", "") == "end");
        break;
    }
    std::ifstream bobIn(bobFile, std::ios::binary);
    CHECK((std::string((std::istreambuf_iterator<char>(bobIn)), std::istreambuf_iterator<char>()) == sent));

    // Carol, taking data again, gets what was sent to her before she fell
    // behind, then the server's cancel, and nothing more of that file. The
    // server's SCTP resends at its retransmission timer, which backed off
    // while she stalled (up to 60 s).
    send(*carol, "stall-data off");
    std::vector<Json> controls;
    const auto nextControl = [&] {
        controls.push_back(Json::parse(carol->waitEvent("file-message", 150s).value("text", "{}")));
        return controls.back();
    };
    while (nextControl().value("type", "") != "cancel") {}
    // Caught up (the cancel came after her backlog): a later transfer reaches her again.
    send(*alice, fileStart("after1", "small.bin", 2));
    send(*alice, "file-data 06616674657231" + tessera::analysis::toHex(std::vector<std::uint8_t>{'o', 'k'}));
    send(*alice, R"(file-text {"type":"end","id":"after1"})");
    for (Json c = nextControl(); c.value("id", "") != "after1" || c.value("type", "") != "end"; c = nextControl()) {}
    INFO("carol's control messages: " << Json(controls).dump());
    REQUIRE(controls.size() == 4);
    CHECK(controls[0].value("type", "") == "start");
    CHECK(controls[1].value("type", "") == "cancel");
    CHECK(controls[1].value("id", "") == id);
    CHECK(controls[1].value("from", "") == alice->report().value("id", ""));
    CHECK_THAT(controls[1].value("reason", ""), Catch::Matchers::Contains("behind"));
    CHECK(controls[2].value("id", "") == "after1");
    std::ifstream carolIn(carolFile, std::ios::binary);
    const std::string carolGot((std::istreambuf_iterator<char>(carolIn)), std::istreambuf_iterator<char>());
    const std::string afterChunk = std::string(1, '\x06') + "after1ok";
    REQUIRE(carolGot.size() >= afterChunk.size());
    const std::string ofSlow = carolGot.substr(0, carolGot.size() - afterChunk.size());
    INFO("carol got " << ofSlow.size() << " of " << sent.size() << " bytes of the big file");
    CHECK(carolGot.substr(ofSlow.size()) == afterChunk);
    CHECK(ofSlow.size() < sent.size());
    CHECK(sent.compare(0, ofSlow.size(), ofSlow) == 0); // a prefix: in order, nothing torn

    // The call went on for everyone, Carol included, without a freeze. (The
    // transfer can be over in less than a second: the frames are waited for.)
    // A freeze's cause at the server: composite frames the encoders could
    // not keep up with (dropped) or not composed at all (too few made).
    INFO("since the transfer began (" << std::chrono::duration<double>(Clock::now() - transferFrom).count()
                                      << " s): composite frames made " << server.metric(composed) - composedBefore
                                      << ", dropped before the encoders " << server.metric(dropped) - droppedBefore);
    for (std::size_t i = 0; i < everyone.size(); ++i) {
        Json r;
        const bool went = waitUntil([&] {
            r = everyone[i]->report();
            return r.value("frames", 0) >= framesBefore[i] + 30;
        });
        // A freeze's cause: packets that stopped coming (rtp's maxGapMs), or
        // lost for good (its lost) while the decoder waited for a key frame.
        INFO(everyone[i]->options().name << ": frames " << r.value("frames", 0) << ", frameStalls "
                                         << r.value("frameStalls", Json()).dump() << ", rtp "
                                         << r.value("rtp", Json()).dump());
        CHECK(went);
        CHECK(r.value("maxFrameGapMs", 500) < 500);
        CHECK(r.value("state", "") == "connected");
    }
    for (Client* c : everyone) c->leave();
}
