// The JSON config file (docs/config.md).
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tessera-build.h"
#include "tessera/protocol/config.h"

using namespace tessera;
using Catch::Matchers::StartsWith;

namespace {

std::string configError(Config& config, const std::string& text) {
    INFO("config: " << text);
    try {
        applyConfigJson(config, text);
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::BadRequest);
        return e.what();
    }
    FAIL_CHECK("no tessera::Error thrown");
    return {};
}

std::string configError(const std::string& text) {
    Config config;
    return configError(config, text);
}

} // namespace

TEST_CASE("config defaults", "[config]") {
    Config config;
    applyConfigJson(config, "{}");
    CHECK(config.host == "127.0.0.1");
    CHECK(config.port == 8080);
    CHECK(config.wwwDir.empty());
    CHECK(config.layoutsDir.empty());
    CHECK(config.pipelinesDir.empty());
    CHECK(config.defaultLayout == "grid");
    CHECK(config.maxParticipants == 25);
    CHECK(config.joinToken.empty());
    CHECK(config.adminToken.empty());
    CHECK(config.iceServers.empty());
    CHECK(config.iceAddresses.empty());
    CHECK(config.minRtpPort == 0);
    CHECK(config.maxRtpPort == 0);
    CHECK(config.jitterLatencyMs == 100);
    CHECK(config.video.width == 1280);
    CHECK(config.video.height == 720);
    CHECK(config.video.framerate == 30);
    CHECK(config.video.bitrate == 1'500'000);
    CHECK(config.video.codecs == std::vector<std::string>{"vp8", "h264", "vp9"});
    CHECK(config.video.tileWidth == 640);
    CHECK(config.video.tileHeight == 360);
    CHECK(config.audio.bitrate == 64'000);
    CHECK(config.audio.mixMinusSpeakers == 3);
}

TEST_CASE("config overrides every key", "[config]") {
    Config config;
    applyConfigJson(config, R"({
        "host": "0.0.0.0", "port": 9000,
        "wwwDir": "/srv/www", "layoutsDir": "/srv/layouts", "pipelinesDir": "/srv/pipelines",
        "defaultLayout": "speaker", "maxParticipants": 12,
        "joinToken": "j", "adminToken": "a", "tls": {"cert": "/etc/c.pem", "key": "/etc/k.pem"},
        "iceServers": [
            {"urls": "stun:stun.example.org:3478"},
            {"urls": ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"],
             "username": "u", "credential": "c"}
        ],
        "iceAddresses": ["127.0.0.1", "::1"],
        "minRtpPort": 40000, "maxRtpPort": 40999, "jitterLatencyMs": 120,
        "video": {"width": 1920, "height": 1080, "framerate": 25, "bitrate": 3000000, "codec": "h264",
                  "tileWidth": 480, "tileHeight": 270},
        "audio": {"bitrate": 32000, "mixMinusSpeakers": 5}
    })");
    CHECK(config.host == "0.0.0.0");
    CHECK(config.port == 9000);
    CHECK(config.wwwDir == "/srv/www");
    CHECK(config.layoutsDir == "/srv/layouts");
    CHECK(config.pipelinesDir == "/srv/pipelines");
    CHECK(config.defaultLayout == "speaker");
    CHECK(config.maxParticipants == 12);
    CHECK(config.joinToken == "j");
    CHECK(config.adminToken == "a");
    CHECK(config.tls.cert == "/etc/c.pem");
    CHECK(config.tls.key == "/etc/k.pem");
    REQUIRE(config.iceServers.size() == 2);
    CHECK(config.iceServers[0].urls == std::vector<std::string>{"stun:stun.example.org:3478"});
    CHECK(config.iceServers[0].username.empty());
    CHECK(config.iceServers[1].urls.size() == 2);
    CHECK(config.iceServers[1].username == "u");
    CHECK(config.iceServers[1].credential == "c");
    CHECK(config.iceAddresses == std::vector<std::string>{"127.0.0.1", "::1"});
    CHECK(config.minRtpPort == 40000);
    CHECK(config.maxRtpPort == 40999);
    CHECK(config.jitterLatencyMs == 120);
    CHECK(config.video.width == 1920);
    CHECK(config.video.height == 1080);
    CHECK(config.video.framerate == 25);
    CHECK(config.video.bitrate == 3'000'000);
    CHECK(config.video.codecs == std::vector<std::string>{"h264"});
    CHECK(config.video.tileWidth == 480);
    CHECK(config.video.tileHeight == 270);
    CHECK(config.audio.bitrate == 32'000);
    CHECK(config.audio.mixMinusSpeakers == 5);
}

TEST_CASE("config: limits, allowed origins and the metrics token", "[config][limits]") {
    Config config;
    CHECK(config.limits.maxRooms == 100);
    CHECK(config.limits.maxParticipants == 500);
    CHECK(config.limits.joinsPerAddressPerMinute == 60);
    CHECK(config.limits.maxCanvasPixels == 3840 * 2160);
    CHECK(config.limits.connectionsPerAddress == 50);
    CHECK(config.limits.messagesPerSecond == 20);
    CHECK(config.limits.messageBurst == 50);
    CHECK(config.limits.joinTimeoutSeconds == 20);
    CHECK(config.limits.maxFrameBytes == 1024 * 1024);
    CHECK(config.limits.dataBytesPerSecond == 8 * 1024 * 1024);
    CHECK(config.limits.dataBurstBytes == 16 * 1024 * 1024);
    CHECK(config.limits.dataBufferedBytes == 4 * 1024 * 1024);
    CHECK(config.limits.viewersPerRoom == 100);
    CHECK(config.limits.viewersPerAddress == 20);
    CHECK(config.allowedOrigins.empty());
    CHECK_FALSE(config.metricsRequireToken);
    applyConfigJson(config, R"({"metricsRequireToken": true,
        "allowedOrigins": ["https://App.example.org:443", "*"],
        "limits": {"maxRooms": 0, "maxParticipants": 4, "joinsPerAddressPerMinute": 0, "maxCanvasPixels": 0, "connectionsPerAddress": 3, "messagesPerSecond": 5, "messageBurst": 7,
                   "joinTimeoutSeconds": 2, "maxFrameBytes": 65536, "dataBytesPerSecond": 1000,
                   "dataBurstBytes": 20000, "dataBufferedBytes": 30000, "viewersPerRoom": 0, "viewersPerAddress": 4}})");
    CHECK(config.metricsRequireToken);
    CHECK(config.allowedOrigins == std::vector<std::string>{"https://app.example.org", "*"});
    CHECK(config.limits.maxRooms == 0);
    CHECK(config.limits.maxParticipants == 4);
    CHECK(config.limits.joinsPerAddressPerMinute == 0);
    CHECK(config.limits.maxCanvasPixels == 0);
    CHECK(config.limits.connectionsPerAddress == 3);
    CHECK(config.limits.messagesPerSecond == 5);
    CHECK(config.limits.messageBurst == 7);
    CHECK(config.limits.joinTimeoutSeconds == 2);
    CHECK(config.limits.maxFrameBytes == 65536);
    CHECK(config.limits.dataBytesPerSecond == 1000);
    CHECK(config.limits.dataBurstBytes == 20000);
    CHECK(config.limits.dataBufferedBytes == 30000);
    CHECK(config.limits.viewersPerRoom == 0);
    CHECK(config.limits.viewersPerAddress == 4);
    const std::vector<std::pair<const char*, const char*>> bad = {
        {R"({"limits": {"maxrooms": 1}})", "limits.maxrooms: unknown key"},
        {R"({"limits": {"maxCanvasPixels": 60000000}})",
         "limits.maxCanvasPixels: must be an integer from 0 to 58982400"},
        {R"({"limits": {"maxParticipants": -1}})", "limits.maxParticipants: must be an integer from 0 to 1000000"},
        {R"({"limits": {"messageBurst": 0}})", "limits.messageBurst: must be an integer from 1 to 100000"},
        {R"({"limits": {"maxFrameBytes": 1000}})", "limits.maxFrameBytes: must be an integer from 65536 to 67108864"},
        {R"({"limits": {"dataBurstBytes": 100}})",
         "limits.dataBurstBytes: must be an integer from 16417 to 1000000000"},
        {R"({"limits": {"dataBufferedBytes": 16416}})",
         "limits.dataBufferedBytes: must be an integer from 16417 to 1000000000"},
        {R"({"limits": []})", "limits: must be an object"},
        {R"({"metricsRequireToken": "yes"})", "metricsRequireToken: must be true or false"},
        {R"({"allowedOrigins": "https://a.example"})", "allowedOrigins: must be an array"},
        {R"({"allowedOrigins": ["https://a.example/path"]})",
         R"(allowedOrigins[0]: must be "*" or an origin such as "https://example.org:8443")"},
    };
    for (const auto& [text, expected] : bad) {
        INFO(text);
        Config unchanged;
        CHECK_THROWS_WITH(applyConfigJson(unchanged, text), expected);
    }
}

TEST_CASE("config layers: a later file overrides only what it names", "[config]") {
    Config config;
    applyConfigJson(config, R"({"port": 9000, "video": {"width": 640, "height": 360}, "iceAddresses": ["10.0.0.1"]})");
    applyConfigJson(config, R"({"video": {"codec": "vp9"}, "iceAddresses": []})");
    CHECK(config.port == 9000);
    CHECK(config.video.width == 640);
    CHECK(config.video.height == 360);
    CHECK(config.video.framerate == 30);
    CHECK(config.video.codecs == std::vector<std::string>{"vp9"});
    // An array replaces the previous one as a whole.
    CHECK(config.iceAddresses.empty());
}

TEST_CASE("video codecs: a preference list, written as an array or \"a,b\"; video.codec is a list of one",
          "[config][codecs]") {
    Config config;
    applyConfigJson(config, R"({"video": {"codecs": ["h264", "vp8"]}})");
    CHECK(config.video.codecs == std::vector<std::string>{"h264", "vp8"});
    applyConfigJson(config, R"({"video": {"codecs": "vp9,vp8,h264"}})");
    CHECK(config.video.codecs == std::vector<std::string>{"vp9", "vp8", "h264"});
    applyConfigJson(config, R"({"video": {"codec": "h264"}})");
    CHECK(config.video.codecs == std::vector<std::string>{"h264"});
    // A later layer's list replaces the earlier one as a whole.
    applyConfigJson(config, R"({"video": {"codecs": ["vp8"]}})");
    CHECK(config.video.codecs == std::vector<std::string>{"vp8"});
}

TEST_CASE("config edge values", "[config]") {
    Config config;
    applyConfigJson(config, R"({"port": 0, "video": {"width": 16, "height": 7680, "framerate": 120}})");
    CHECK(config.port == 0);
    CHECK(config.video.width == 16);
    CHECK(config.video.height == 7680);
    applyConfigJson(config, R"({"port": 65535, "minRtpPort": 50000})");
    CHECK(config.port == 65535);
    CHECK(config.minRtpPort == 50000); // maxRtpPort 0: no upper bound
    applyConfigJson(config, R"({"minRtpPort": 0, "maxRtpPort": 50000})");
    CHECK(config.maxRtpPort == 50000);
}

TEST_CASE("config errors name the key path", "[config]") {
    struct Case {
        const char* text;
        const char* expected;
    };
    const std::vector<Case> cases = {
        {R"({"prot": 80})", "prot: unknown key"},
        {R"({"video": {"colour": "red"}})", "video.colour: unknown key"},
        {R"({"audio": {"channels": 2}})", "audio.channels: unknown key"},
        {R"({"recording": {"path": "x"}})", "recording.path: unknown key"},
        {R"({"recording": {"format": "avi"}})", "recording.format: must be \"mkv\", \"webm\" or \"mp4\""},
        {R"({"recording": {"dir": ""}})", "recording.dir: must be a non-empty string"},
        {R"({"recording": {"auto": 1}})", "recording.auto: must be true or false"},
        {R"({"recording": {"width": 641}})", "recording.width: must be an even integer from 16 to 7680"},
        {R"({"recording": {"segmentBytes": 5}})",
         "recording.segmentBytes: must be 0 or an integer of at least 1000000"},
        {R"({"host": 1})", "host: must be a non-empty string"},
        {R"({"host": ""})", "host: must be a non-empty string"},
        {R"({"port": 65536})", "port: must be an integer from 0 to 65535"},
        {R"({"port": -1})", "port: must be an integer from 0 to 65535"},
        {R"({"port": "8080"})", "port: must be an integer from 0 to 65535"},
        {R"({"port": 80.5})", "port: must be an integer from 0 to 65535"},
        {R"({"wwwDir": null})", "wwwDir: must be a string"},
        {R"({"layoutsDir": 3})", "layoutsDir: must be a string"},
        {R"({"pipelinesDir": []})", "pipelinesDir: must be a string"},
        {R"({"defaultLayout": "../grid"})", "defaultLayout: must be 1-64 characters of [A-Za-z0-9_-]"},
        {R"({"defaultLayout": ""})", "defaultLayout: must be 1-64 characters of [A-Za-z0-9_-]"},
        {R"({"maxParticipants": 0})", "maxParticipants: must be an integer from 1 to 1000"},
        {R"({"joinToken": true})", "joinToken: must be a string"},
        {R"({"adminToken": 1})", "adminToken: must be a string"},
        {R"({"tokenSecret": 7})", "tokenSecret: must be a string"},
        {R"({"tokenSecret": "0123456789abcdef0123456789abcde"})",
         "tokenSecret: must be at least 32 characters (or empty)"},
        {R"({"tokenSecret": "0123456789abcdef0123456789abcdef", "joinToken": "j"})",
         "tokenSecret: room tokens replace joinToken: set one of them"},
        {R"({"tls": "c.pem"})", "tls: must be an object"},
        {R"({"tls": {"cert": "c.pem"}})", "tls.key: tls.cert and tls.key go together"},
        {R"({"tls": {"key": "k.pem"}})", "tls.cert: tls.cert and tls.key go together"},
        {R"({"tls": {"cert": "c.pem", "key": "k.pem", "ca": "x"}})", "tls.ca: unknown key"},
        {R"({"video": {"tiers": []}})", R"(video.tiers: must be an array of 1 to 8 tiers, or "NAME:WxH:BITRATE,...")"},
        {R"({"video": {"tiers": [{"name": "a", "width": 320, "height": 180}]}})", "video.tiers[0].bitrate: missing"},
        {R"({"video": {"tiers": [{"name": "a b", "width": 320, "height": 180, "bitrate": 200000}]}})",
         "video.tiers[0].name: must be 1-32 of [A-Za-z0-9_-]"},
        {R"({"video": {"tiers": [{"name": "a", "width": 321, "height": 180, "bitrate": 200000}]}})",
         "video.tiers[0].width: must be an even integer from 16 to 7680"},
        {R"({"video": {"tiers": [{"name": "a", "width": 320, "height": 180, "bitrate": 200000, "fps": 5}]}})",
         "video.tiers[0].fps: unknown key"},
        {R"({"video": {"tiers": "a:320x180:200000,a:160x90:100000"}})", "video.tiers[1].name: duplicate tier name"},
        {R"({"video": {"tiers": "a:320x180"}})",
         "video.tiers: each tier must be NAME:WIDTHxHEIGHT:BITRATE, e.g. low:320x180:200000"},
        {R"({"video": {"tiers": "a:2560x1440:200000"}})",
         "video.tiers[0]: must not be larger than the composite (video.width x video.height)"},
        {R"({"iceServers": {}})", "iceServers: must be an array"},
        {R"({"iceServers": ["stun:s"]})", "iceServers[0]: must be an object"},
        {R"({"iceServers": [{"username": "u"}]})", "iceServers[0].urls: missing"},
        {R"({"iceServers": [{"urls": []}]})", "iceServers[0].urls: must be a URL or a non-empty array of URLs"},
        {R"({"iceServers": [{"urls": [1]}]})", "iceServers[0].urls: must be a URL or a non-empty array of URLs"},
        {R"({"iceServers": [{"urls": "stun:a"}, {"urls": "http://b"}]})",
         "iceServers[1].urls: each URL must start with stun:, stuns:, turn: or turns:"},
        {R"({"iceServers": [{"urls": "turn:t", "username": "u"}]})",
         "iceServers[0]: turn: and turns: URLs need a username and a credential"},
        // Schemes in any case (RFC 3986): an upper-case TURN URL needs credentials too.
        {R"({"iceServers": [{"urls": ["STUN:s", "TURN:t"]}]})",
         "iceServers[0]: turn: and turns: URLs need a username and a credential"},
        {R"({"iceServers": [{"urls": "stun:"}]})",
         "iceServers[0].urls: each URL must start with stun:, stuns:, turn: or turns:"},
        {R"({"turn": {"secret": "s", "urls": ["stun:t"]}})", "turn.urls[0]: must start with turn: or turns:"},
        {R"({"iceServers": [{"urls": "stun:s", "credentialType": "password"}]})",
         "iceServers[0].credentialType: unknown key"},
        {R"({"iceServers": [{"urls": "stun:s", "username": 1}]})", "iceServers[0].username: must be a string"},
        {R"({"iceAddresses": "127.0.0.1"})", "iceAddresses: must be an array"},
        {R"({"iceAddresses": ["127.0.0.1", "localhost"]})", "iceAddresses[1]: must be an IPv4 or IPv6 address"},
        {R"({"iceAddresses": [7]})", "iceAddresses[0]: must be an IPv4 or IPv6 address"},
        {R"({"minRtpPort": 70000})", "minRtpPort: must be an integer from 0 to 65535"},
        {R"({"maxRtpPort": -2})", "maxRtpPort: must be an integer from 0 to 65535"},
        {R"({"minRtpPort": 41000, "maxRtpPort": 40000})", "maxRtpPort: must be 0 (no upper bound) or >= minRtpPort"},
        {R"({"jitterLatencyMs": 10001})", "jitterLatencyMs: must be an integer from 0 to 10000"},
        {R"({"video": 1})", "video: must be an object"},
        {R"({"video": {"width": 1279}})", "video.width: must be an even integer from 16 to 7680"},
        {R"({"video": {"width": 8}})", "video.width: must be an even integer from 16 to 7680"},
        {R"({"video": {"height": 7682}})", "video.height: must be an even integer from 16 to 7680"},
        {R"({"video": {"height": "720"}})", "video.height: must be an even integer from 16 to 7680"},
        {R"({"video": {"framerate": 0}})", "video.framerate: must be an integer from 1 to 120"},
        {R"({"video": {"framerate": 121}})", "video.framerate: must be an integer from 1 to 120"},
        {R"({"video": {"bitrate": 1000}})", "video.bitrate: must be an integer from 10000 to 100000000"},
        {R"({"video": {"codec": "av1"}})", "video.codec: must be \"vp8\", \"h264\" or \"vp9\""},
        {R"({"video": {"codec": 8}})", "video.codec: must be a string"},
        {R"({"video": {"codec": "vp8", "codecs": ["vp8"]}})",
         "video.codec: video.codec and video.codecs: set one of them"},
        {R"({"video": {"codecs": []}})",
         R"(video.codecs: must be a non-empty array of distinct "vp8", "h264" and "vp9", or "vp8,h264,...")"},
        {R"({"video": {"codecs": {"vp8": 1}}})",
         R"(video.codecs: must be a non-empty array of distinct "vp8", "h264" and "vp9", or "vp8,h264,...")"},
        {R"({"video": {"codecs": ["vp8", "av1"]}})", R"(video.codecs[1]: must be "vp8", "h264" or "vp9")"},
        {R"({"video": {"codecs": ["vp8", 9]}})", R"(video.codecs[1]: must be "vp8", "h264" or "vp9")"},
        {R"({"video": {"codecs": ["VP8"]}})", R"(video.codecs[0]: must be "vp8", "h264" or "vp9")"},
        {R"({"video": {"codecs": ["h264", "vp8", "h264"]}})", "video.codecs[2]: duplicate codec"},
        {R"({"video": {"codecs": "vp8,,vp9"}})", R"(video.codecs[1]: must be "vp8", "h264" or "vp9")"},
        {R"({"video": {"tileWidth": 641}})", "video.tileWidth: must be an even integer from 16 to 7680"},
        {R"({"video": {"tileHeight": 0}})", "video.tileHeight: must be an even integer from 16 to 7680"},
        {R"({"audio": []})", "audio: must be an object"},
        {R"({"audio": {"bitrate": 600000}})", "audio.bitrate: must be an integer from 6000 to 510000"},
        {R"({"audio": {"mixMinusSpeakers": 0}})", "audio.mixMinusSpeakers: must be an integer from 1 to 16"},
    };
    for (const Case& c : cases) {
        CHECK(configError(c.text) == c.expected);
    }
}

TEST_CASE("config text that is not a JSON object", "[config]") {
    CHECK_THAT(configError(""), StartsWith("config: not valid JSON"));
    CHECK_THAT(configError(R"({"port": 80,})"), StartsWith("config: not valid JSON"));
    // Found by tests/fuzz: nlohmann/json throws out_of_range, not parse_error, for this.
    CHECK(configError(R"({"port": 1e444})") == "config: not valid JSON (number out of range)");
    CHECK(configError("[]") == "config: must be an object");
    CHECK(configError("null") == "config: must be an object");
}

TEST_CASE("a bad config file leaves the config as it was", "[config]") {
    Config config;
    configError(config, R"({"port": 1, "host": "::", "video": {"width": 3}})");
    CHECK(config.port == 8080);
    CHECK(config.host == "127.0.0.1");
    CHECK(config.video.width == 1280);

    // The RTP port pair is checked against what earlier layers set.
    applyConfigJson(config, R"({"minRtpPort": 40000, "maxRtpPort": 40100})");
    CHECK(configError(config, R"({"maxRtpPort": 30000})") == "maxRtpPort: must be 0 (no upper bound) or >= minRtpPort");
    CHECK(config.maxRtpPort == 40100);
}

TEST_CASE("resolveDefaultDirs fills only empty directories", "[config]") {
    // A build for the checkout (-Dsource_data=true) reads the source tree; any
    // other reads what `meson install` put in datadir/tessera.
#if TESSERA_SOURCE_DATA
    const std::string www = TESSERA_SOURCE_DIR "/data/www", layouts = TESSERA_SOURCE_DIR "/data/layouts",
                      pipelines = TESSERA_SOURCE_DIR "/pipelines";
#else
    const std::string www = TESSERA_DATA_DIR "/www", layouts = TESSERA_DATA_DIR "/layouts",
                      pipelines = TESSERA_DATA_DIR "/pipelines";
#endif
    Config config;
    resolveDefaultDirs(config);
    CHECK(config.wwwDir == www);
    CHECK(config.layoutsDir == layouts);
    CHECK(config.pipelinesDir == pipelines);

    Config custom;
    custom.wwwDir = "/srv/www";
    resolveDefaultDirs(custom);
    CHECK(custom.wwwDir == "/srv/www");
    CHECK(custom.layoutsDir == layouts);
}

TEST_CASE("logLevel is one of the four levels", "[config]") {
    Config config;
    CHECK(config.logLevel == "warning");
    applyConfigJson(config, R"({"logLevel": "debug"})");
    CHECK(config.logLevel == "debug");
    CHECK(configError(config, R"({"logLevel": "verbose"})") ==
          R"(logLevel: must be "error", "warning", "info" or "debug")");
    CHECK(configError(config, R"({"logLevel": 3})") == R"(logLevel: must be "error", "warning", "info" or "debug")");
    CHECK(config.logLevel == "debug");
}

TEST_CASE("data/config.example.json parses", "[config]") {
    // The unit tests run from the source root.
    std::ifstream file("data/config.example.json");
    REQUIRE(file);
    std::stringstream text;
    text << file.rdbuf();
    Config config;
    REQUIRE_NOTHROW(applyConfigJson(config, text.str()));
    CHECK_FALSE(config.iceServers.empty());
}

TEST_CASE("config recording keys", "[config][recording]") {
    Config config;
    CHECK(config.recording.dir == "recordings");
    CHECK(config.recording.format == "mkv");
    CHECK_FALSE(config.recording.autoRecord);
    CHECK(config.recording.segmentSeconds == 0);
    applyConfigJson(config, R"({"recording": {"dir": "/srv/rec", "format": "mp4", "auto": true, "width": 640,
        "height": 360, "bitrate": 800000, "audioBitrate": 96000, "segmentSeconds": 600, "segmentBytes": 2000000000}})");
    CHECK(config.recording.dir == "/srv/rec");
    CHECK(config.recording.format == "mp4");
    CHECK(config.recording.autoRecord);
    CHECK(config.recording.width == 640);
    CHECK(config.recording.height == 360);
    CHECK(config.recording.bitrate == 800000);
    CHECK(config.recording.audioBitrate == 96000);
    CHECK(config.recording.segmentSeconds == 600);
    CHECK(config.recording.segmentBytes == 2000000000ULL);
}

TEST_CASE("config live keys", "[config][live]") {
    Config config;
    CHECK(config.live.dir == "live");
    CHECK(config.live.maxTargets == 4);
    CHECK(config.live.segmentSeconds == 2);
    CHECK(config.live.playlistLength == 6);
    applyConfigJson(config, R"({"live": {"dir": "/srv/live", "maxTargets": 2, "width": 640, "height": 360,
        "bitrate": 800000, "audioBitrate": 96000, "segmentSeconds": 4, "playlistLength": 10, "retryMaxSeconds": 30}})");
    CHECK(config.live.dir == "/srv/live");
    CHECK(config.live.maxTargets == 2);
    CHECK(config.live.width == 640);
    CHECK(config.live.height == 360);
    CHECK(config.live.bitrate == 800000);
    CHECK(config.live.audioBitrate == 96000);
    CHECK(config.live.segmentSeconds == 4);
    CHECK(config.live.playlistLength == 10);
    CHECK(config.live.retryMaxSeconds == 30);
    for (const char* bad :
         {R"({"live": {"dir": ""}})", R"({"live": {"maxTargets": 0}})", R"({"live": {"maxTargets": 17}})",
          R"({"live": {"width": 641}})", R"({"live": {"segmentSeconds": 0}})", R"({"live": {"playlistLength": 1}})",
          R"({"live": {"retryMaxSeconds": 0}})", R"({"live": {"key": 1}})", R"({"live": 3})"}) {
        INFO(bad);
        CHECK_THROWS_AS(applyConfigJson(config, bad), Error);
    }
}

TEST_CASE("video tiers: defaults follow the composite; both spellings parse", "[config][tiers]") {
    Config config;
    auto tiers = effectiveTiers(config.video);
    REQUIRE(tiers.size() == 3);
    CHECK(tiers[0].name == "high");
    CHECK((tiers[0].width == 1280 && tiers[0].height == 720 && tiers[0].bitrate == 1'500'000));
    CHECK(
        (tiers[1].name == "medium" && tiers[1].width == 640 && tiers[1].height == 360 && tiers[1].bitrate == 600'000));
    CHECK((tiers[2].name == "low" && tiers[2].width == 320 && tiers[2].height == 180 && tiers[2].bitrate == 150'000));

    applyConfigJson(config, R"({"video": {"width": 640, "height": 480}})");
    tiers = effectiveTiers(config.video);
    CHECK((tiers[1].width == 320 && tiers[1].height == 240 && tiers[2].width == 160 && tiers[2].height == 120));

    applyConfigJson(config, R"({"video": {"tiers": "hd:640x480:900000,tiny:160x120:80000"}})");
    tiers = effectiveTiers(config.video);
    REQUIRE(tiers.size() == 2);
    CHECK((tiers[0].name == "hd" && tiers[0].width == 640 && tiers[0].height == 480 && tiers[0].bitrate == 900'000));
    CHECK((tiers[1].name == "tiny" && tiers[1].bitrate == 80'000));

    applyConfigJson(config,
                    R"({"video": {"tiers": [{"name": "only", "width": 320, "height": 240, "bitrate": 300000}]}})");
    REQUIRE(effectiveTiers(config.video).size() == 1);
    CHECK(effectiveTiers(config.video)[0].name == "only");
}
