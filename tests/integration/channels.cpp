#include "channels.h"

#include <catch2/catch.hpp>

namespace tessera::testing {

std::unique_ptr<Client> joinWithChannels(Server& server, const Participant& who, const std::vector<std::string>& extra,
                                         const std::string& room) {
    auto client =
        std::make_unique<Client>(server, ClientOptions{room, who.name, who.color, who.tone, {}, false, extra});
    client->waitEvent("connected");
    for (int open = 0; open < 2; ++open) client->waitEvent("channel-open");
    // The client sees its channels open before the server does (the server
    // opens each on the client's DCEP message), and what is relayed to it
    // on one the server has not opened yet is dropped: wait for the server
    // to list both. (Chat pings, waitRelay, cannot show the file channel.)
    const auto serverHasBoth = [&] {
        const auto r = httpRequest("GET", server.http() + "/api/rooms/" + room);
        if (r.status != 200) return false;
        const Json detail = Json::parse(r.body);
        for (const auto& p : detail.at("participants"))
            if (p.value("name", "") == who.name) return p.value("dataChannels", Json::array()) == Json{"chat", "file"};
        return false;
    };
    INFO(who.name << "'s data channels as the server lists them never became chat and file");
    REQUIRE(waitUntil(serverHasBoth));
    return client;
}

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

void send(Client& client, const std::string& line) { REQUIRE(client.call(line).value("ok", false)); }

std::string fileStart(const std::string& id, const std::string& name, int size) {
    return "file-text " +
           Json{{"type", "start"}, {"id", id}, {"name", name}, {"size", size}, {"mime", "application/octet-stream"}}
               .dump();
}

} // namespace tessera::testing
