// The command line (src/app/options.cpp): defaults < --config file < flags,
// and how flags are read (docs/config.md, README "Configuration").
#include <catch2/catch.hpp>

#include <glib.h>

#include <fstream>
#include <string>
#include <vector>

#include "../../src/app/options.h"
#include "tessera/protocol/error.h"

using namespace tessera;
using tessera::app::Options;
using tessera::app::parseOptions;

namespace {

Options parse(std::vector<std::string> words) {
    words.insert(words.begin(), "tessera");
    std::vector<char*> argv;
    for (std::string& word : words) argv.push_back(word.data());
    argv.push_back(nullptr);
    return parseOptions(static_cast<int>(words.size()), argv.data());
}

std::string parseError(std::vector<std::string> words) {
    try {
        parse(std::move(words));
    } catch (const Error& e) {
        return e.what();
    }
    FAIL_CHECK("no tessera::Error thrown");
    return {};
}

// A config file in a fresh temporary directory.
std::string configFile(const std::string& text) {
    std::string dir = std::string(g_get_tmp_dir()) + "/tessera-options-XXXXXX";
    REQUIRE(g_mkdtemp(dir.data()) != nullptr);
    const std::string path = dir + "/config.json";
    std::ofstream(path) << text;
    return path;
}

} // namespace

TEST_CASE("options: no flags and no file give the documented defaults", "[options]") {
    const Options options = parse({});
    CHECK(options.command.empty());
    CHECK(options.config.host == "127.0.0.1");
    CHECK(options.config.port == 8080);
    CHECK(options.config.maxParticipants == 25);
    CHECK(options.config.video.codecs == std::vector<std::string>{"vp8", "h264", "vp9"});
    CHECK(options.config.recording.dir == "recordings");
    CHECK(options.config.live.dir == "live");
    CHECK_FALSE(options.config.recording.autoRecord);
    // Empty directories are resolved to the source tree's copies.
    CHECK_FALSE(options.config.pipelinesDir.empty());
    CHECK_FALSE(options.config.layoutsDir.empty());
}

TEST_CASE("options: a flag overrides the config file, which overrides the defaults", "[options]") {
    const std::string file = configFile(
        R"({"port": 9000, "maxParticipants": 7, "video": {"width": 640, "height": 360}, "iceAddresses": ["10.0.0.1"]})");
    SECTION("the file alone") {
        const Options options = parse({"--config", file});
        CHECK(options.config.port == 9000);
        CHECK(options.config.maxParticipants == 7);
        CHECK(options.config.video.width == 640);
        CHECK(options.config.video.framerate == 30); // not in the file: the default
        CHECK(options.config.iceAddresses == std::vector<std::string>{"10.0.0.1"});
    }
    SECTION("flags on top, in either order on the command line") {
        for (const auto& words : {std::vector<std::string>{"--config", file, "--port", "9100", "--video-width", "320"},
                                  std::vector<std::string>{"--port", "9100", "--video-width", "320", "-c", file}}) {
            const Options options = parse(words);
            CHECK(options.config.port == 9100);
            CHECK(options.config.video.width == 320);
            CHECK(options.config.video.height == 360);    // from the file: the flag names only the width
            CHECK(options.config.maxParticipants == 7);   // from the file
            CHECK(options.config.audio.bitrate == 64000); // default
        }
    }
    SECTION("a list flag replaces the file's list") {
        const Options options = parse({"--config", file, "--ice-address", "127.0.0.1", "--ice-address", "::1"});
        CHECK(options.config.iceAddresses == std::vector<std::string>{"127.0.0.1", "::1"});
    }
}

TEST_CASE("options: how flags are read", "[options]") {
    SECTION("the last of a repeated flag wins") { CHECK(parse({"--port", "1", "--port", "2"}).config.port == 2); }
    SECTION("--record-all takes no value") {
        const Options options = parse({"--record-all", "validate", "x.json"});
        CHECK(options.config.recording.autoRecord);
        CHECK(options.command == std::vector<std::string>{"validate", "x.json"});
    }
    SECTION("strings with quotes and backslashes arrive unchanged") {
        CHECK(parse({"--admin-token", R"(a"b\c)"}).config.adminToken == R"(a"b\c)");
    }
    SECTION("--stun and --turn fill iceServers, credentials unescaped") {
        const Options options =
            parse({"--stun", "stun:stun.example.org:3478", "--turn", "turn:us%40er:p%3Ass@turn.example.org:3478"});
        REQUIRE(options.config.iceServers.size() == 2);
        CHECK(options.config.iceServers[0].urls == std::vector<std::string>{"stun:stun.example.org:3478"});
        CHECK(options.config.iceServers[1].urls == std::vector<std::string>{"turn:turn.example.org:3478"});
        CHECK(options.config.iceServers[1].username == "us@er");
        CHECK(options.config.iceServers[1].credential == "p:ss");
    }
    SECTION("--cert and --key fill tls") {
        const Options options = parse({"--cert", "c.pem", "--key", "k.pem"});
        CHECK(options.config.tls.cert == "c.pem");
        CHECK(options.config.tls.key == "k.pem");
        CHECK_THROWS_WITH(parse({"--cert", "c.pem"}), "--key: tls.cert and tls.key go together");
    }
    SECTION("--turn-secret, --turn-url (repeatable) and --turn-ttl fill turn") {
        const Options options = parse({"--turn-secret", "s3cret", "--turn-url", "turn:a.example.org:3478", "--turn-url",
                                       "turn:b.example.org:3478", "--turn-ttl", "600"});
        CHECK(options.config.turn.secret == "s3cret");
        CHECK(options.config.turn.urls ==
              std::vector<std::string>{"turn:a.example.org:3478", "turn:b.example.org:3478"});
        CHECK(options.config.turn.ttlSeconds == 600);
        CHECK_THROWS_WITH(parse({"--turn-secret", "s3cret"}), Catch::Contains("go together"));
    }
    SECTION("nested keys from flags") {
        const Options options = parse(
            {"--record-segment-bytes", "2000000", "--video-tiers", "only:320x180:200000", "--live-dir", "/srv/live"});
        CHECK(options.config.recording.segmentBytes == 2'000'000);
        CHECK(options.config.live.dir == "/srv/live");
        REQUIRE(options.config.video.tiers.size() == 1);
        CHECK(options.config.video.tiers[0].name == "only");
    }
    SECTION("--video-codecs takes a preference list; --video-codec, one codec") {
        CHECK(parse({"--video-codecs", "h264,vp8"}).config.video.codecs == std::vector<std::string>{"h264", "vp8"});
        CHECK(parse({"--video-codec", "vp9"}).config.video.codecs == std::vector<std::string>{"vp9"});
        // The flag replaces the file's list.
        const std::string file = configFile(R"({"video": {"codecs": ["vp9", "vp8"]}})");
        CHECK(parse({"--config", file, "--video-codec", "h264"}).config.video.codecs ==
              std::vector<std::string>{"h264"});
        CHECK_THAT(parseError({"--video-codecs", "vp8,av1"}), Catch::Matchers::StartsWith("--video-codecs: "));
        CHECK_THAT(parseError({"--video-codec", "av1"}), Catch::Matchers::StartsWith("--video-codec: "));
    }
}

TEST_CASE("options: errors name the flag or the file", "[options]") {
    CHECK_THAT(parseError({"--port", "http"}), Catch::Matchers::StartsWith("--port: "));
    CHECK_THAT(parseError({"--video-width", "15"}), Catch::Matchers::StartsWith("--video-width: "));
    CHECK_THAT(parseError({"--min-rtp-port", "50000", "--max-rtp-port", "40000"}),
               Catch::Matchers::Contains("--max-rtp-port"));
    CHECK_THAT(parseError({"--no-such-flag"}), Catch::Matchers::Contains("--no-such-flag"));
    const std::string file = configFile(R"({"prot": 1})");
    const std::string message = parseError({"--config", file});
    CHECK_THAT(message, Catch::Matchers::StartsWith(file + ": "));
    CHECK_THAT(message, Catch::Matchers::Contains("prot"));
    CHECK_THAT(parseError({"--config", file + ".missing"}), Catch::Matchers::Contains(file + ".missing"));
    // A bad flag with a good file: the flag is named, not the file.
    CHECK_THAT(parseError({"--config", configFile("{}"), "--port", "70000"}), Catch::Matchers::StartsWith("--port: "));
}
