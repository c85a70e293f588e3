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

} // namespace

TEST_CASE("data channels: a late joiner gets no earlier chat or file messages, only later ones",
          "[datachannels][late]") {
    Server server;
    auto alice = joinWithChannels(server, kTrio[0]);
    auto bob = joinWithChannels(server, kTrio[1]);
    REQUIRE(alice->call("chat before").value("ok", false));
    REQUIRE(alice->call(R"(file-text {"type":"start","id":"old1","name":"a.txt","size":2,"mime":"text/plain"})")
                .value("ok", false));
    REQUIRE(alice
                ->call("file-data 046f6c6431"
                       "6869")
                .value("ok", false)); // id "old1", payload "hi"
    // Bob, already there, got them: they were relayed before Carol came.
    CHECK(bob->waitEvent("chat").value("text", "") == "before");
    CHECK(bob->waitEvent("file-message").value("text", "").find("old1") != std::string::npos);
    bob->waitEvent("file-data");

    auto carol = joinWithChannels(server, kTrio[2]);
    REQUIRE(alice->call("chat after").value("ok", false));
    const Json chat = carol->waitEvent("chat");
    CHECK(chat.value("text", "") == "after");
    CHECK(chat.value("name", "") == "red");
    // The first chat Carol saw was the later one, and nothing of the file reached her.
    const Json report = carol->report();
    CHECK(report.value("chatReceived", -1) == 1);
    CHECK(report.value("fileMessages", -1) == 0);
    CHECK(report.value("fileBytes", -1) == 0);
    for (auto* c : {alice.get(), bob.get(), carol.get()}) c->leave();
}

TEST_CASE("data channels: cancel reaches the other participants with the sender added", "[datachannels][cancel]") {
    Server server;
    auto alice = joinWithChannels(server, kTrio[0]);
    auto bob = joinWithChannels(server, kTrio[1]);
    const std::string aliceId = alice->report().value("id", "");
    REQUIRE(
        alice
            ->call(
                R"(file-text {"type":"start","id":"c1","name":"big.bin","size":100000,"mime":"application/octet-stream"})")
            .value("ok", false));
    REQUIRE(alice
                ->call("file-data 026331"
                       "00010203")
                .value("ok", false)); // id "c1", 4 bytes
    REQUIRE(alice->call(R"(file-text {"type":"cancel","id":"c1"})").value("ok", false));

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
    const std::string aliceId = alice->report().value("id", "");
    REQUIRE(
        alice
            ->call(
                R"(file-text {"type":"start","id":"gone1","name":"x.bin","size":1000000,"mime":"application/octet-stream"})")
            .value("ok", false));
    const Json start = Json::parse(bob->waitEvent("file-message").value("text", "{}"));
    CHECK(start.value("from", "") == aliceId);
    alice->leave();
    CHECK(bob->waitEvent("participant-left").value("id", "") == aliceId);
    // No end ever came for it.
    CHECK(bob->report().value("fileMessages", -1) == 1);
    bob->leave();
}
