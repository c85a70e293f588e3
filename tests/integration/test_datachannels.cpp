// docs/datachannels.md through real tessera-clients: nothing is stored for
// late joiners, `cancel` is relayed like any control message, and a sender
// leaving mid-transfer is announced to the receivers.
#include <catch2/catch.hpp>

#include "harness.h"

using namespace tessera::testing;

namespace {

// A client whose `chat` and `file` channels are open.
std::unique_ptr<Client> joinWithChannels(Server& server, const Participant& who) {
    auto client = std::make_unique<Client>(server, ClientOptions{"dc", who.name, who.color, who.tone, {}, false, {}});
    client->waitEvent("connected");
    for (int open = 0; open < 2; ++open) client->waitEvent("channel-open");
    return client;
}

// Waits until the server relays `from`'s chat to `to`: a client sees its
// channels open before the server has attached them, and a message in that
// window reaches nobody. Sends "ping" until one arrives.
void waitRelay(Client& from, Client& to) {
    const auto deadline = Clock::now() + kDeadline;
    const int before = to.report().value("chatReceived", 0);
    while (Clock::now() < deadline) {
        REQUIRE(from.call("chat ping").value("ok", false));
        if (to.waitReport([&](const Json& r) { return r.value("chatReceived", 0) > before; }, 1s)
                .value("chatReceived", 0) > before)
            return;
    }
    FAIL("no chat from " << from.options().name << " reached " << to.options().name);
}

// The next chat event that is not a ping.
Json nextChat(Client& client) {
    for (;;) {
        Json chat = client.waitEvent("chat");
        if (chat.value("text", "") != "ping") return chat;
    }
}

// Sends a client command that must succeed (a channel that is not open fails it).
void send(Client& client, const std::string& line) { REQUIRE(client.call(line).value("ok", false)); }

// The `start` control message of a transfer.
std::string fileStart(const std::string& id, const std::string& name, int size) {
    return "file-text " +
           Json{{"type", "start"}, {"id", id}, {"name", name}, {"size", size}, {"mime", "application/octet-stream"}}
               .dump();
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
