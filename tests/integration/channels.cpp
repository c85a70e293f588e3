#include "channels.h"

#include <catch2/catch.hpp>

namespace tessera::testing {

std::unique_ptr<Client> joinWithChannels(Server& server, const Participant& who, const std::vector<std::string>& extra,
                                         const std::string& room) {
    auto client =
        std::make_unique<Client>(server, ClientOptions{room, who.name, who.color, who.tone, {}, false, extra});
    client->waitEvent("connected");
    for (int open = 0; open < 2; ++open) client->waitEvent("channel-open");
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
