// TURN REST credentials against a real coturn (Debian `coturn`) on loopback:
// a client restricted to relay candidates joins with the credential from its
// `joined` and receives the mix; a credential coturn refuses (another secret,
// or expired) fails cleanly.
#include <glib.h>

#include <fstream>
#include <iterator>
#include <regex>
#include <thread>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace tessera::testing;

namespace {

// Below the kernel's ephemeral ports (32768-60999), like the relay ports:
// inside that range any socket another process opened may hold the port. At
// 34780 coturn once could not bind its TCP listener for 6 s (a socket of
// another process held the port), and in that test the relay-only client
// never connected.
const std::string kTurnPort = "3478";
const std::string kTurnUrl = "turn:127.0.0.1:" + kTurnPort + "?transport=udp";
const Rgb kDirect{255, 0, 0}; // 0xff0000
// A freeze in the mix, well above 15 fps frame spacing and scheduling jitter.
constexpr int kMaxFrameGapMs = 500;

std::string readAll(const std::string& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// turnserver with a shared secret, relaying on loopback (allow-loopback-peers:
// loopback is exactly what coturn should deny in production).
class Turnserver {
public:
    explicit Turnserver(const std::string& secret)
        : m_log(logFor("turnserver")),
          m_process({"/usr/bin/turnserver", "-n", "--listening-ip=127.0.0.1", "--listening-port=" + kTurnPort,
                     "--relay-ip=127.0.0.1", "--min-port=20000", "--max-port=20040", "--realm=tessera.test",
                     "--use-auth-secret", "--static-auth-secret=" + secret, "--allow-loopback-peers", "--no-cli",
                     "--no-tls", "--no-dtls", "--log-file=" + m_log, "--simple-log", "--verbose",
                     "--pidfile=" + m_log + ".pid"},
                    m_log + ".stderr") {
        INFO("turnserver log " << m_log);
        REQUIRE(waitLog("UDP listener opened on: 127.0.0.1:" + kTurnPort));
    }
    // Polls coturn's log file for `text` (coturn writes it as it goes).
    bool waitLog(const std::string& text, Clock::duration timeout = kDeadline) {
        const auto deadline = Clock::now() + timeout;
        while (Clock::now() < deadline) {
            if (readAll(m_log).find(text) != std::string::npos) return true;
            std::this_thread::sleep_for(100ms);
        }
        return false;
    }
    std::string log() const { return readAll(m_log); }
    const std::string& logPath() const { return m_log; }

private:
    std::string m_log;
    Process m_process;
};

std::vector<std::string> turnServerArgs(const std::string& secret, const std::string& ttl = "600") {
    return {"--video-width",      "640",  "--video-height",      "360",    "--video-framerate", "15",
            "--video-tile-width", "320",  "--video-tile-height", "180",    "--video-tiers",     "high:640x360:600000",
            "--turn-secret",      secret, "--turn-url",          kTurnUrl, "--turn-ttl",        ttl};
}

// The server removes a client whose ICE never connected `limit` seconds
// after its answer, not before, and tells it why; the client exits unconnected.
void requireIceTimeout(Client& client, Clock::time_point answered, int limit) {
    const Json error = client.waitEvent("error", std::chrono::seconds(limit + 20));
    const double after = std::chrono::duration<double>(Clock::now() - answered).count();
    INFO("error " << error.dump() << " " << after << " s after the answer");
    CHECK(error.value("code", "") == "internal");
    CHECK_THAT(error.value("message", ""),
               Catch::Matchers::Contains("ICE did not connect within " + std::to_string(limit) + " s"));
    CHECK(after >= limit - 1);
    CHECK(after <= limit + 15);
    CHECK(client.report().value("state", "") != "connected");
    CHECK(client.waitExit() != 0);
}

long long unixSeconds() { return g_get_real_time() / G_USEC_PER_SEC; }

} // namespace

TEST_CASE("with a TURN secret a relay-only client joins through coturn with the credential from 'joined'", "[turn]") {
    Turnserver turn("tessera-turn-secret");
    Server server(turnServerArgs("tessera-turn-secret"));
    // Each joiner's credential is its own: user name "<expiry>:<its id>".
    RawSocket probe(server.ws());
    probe.send(R"({"type":"join","room":"elsewhere","name":"probe"})");
    const auto joined = probe.receiveType("joined");
    REQUIRE(joined.has_value());
    INFO("joined " << joined->dump());
    const Json& servers = joined->at("iceServers");
    REQUIRE(servers.size() == 1);
    CHECK(servers[0].at("urls") == Json::array({kTurnUrl}));
    const std::string username = servers[0].at("username");
    const std::string id = joined->at("id");
    CHECK(username.substr(username.find(':') + 1) == id);
    const long long expiry = std::stoll(username.substr(0, username.find(':')));
    const long long now = unixSeconds();
    CHECK(expiry >= now + 590);
    CHECK(expiry <= now + 610);
    CHECK(servers[0].value("credential", "").size() == 28); // base64 of a 20-byte SHA-1 HMAC

    Client direct(server, ClientOptions{"turn", "direct", "0xff0000", 440, {}, false, {}});
    direct.waitEvent("first-frame");
    Client relayed(server, ClientOptions{"turn", "relayed", "0x0000ff", 880, {}, false, {"--relay-only"}});
    INFO("relayed client log " << relayed.process().logPath() << ", turnserver log " << turn.logPath());
    const std::string relayedId = relayed.waitEvent("joined").at("id");
    relayed.waitEvent("connected");
    const auto centres = gridCentres(2);
    const auto report = relayed.waitReport([&](const Json& r) {
        return r.value("frames", 0) >= 10 && near(thumbColor(r, centres[0].first, centres[0].second), kDirect);
    });
    INFO("report " << brief(report));
    CHECK(near(thumbColor(report, centres[0].first, centres[0].second), kDirect));
    // Through coturn: it allocated a relay for the client's own "<expiry>:<id>" user ...
    CHECK(turn.waitLog(":" + relayedId + ">: incoming packet ALLOCATE processed, success"));
    // ... and opened it towards the server: the media went through the relay.
    CHECK(turn.log().find(":" + relayedId + ">: incoming packet CREATE_PERMISSION processed, success") !=
          std::string::npos);
    relayed.leave();
    direct.leave();
}

TEST_CASE("a relay-only WHEP viewer connects through coturn with the TURN server of the answer's Link headers",
          "[turn][whep]") {
    Turnserver turn("tessera-turn-secret");
    Server server(turnServerArgs("tessera-turn-secret"));
    Client direct(server, ClientOptions{"turnwhep", "direct", "0xff0000", 440, {}, false, {}});
    direct.waitEvent("first-frame");
    // Relay candidates only, and no ICE server but what the 201 names: it
    // connects only if it read the Link headers.
    Client viewer(server, ClientOptions{"turnwhep",
                                        "viewer",
                                        "0x000000",
                                        0,
                                        {},
                                        false,
                                        {"--whep", server.http() + "/whep/turnwhep?name=viewer", "--relay-only"}});
    INFO("viewer log " << viewer.process().logPath() << ", turnserver log " << turn.logPath());
    const Json joined = viewer.waitEvent("joined");
    CHECK(joined.value("iceServers", 0) == 1);
    const std::string viewerId = joined.value("id", "");
    REQUIRE(!viewerId.empty());
    viewer.waitEvent("connected");
    const auto centre = gridCentres(1)[0];
    const auto report = viewer.waitReport([&](const Json& r) {
        return r.value("frames", 0) >= 10 && near(thumbColor(r, centre.first, centre.second), kDirect);
    });
    INFO("report " << brief(report));
    CHECK(near(thumbColor(report, centre.first, centre.second), kDirect));
    // Through coturn, with the viewer's own credential ("<expiry>:<its id>").
    CHECK(turn.waitLog(":" + viewerId + ">: incoming packet ALLOCATE processed, success"));
    CHECK(turn.log().find(":" + viewerId + ">: incoming packet CREATE_PERMISSION processed, success") !=
          std::string::npos);
    viewer.leave();
    direct.leave();
}

TEST_CASE("a TURN credential coturn refuses leaves a relay-only client unconnected, and the server removes it",
          "[turn]") {
    // coturn shares another secret: every credential Tessera mints is refused,
    // as an expired one is (both are 401 to the allocation).
    Turnserver turn("coturn-has-another-secret");
    Server server(turnServerArgs("tessera-turn-secret"));
    Client relayed(server, ClientOptions{"turn", "refused", "0x0000ff", 880, {}, false, {"--relay-only"}});
    INFO("client log " << relayed.process().logPath() << ", turnserver log " << turn.logPath());
    relayed.waitEvent("answer");
    const auto answered = Clock::now();
    CHECK(turn.waitLog("error 401"));
    requireIceTimeout(relayed, answered, 20);
}

TEST_CASE("a TURN credential that expired before the client used it fails cleanly; the call goes on", "[turn]") {
    // coturn shares Tessera's secret, so the credential is right but for its
    // age: valid 1 s, used after that.
    Turnserver turn("tessera-turn-secret");
    auto args = turnServerArgs("tessera-turn-secret", "1");
    args.insert(args.end(), {"--join-timeout", "6"});
    Server server(args);
    Client direct(server, ClientOptions{"turn", "direct", "0xff0000", 440, {}, false, {}});
    const std::string directId = direct.waitEvent("joined").at("id");
    direct.waitEvent("first-frame");
    Client late(server, ClientOptions{"turn", "late", "0x0000ff", 880, {}, false, {"--relay-only", "--hold-offer"}});
    INFO("late client log " << late.process().logPath() << ", turnserver log " << turn.logPath());
    const std::string lateId = late.waitEvent("joined").at("id");
    // Its credential expires at (the server's clock when it minted it, in
    // whole seconds) + 1, and coturn refuses it from the second after that:
    // that instant is the event to wait for.
    const long long expiredFrom = unixSeconds() + 2;
    std::this_thread::sleep_until(std::chrono::system_clock::time_point(std::chrono::seconds(expiredFrom)));
    const long long offeredAt = unixSeconds();
    REQUIRE(late.call("offer").value("ok", false));
    late.waitEvent("answer");
    const auto answered = Clock::now();
    REQUIRE(direct.call("reset-gap").value("ok", false));
    const int framesBefore = direct.report().value("frames", 0);

    // coturn refuses the allocation for this participant's own credential,
    // because it expired: the secret is right (the participant who used its
    // credential at once got its relay), and the expiry in the user name is
    // before the allocation was asked for.
    CHECK(turn.waitLog(":" + directId + ">: incoming packet ALLOCATE processed, success"));
    REQUIRE(turn.waitLog(":" + lateId + ">: incoming packet message processed, error 401: Unauthorized"));
    const std::string log = turn.log();
    std::smatch refused;
    REQUIRE(std::regex_search(log, refused, std::regex("Cannot find credentials of user <([0-9]+):" + lateId + ">")));
    INFO("refused: " << refused[0]);
    CHECK(std::stoll(refused[1]) < offeredAt);
    CHECK(log.find(":" + lateId + ">: incoming packet ALLOCATE processed, success") == std::string::npos);

    // The server removes it at the ICE limit after the answer and says why ...
    requireIceTimeout(late, answered, 6);
    // ... while the participant already in the room kept receiving the mix
    // without a freeze (15 fps for at least 5 s).
    const Json report = direct.report();
    INFO("direct report " << brief(report));
    CHECK(report.value("frames", 0) >= framesBefore + 30);
    CHECK(report.value("maxFrameGapMs", kMaxFrameGapMs) < kMaxFrameGapMs);
    CHECK(report.value("state", "") == "connected");
    direct.leave();
}
