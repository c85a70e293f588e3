// HTTPS and WSS on the server's own port (docs/security.md): the API and a
// whole call over TLS with a certificate the test makes, a certificate
// replaced while the server runs (SIGHUP), and the warning for a public
// address without TLS.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <catch2/catch.hpp>

#include "files.h"
#include "harness.h"
#include "tessera/glib/raii.h"

using namespace tessera::testing;
namespace glib = tessera::glib;
namespace fs = std::filesystem;

namespace {

struct Certificate {
    std::string cert, key;
};

// A self-signed certificate for 127.0.0.1, as an operator's own CA would
// issue one: the clients trust exactly this file.
Certificate makeCertificate(const std::string& dir, const std::string& stem) {
    const Certificate made{dir + "/" + stem + "-cert.pem", dir + "/" + stem + "-key.pem"};
    const glib::GCharPtr program(g_find_program_in_path("openssl"));
    REQUIRE(program != nullptr);
    Process openssl({program.get(), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                     "-nodes", "-days", "2", "-subj", "/CN=" + stem, "-addext", "subjectAltName=IP:127.0.0.1",
                     "-keyout", made.key, "-out", made.cert},
                    dir + "/openssl-" + stem + ".log");
    const auto status = openssl.wait(Clock::now() + kDeadline);
    INFO("openssl log: " << readText(dir + "/openssl-" + stem + ".log"));
    REQUIRE(status == 0);
    return made;
}

// Replaces `to` by `from` at once, as certbot's renewal (a rename) does.
void install(const Certificate& from, const Certificate& to) {
    for (const auto& [source, target] : {std::pair{from.cert, to.cert}, std::pair{from.key, to.key}}) {
        fs::copy_file(source, target + ".new", fs::copy_options::overwrite_existing);
        fs::rename(target + ".new", target);
    }
}

// Waits until the server's log has `text` `count` times.
void waitLog(Server& server, const std::string& text, std::size_t count) {
    const auto occurrences = [&] {
        const std::string log = readText(server.process().logPath());
        std::size_t n = 0;
        for (auto at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++n;
        return n;
    };
    const auto deadline = Clock::now() + kDeadline;
    while (occurrences() < count && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
    INFO("server log:\n" << logTail(server.process().logPath()));
    REQUIRE(occurrences() >= count);
}

} // namespace

TEST_CASE("TLS: the API and a call over HTTPS/WSS; a new certificate on SIGHUP reaches new connections",
          "[server][tls]") {
    const std::string dir = freshDir("tls");
    const Certificate first = makeCertificate(dir, "first");
    const Certificate second = makeCertificate(dir, "second");
    // What the server reads: `first` now, `second` after the renewal.
    const Certificate served{dir + "/served-cert.pem", dir + "/served-key.pem"};
    install(first, served);
    Server server({"--cert", served.cert, "--key", served.key});
    REQUIRE(server.http().starts_with("https://"));

    const HttpResponse api = httpRequest("GET", server.http() + "/api/rooms", {}, {}, first.cert);
    CHECK(api.status == 200);
    CHECK(api.body == "[]");
    CHECK(api.peerCertificate == readText(first.cert));
    // The port speaks TLS only, and a client that does not trust the
    // certificate gets nothing.
    CHECK(httpRequest("GET", "http://127.0.0.1:" + server.http().substr(server.http().rfind(':') + 1) + "/healthz")
              .status != 200);
    CHECK(httpRequest("GET", server.http() + "/healthz", {}, {}, second.cert).status == 0);

    // A whole call over WSS: each hears the other.
    auto clients = joinAll(server, "secure", {kTrio[0], kTrio[1]});
    for (std::size_t i = 0; i < clients.size(); ++i) {
        const int other = kTrio[1 - i].tone;
        const Json report =
            clients[i]->waitReport([&](const Json& r) { return r.value("frames", 0) > 10 && tone(r, other) > -30; });
        INFO(kTrio[i].name << " report " << brief(report));
        CHECK(report.value("frames", 0) > 10);
        CHECK(tone(report, other) > -30);
    }
    // A client that does not trust the certificate cannot even join.
    {
        Process untrusting({clientBinary(), "--server", server.ws(), "--room", "secure", "--name", "stranger",
                            "--ice-address", "127.0.0.1"},
                           dir + "/stranger.log");
        const auto status = untrusting.wait(Clock::now() + kDeadline);
        INFO("client log: " << readText(dir + "/stranger.log"));
        CHECK(status == 1);
        CHECK(jsonOf(httpRequest("GET", server.http() + "/api/rooms/secure", {}, {}, first.cert))
                  .at("participants")
                  .size() == 2);
    }

    // Renewal: new files, SIGHUP. New connections see the new certificate.
    install(second, served);
    server.process().kill(SIGHUP);
    waitLog(server, "certificate reloaded from " + served.cert, 1);
    const HttpResponse renewed = httpRequest("GET", server.http() + "/healthz", {}, {}, second.cert);
    CHECK(renewed.status == 200);
    CHECK(renewed.peerCertificate == readText(second.cert));
    CHECK(httpRequest("GET", server.http() + "/healthz", {}, {}, first.cert).status == 0);
    // The call on the old connections goes on.
    for (auto& client : clients) {
        const auto before = client->report().value("frames", 0);
        client->waitReport([&](const Json& r) { return r.value("frames", 0) > before + 10; });
        CHECK(client->report().value("frames", 0) > before + 10);
    }
    // A broken renewal keeps the certificate that works.
    {
        std::FILE* broken = std::fopen(served.key.c_str(), "w");
        REQUIRE(broken != nullptr);
        std::fputs("not a key\n", broken);
        std::fclose(broken);
    }
    server.process().kill(SIGHUP);
    waitLog(server, "certificate reload failed, keeping the old one", 1);
    CHECK(httpRequest("GET", server.http() + "/healthz", {}, {}, second.cert).status == 200);
    for (auto& client : clients) client->leave();
}

TEST_CASE("TLS: a server refuses to start with a certificate it cannot load, naming the file", "[server][tls]") {
    const std::string dir = freshDir("tls-bad");
    const Certificate made = makeCertificate(dir, "made");
    const Run run = runTessera({"--port", "0", "--cert", made.cert, "--key", made.cert});
    INFO("stderr: " << run.err);
    CHECK(run.status == 2);
    CHECK_THAT(run.err, Catch::Matchers::Contains("cannot load the certificate " + made.cert));
}

TEST_CASE("TLS: listening beyond loopback without TLS warns of what it costs; with TLS or on loopback it does not",
          "[server][tls]") {
    const std::string warning = "without TLS: browsers give camera and microphone";
    {
        Server server({"--host", "0.0.0.0"});
        CHECK_THAT(readText(server.process().logPath()), Catch::Matchers::Contains(warning));
    }
    {
        Server server;
        CHECK_THAT(readText(server.process().logPath()), !Catch::Matchers::Contains(warning));
    }
    {
        const Certificate made = makeCertificate(freshDir("tls-public"), "public");
        Server server({"--host", "0.0.0.0", "--cert", made.cert, "--key", made.key});
        CHECK_THAT(readText(server.process().logPath()), !Catch::Matchers::Contains(warning));
    }
}
