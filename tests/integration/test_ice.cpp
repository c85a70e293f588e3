// Where the server gathers ICE candidates when nobody configured it (issue
// 10): the loopback-only host a container or a network namespace gives.
#include <ifaddrs.h>
#include <net/if.h>

#include <fstream>
#include <iterator>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace tessera::testing;

namespace {

// True when every interface that is up is loopback, as in scripts/test's namespace.
bool loopbackOnly() {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return false;
    bool only = true;
    for (ifaddrs* i = list; i; i = i->ifa_next)
        if (i->ifa_addr && (i->ifa_flags & IFF_UP) && !(i->ifa_flags & IFF_LOOPBACK)) only = false;
    freeifaddrs(list);
    return only;
}

} // namespace

TEST_CASE("on a loopback-only host the server gathers loopback candidates by itself", "[ice]") {
    INFO("needs a host whose only interface is lo: run it in scripts/test's network namespace");
    REQUIRE(loopbackOnly());
    // The default listen address is 127.0.0.1, and no --ice-address.
    Server server({}, false);
    const std::vector<Participant> pair(kTrio.begin(), kTrio.begin() + 2);
    auto clients = joinAll(server, "lo", pair);
    const auto centres = gridCentres(pair.size());
    for (size_t i = 0; i < clients.size(); ++i) {
        auto& client = *clients[i];
        INFO("receiver " << pair[i].name << ", log " << client.process().logPath());
        auto report = client.waitReport([&](const Json& r) {
            if (r.value("frames", 0) < 10) return false;
            for (size_t k = 0; k < pair.size(); ++k)
                if (!near(thumbColor(r, centres[k].first, centres[k].second), pair[k].rgb)) return false;
            return tone(r, pair[1 - i].tone) > -30;
        });
        INFO("report: " << brief(report));
        CHECK(report.value("state", "") == "connected");
        for (size_t k = 0; k < pair.size(); ++k)
            CHECK(near(thumbColor(report, centres[k].first, centres[k].second), pair[k].rgb));
        CHECK(tone(report, pair[1 - i].tone) > -30);
    }
    for (auto& c : clients) c->leave();
}

TEST_CASE("with no usable ICE address the server says so at start-up and to a joining client", "[ice]") {
    INFO("needs a host whose only interface is lo: run it in scripts/test's network namespace");
    REQUIRE(loopbackOnly());
    // Listening on every interface, of which only loopback exists, and not
    // told to use it: nothing to gather on.
    Server server({"--host", "0.0.0.0"}, false);
    // Said at start-up, before the server listened.
    std::ifstream log(server.process().logPath());
    const std::string startup((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    CHECK(startup.find("no address to offer ICE candidates on") != std::string::npos);
    RawSocket ws(server.ws());
    ws.send(R"({"type":"join","room":"nowhere","name":"stranded"})");
    REQUIRE(ws.receiveType("joined"));
    auto error = ws.receiveType("error");
    REQUIRE(error.has_value());
    INFO(error->dump());
    CHECK(error->value("message", "").find("no address to offer ICE candidates on") != std::string::npos);
    CHECK(error->value("message", "").find("--ice-address") != std::string::npos);
}
