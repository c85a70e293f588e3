// The JSON config file (docs/config.md) on top of the embedded defaults.
// Strict, unlike the wire protocol: a misspelt key in a file an operator
// edits is a mistake to report, not an extension to ignore.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

#include <nlohmann/json.hpp>

#include "parse_json.h"
#include "tessera-build.h"
#include "tessera/protocol/config.h"
#include "tessera/protocol/origin.h"
#include "tessera/protocol/uri.h"

namespace tessera {
namespace {

using Json = nlohmann::json;

[[noreturn]] void fail(const std::string& path, std::string_view why) {
    throw Error(ErrorCode::BadRequest, path + ": " + std::string(why));
}

void requireObject(const Json& value, const std::string& path) {
    if (!value.is_object()) fail(path, "must be an object");
}

std::string stringValue(const Json& value, const std::string& path) {
    if (!value.is_string()) fail(path, "must be a string");
    return value.get<std::string>();
}

std::string nonEmptyString(const Json& value, const std::string& path) {
    if (!value.is_string() || value.get_ref<const std::string&>().empty()) fail(path, "must be a non-empty string");
    return value.get<std::string>();
}

// Non-negative integer literals are the only ones nlohmann stores unsigned,
// so floats (30.5, 1e3) and negatives fail the type test.
unsigned integerIn(const Json& value, const std::string& path, unsigned min, unsigned max) {
    if (!value.is_number_unsigned() || value.get<std::uint64_t>() < min || value.get<std::uint64_t>() > max) {
        fail(path, "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
    }
    return value.get<unsigned>();
}

// Video sizes must be even: the encoders take 4:2:0 frames.
unsigned evenSize(const Json& value, const std::string& path) {
    constexpr std::uint64_t kMin = 16, kMax = 7680;
    if (!value.is_number_unsigned() || value.get<std::uint64_t>() < kMin || value.get<std::uint64_t>() > kMax ||
        value.get<std::uint64_t>() % 2 != 0) {
        fail(path, "must be an even integer from 16 to 7680");
    }
    return value.get<unsigned>();
}

// An RTCIceServer, checked as a browser would check it: known schemes, and
// TURN needs credentials (RTCPeerConnection throws without them).
protocol::IceServer parseIceServer(const Json& value, const std::string& path) {
    requireObject(value, path);
    protocol::IceServer server;
    bool sawUrls = false;
    for (const auto& [key, item] : value.items()) {
        const std::string itemPath = path + "." + key;
        if (key == "urls") {
            sawUrls = true;
            if (item.is_string()) {
                server.urls.push_back(item.get<std::string>());
            } else if (item.is_array() && !item.empty() &&
                       std::all_of(item.begin(), item.end(), [](const Json& u) { return u.is_string(); })) {
                server.urls = item.get<std::vector<std::string>>();
            } else {
                fail(itemPath, "must be a URL or a non-empty array of URLs");
            }
            for (const std::string& url : server.urls) {
                if (!protocol::hasScheme(url, {"stun", "stuns", "turn", "turns"})) {
                    fail(itemPath, "each URL must start with stun:, stuns:, turn: or turns:");
                }
            }
        } else if (key == "username") {
            server.username = stringValue(item, itemPath);
        } else if (key == "credential") {
            server.credential = stringValue(item, itemPath);
        } else {
            fail(itemPath, "unknown key");
        }
    }
    if (!sawUrls) fail(path + ".urls", "missing");
    const bool turn = std::any_of(server.urls.begin(), server.urls.end(), [](const std::string& url) {
        return protocol::hasScheme(url, {"turn", "turns"});
    });
    if (turn && (server.username.empty() || server.credential.empty())) {
        fail(path, "turn: and turns: URLs need a username and a credential");
    }
    return server;
}

std::string ipAddress(const Json& value, const std::string& path) {
    if (value.is_string()) {
        const std::string text = value.get<std::string>();
        std::array<unsigned char, sizeof(in6_addr)> buffer{};
        if (inet_pton(AF_INET, text.c_str(), buffer.data()) == 1 ||
            inet_pton(AF_INET6, text.c_str(), buffer.data()) == 1) {
            return text;
        }
    }
    fail(path, "must be an IPv4 or IPv6 address");
}

policy::Tier parseTier(const Json& value, const std::string& path) {
    requireObject(value, path);
    policy::Tier tier;
    for (const auto& [key, item] : value.items()) {
        const std::string itemPath = path + "." + key;
        if (key == "name") {
            tier.name = stringValue(item, itemPath);
            if (tier.name.empty() || tier.name.size() > 32 ||
                !std::all_of(tier.name.begin(), tier.name.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
                }))
                fail(itemPath, "must be 1-32 of [A-Za-z0-9_-]");
        } else if (key == "width") {
            tier.width = evenSize(item, itemPath);
        } else if (key == "height") {
            tier.height = evenSize(item, itemPath);
        } else if (key == "bitrate") {
            tier.bitrate = integerIn(item, itemPath, 10'000, 100'000'000);
        } else {
            fail(itemPath, "unknown key");
        }
    }
    for (const char* key : {"name", "width", "height", "bitrate"})
        if (!value.contains(key)) fail(path + "." + key, "missing");
    return tier;
}

// "high:1280x720:1500000,low:320x180:200000" (the --video-tiers flag) as the
// equivalent array of objects.
Json compactTiers(const std::string& text, const std::string& path) {
    constexpr const char* kForm = "each tier must be NAME:WIDTHxHEIGHT:BITRATE, e.g. low:320x180:200000";
    Json tiers = Json::array();
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t end = std::min(text.find(',', start), text.size());
        const std::string item = text.substr(start, end - start);
        const std::size_t c1 = item.find(':'), x = item.find('x', c1 + 1), c2 = item.find(':', c1 + 1);
        const auto number = [&](std::size_t from, std::size_t to) -> Json {
            const std::string digits = item.substr(from, to - from);
            if (digits.empty() || digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), ::isdigit))
                fail(path, kForm);
            return std::stoul(digits);
        };
        if (c1 == std::string::npos || x == std::string::npos || c2 == std::string::npos || x > c2) fail(path, kForm);
        tiers.push_back({{"name", item.substr(0, c1)},
                         {"width", number(c1 + 1, x)},
                         {"height", number(x + 1, c2)},
                         {"bitrate", number(c2 + 1, item.size())}});
        start = end + 1;
    }
    return tiers;
}

std::vector<policy::Tier> parseTiers(const Json& value, const std::string& path) {
    const Json list = value.is_string() ? compactTiers(value.get<std::string>(), path) : value;
    if (!list.is_array() || list.empty() || list.size() > 8)
        fail(path, "must be an array of 1 to 8 tiers, or \"NAME:WxH:BITRATE,...\"");
    std::vector<policy::Tier> tiers;
    for (std::size_t i = 0; i < list.size(); ++i) {
        policy::Tier tier = parseTier(list[i], path + "[" + std::to_string(i) + "]");
        for (const policy::Tier& other : tiers)
            if (other.name == tier.name) fail(path + "[" + std::to_string(i) + "].name", "duplicate tier name");
        tiers.push_back(std::move(tier));
    }
    return tiers;
}

// A preference list of video codecs: an array, or "vp8,h264" (the
// --video-codecs flag).
std::vector<std::string> parseCodecs(const Json& value, const std::string& path) {
    constexpr const char* kForm = "must be a non-empty array of distinct \"vp8\", \"h264\" and \"vp9\", or "
                                  "\"vp8,h264,...\"";
    Json list = value;
    if (value.is_string()) {
        list = Json::array();
        const std::string& text = value.get_ref<const std::string&>();
        for (std::size_t start = 0; start <= text.size();) {
            const std::size_t end = std::min(text.find(',', start), text.size());
            list.push_back(text.substr(start, end - start));
            start = end + 1;
        }
    }
    if (!list.is_array() || list.empty()) fail(path, kForm);
    std::vector<std::string> codecs;
    for (std::size_t i = 0; i < list.size(); ++i) {
        const std::string itemPath = path + "[" + std::to_string(i) + "]";
        if (!list[i].is_string() || !isVideoCodec(list[i].get_ref<const std::string&>()))
            fail(itemPath, "must be \"vp8\", \"h264\" or \"vp9\"");
        const std::string& codec = list[i].get_ref<const std::string&>();
        if (std::find(codecs.begin(), codecs.end(), codec) != codecs.end()) fail(itemPath, "duplicate codec");
        codecs.push_back(codec);
    }
    return codecs;
}

void applyVideo(VideoConfig& video, const Json& object) {
    requireObject(object, "video");
    for (const auto& [key, value] : object.items()) {
        const std::string path = "video." + key;
        if (key == "width") {
            video.width = evenSize(value, path);
        } else if (key == "height") {
            video.height = evenSize(value, path);
        } else if (key == "framerate") {
            video.framerate = integerIn(value, path, 1, 120);
        } else if (key == "bitrate") {
            video.bitrate = integerIn(value, path, 10'000, 100'000'000);
        } else if (key == "codec") {
            // The single codec of earlier versions: a list of one.
            if (object.contains("codecs")) fail(path, "video.codec and video.codecs: set one of them");
            video.codecs = {stringValue(value, path)};
            if (!isVideoCodec(video.codecs.front())) fail(path, "must be \"vp8\", \"h264\" or \"vp9\"");
        } else if (key == "codecs") {
            video.codecs = parseCodecs(value, path);
        } else if (key == "tileWidth") {
            video.tileWidth = evenSize(value, path);
        } else if (key == "tileHeight") {
            video.tileHeight = evenSize(value, path);
        } else if (key == "keyFrameMaxMs") {
            video.keyFrameMaxMs = integerIn(value, path, 0, 10'000);
        } else if (key == "tiers") {
            video.tiers = parseTiers(value, path);
        } else {
            fail(path, "unknown key");
        }
    }
}

void applyTurn(TurnConfig& turn, const Json& object) {
    requireObject(object, "turn");
    for (const auto& [key, value] : object.items()) {
        const std::string path = "turn." + key;
        if (key == "secret") {
            turn.secret = stringValue(value, path);
        } else if (key == "urls") {
            if (!value.is_array()) fail(path, "must be an array");
            turn.urls.clear();
            for (std::size_t i = 0; i < value.size(); ++i) {
                const std::string itemPath = path + "[" + std::to_string(i) + "]";
                turn.urls.push_back(stringValue(value[i], itemPath));
                if (!protocol::hasScheme(turn.urls.back(), {"turn", "turns"}))
                    fail(itemPath, "must start with turn: or turns:");
            }
        } else if (key == "ttlSeconds") {
            turn.ttlSeconds = integerIn(value, path, 1, 7 * 86400);
        } else {
            fail(path, "unknown key");
        }
    }
}

void applyAudio(AudioConfig& audio, const Json& object) {
    requireObject(object, "audio");
    for (const auto& [key, value] : object.items()) {
        const std::string path = "audio." + key;
        if (key == "bitrate") {
            // Opus's own limits.
            audio.bitrate = integerIn(value, path, 6'000, 510'000);
        } else if (key == "mixMinusSpeakers") {
            // At least one: a speaker must never hear itself. Each costs an encode.
            audio.mixMinusSpeakers = integerIn(value, path, 1, 16);
        } else {
            fail(path, "unknown key");
        }
    }
}

void applyRecording(RecordingConfig& recording, const Json& object) {
    requireObject(object, "recording");
    for (const auto& [key, value] : object.items()) {
        const std::string path = "recording." + key;
        if (key == "dir") {
            recording.dir = nonEmptyString(value, path);
        } else if (key == "format") {
            recording.format = stringValue(value, path);
            if (!isRecordingFormat(recording.format)) fail(path, "must be \"mkv\", \"webm\" or \"mp4\"");
        } else if (key == "auto") {
            if (!value.is_boolean()) fail(path, "must be true or false");
            recording.autoRecord = value.get<bool>();
        } else if (key == "width") {
            recording.width = evenSize(value, path);
        } else if (key == "height") {
            recording.height = evenSize(value, path);
        } else if (key == "bitrate") {
            recording.bitrate = integerIn(value, path, 10'000, 100'000'000);
        } else if (key == "audioBitrate") {
            recording.audioBitrate = integerIn(value, path, 6'000, 510'000);
        } else if (key == "segmentSeconds") {
            recording.segmentSeconds = integerIn(value, path, 0, 86'400);
        } else if (key == "segmentBytes") {
            if (!value.is_number_unsigned() ||
                (value.get<std::uint64_t>() != 0 && value.get<std::uint64_t>() < 1'000'000)) {
                fail(path, "must be 0 or an integer of at least 1000000");
            }
            recording.segmentBytes = value.get<std::uint64_t>();
        } else {
            fail(path, "unknown key");
        }
    }
}

void applyLive(LiveConfig& live, const Json& object) {
    requireObject(object, "live");
    for (const auto& [key, value] : object.items()) {
        const std::string path = "live." + key;
        if (key == "dir") {
            live.dir = nonEmptyString(value, path);
        } else if (key == "maxTargets") {
            live.maxTargets = integerIn(value, path, 1, 16);
        } else if (key == "width") {
            live.width = evenSize(value, path);
        } else if (key == "height") {
            live.height = evenSize(value, path);
        } else if (key == "bitrate") {
            live.bitrate = integerIn(value, path, 10'000, 100'000'000);
        } else if (key == "audioBitrate") {
            // What AAC encoders take for stereo.
            live.audioBitrate = integerIn(value, path, 16'000, 320'000);
        } else if (key == "segmentSeconds") {
            live.segmentSeconds = integerIn(value, path, 1, 30);
        } else if (key == "playlistLength") {
            live.playlistLength = integerIn(value, path, 2, 100);
        } else if (key == "retryMaxSeconds") {
            live.retryMaxSeconds = integerIn(value, path, 1, 3600);
        } else {
            fail(path, "unknown key");
        }
    }
}

void applyTls(TlsConfig& tls, const Json& object) {
    requireObject(object, "tls");
    for (const auto& [key, value] : object.items()) {
        const std::string path = "tls." + key;
        if (key == "cert") {
            tls.cert = stringValue(value, path);
        } else if (key == "key") {
            tls.key = stringValue(value, path);
        } else {
            fail(path, "unknown key");
        }
    }
}

void applyLimits(LimitsConfig& limits, const Json& object) {
    requireObject(object, "limits");
    constexpr unsigned kMax = 1'000'000'000;
    for (const auto& [key, value] : object.items()) {
        const std::string path = "limits." + key;
        if (key == "maxRooms") {
            limits.maxRooms = integerIn(value, path, 0, 100'000);
        } else if (key == "maxParticipants") {
            limits.maxParticipants = integerIn(value, path, 0, 1'000'000);
        } else if (key == "joinsPerAddressPerMinute") {
            limits.joinsPerAddressPerMinute = integerIn(value, path, 0, 1'000'000);
        } else if (key == "connectionsPerAddress") {
            limits.connectionsPerAddress = integerIn(value, path, 0, 100'000);
        } else if (key == "viewersPerRoom") {
            limits.viewersPerRoom = integerIn(value, path, 0, 100'000);
        } else if (key == "viewersPerAddress") {
            limits.viewersPerAddress = integerIn(value, path, 0, 100'000);
        } else if (key == "messagesPerSecond") {
            limits.messagesPerSecond = integerIn(value, path, 0, 100'000);
        } else if (key == "messageBurst") {
            limits.messageBurst = integerIn(value, path, 1, 100'000);
        } else if (key == "joinTimeoutSeconds") {
            limits.joinTimeoutSeconds = integerIn(value, path, 0, 86'400);
        } else if (key == "maxFrameBytes") {
            // Below a protocol frame (64 KiB) valid messages would close the connection.
            limits.maxFrameBytes = integerIn(value, path, protocol::kMaxFrameBytes, 64 * 1024 * 1024);
        } else if (key == "maxCanvasPixels") {
            limits.maxCanvasPixels = integerIn(value, path, 0, 7680 * 7680);
        } else if (key == "dataBytesPerSecond") {
            limits.dataBytesPerSecond = integerIn(value, path, 0, kMax);
        } else if (key == "dataBurstBytes") {
            // At least one file chunk (docs/datachannels.md).
            limits.dataBurstBytes = integerIn(value, path, 16 * 1024 + 33, kMax);
        } else if (key == "dataBufferedBytes") {
            // At least one file chunk, as above.
            limits.dataBufferedBytes = integerIn(value, path, 16 * 1024 + 33, kMax);
        } else {
            fail(path, "unknown key");
        }
    }
}

void applyRoot(Config& config, const Json& root) {
    requireObject(root, "config");
    for (const auto& [key, value] : root.items()) {
        if (key == "host") {
            config.host = nonEmptyString(value, key);
        } else if (key == "port") {
            config.port = static_cast<std::uint16_t>(integerIn(value, key, 0, 65535));
        } else if (key == "wwwDir") {
            config.wwwDir = stringValue(value, key);
        } else if (key == "layoutsDir") {
            config.layoutsDir = stringValue(value, key);
        } else if (key == "pipelinesDir") {
            config.pipelinesDir = stringValue(value, key);
        } else if (key == "logLevel") {
            if (!value.is_string() || !isLogLevel(value.get_ref<const std::string&>())) {
                fail(key, "must be \"error\", \"warning\", \"info\" or \"debug\"");
            }
            config.logLevel = value.get<std::string>();
        } else if (key == "defaultLayout") {
            // A layout name is a file stem in layoutsDir: the room-name rule keeps it a plain name.
            if (!value.is_string() || !protocol::isValidRoomName(value.get_ref<const std::string&>())) {
                fail(key, "must be 1-64 characters of [A-Za-z0-9_-]");
            }
            config.defaultLayout = value.get<std::string>();
        } else if (key == "maxParticipants") {
            config.maxParticipants = integerIn(value, key, 1, 1000);
        } else if (key == "joinToken") {
            config.joinToken = stringValue(value, key);
        } else if (key == "tokenSecret") {
            config.tokenSecret = stringValue(value, key);
            // RFC 7518 3.2: an HS256 key as long as the hash, 256 bits.
            if (!config.tokenSecret.empty() && config.tokenSecret.size() < 32) {
                fail(key, "must be at least 32 characters (or empty)");
            }
        } else if (key == "adminToken") {
            config.adminToken = stringValue(value, key);
        } else if (key == "tls") {
            applyTls(config.tls, value);
        } else if (key == "metricsRequireToken") {
            if (!value.is_boolean()) fail(key, "must be true or false");
            config.metricsRequireToken = value.get<bool>();
        } else if (key == "allowedOrigins") {
            if (!value.is_array()) fail(key, "must be an array");
            config.allowedOrigins.clear();
            for (std::size_t i = 0; i < value.size(); ++i) {
                const std::string itemPath = key + "[" + std::to_string(i) + "]";
                const std::string text = stringValue(value[i], itemPath);
                const auto origin = text == "*" ? std::optional<std::string>("*") : protocol::normaliseOrigin(text);
                if (!origin) fail(itemPath, "must be \"*\" or an origin such as \"https://example.org:8443\"");
                config.allowedOrigins.push_back(*origin);
            }
        } else if (key == "iceServers") {
            if (!value.is_array()) fail(key, "must be an array");
            config.iceServers.clear();
            for (std::size_t i = 0; i < value.size(); ++i) {
                config.iceServers.push_back(parseIceServer(value[i], key + "[" + std::to_string(i) + "]"));
            }
        } else if (key == "turn") {
            applyTurn(config.turn, value);
        } else if (key == "iceAddresses") {
            if (!value.is_array()) fail(key, "must be an array");
            config.iceAddresses.clear();
            for (std::size_t i = 0; i < value.size(); ++i) {
                config.iceAddresses.push_back(ipAddress(value[i], key + "[" + std::to_string(i) + "]"));
            }
        } else if (key == "minRtpPort") {
            config.minRtpPort = integerIn(value, key, 0, 65535);
        } else if (key == "maxRtpPort") {
            config.maxRtpPort = integerIn(value, key, 0, 65535);
        } else if (key == "jitterLatencyMs") {
            config.jitterLatencyMs = integerIn(value, key, 0, 10'000);
        } else if (key == "video") {
            applyVideo(config.video, value);
        } else if (key == "audio") {
            applyAudio(config.audio, value);
        } else if (key == "recording") {
            applyRecording(config.recording, value);
        } else if (key == "live") {
            applyLive(config.live, value);
        } else if (key == "limits") {
            applyLimits(config.limits, value);
        } else {
            fail(key, "unknown key");
        }
    }
    if (!config.tokenSecret.empty() && !config.joinToken.empty()) {
        fail("tokenSecret", "room tokens replace joinToken: set one of them");
    }
    // Checked on the merged result: the file may name the key, a flag the certificate.
    if (config.tls.cert.empty() != config.tls.key.empty()) {
        fail(config.tls.cert.empty() ? "tls.cert" : "tls.key", "tls.cert and tls.key go together");
    }
    // Checked on the merged result: the file may hold the secret, a flag the URLs.
    if (config.turn.secret.empty() != config.turn.urls.empty()) {
        fail(config.turn.secret.empty() ? "turn.secret" : "turn.urls", "turn.secret and turn.urls go together");
    }
    // Checked on the merged result: the file may set one bound and keep the other.
    if (config.maxRtpPort != 0 && config.minRtpPort > config.maxRtpPort) {
        fail("maxRtpPort", "must be 0 (no upper bound) or >= minRtpPort");
    }
    for (std::size_t i = 0; i < config.video.tiers.size(); ++i) {
        const policy::Tier& tier = config.video.tiers[i];
        if (tier.width > config.video.width || tier.height > config.video.height) {
            fail("video.tiers[" + std::to_string(i) + "]",
                 "must not be larger than the composite (video.width x video.height)");
        }
    }
}

} // namespace

void applyConfigJson(Config& config, std::string_view text) {
    const Json root = parseJson(text, "config");
    // Applied to a copy so that a bad file leaves `config` as it was.
    Config updated = config;
    applyRoot(updated, root);
    config = std::move(updated);
}

std::vector<policy::Tier> effectiveTiers(const VideoConfig& video) {
    return policy::sortedTiers(video.tiers.empty() ? policy::defaultTiers(video.width, video.height, video.bitrate)
                                                   : video.tiers);
}

void resolveDefaultDirs(Config& config) {
#if TESSERA_SOURCE_DATA
    if (config.wwwDir.empty()) config.wwwDir = TESSERA_SOURCE_DIR "/data/www";
    if (config.layoutsDir.empty()) config.layoutsDir = TESSERA_SOURCE_DIR "/data/layouts";
    if (config.pipelinesDir.empty()) config.pipelinesDir = TESSERA_SOURCE_DIR "/pipelines";
#else
    if (config.wwwDir.empty()) config.wwwDir = TESSERA_DATA_DIR "/www";
    if (config.layoutsDir.empty()) config.layoutsDir = TESSERA_DATA_DIR "/layouts";
    if (config.pipelinesDir.empty()) config.pipelinesDir = TESSERA_DATA_DIR "/pipelines";
#endif
}

} // namespace tessera
