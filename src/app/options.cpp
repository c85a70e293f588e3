#include "options.h"

#include <gst/gst.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <string_view>
#include <utility>

#include "tessera-build.h"
#include "tessera/protocol/error.h"

namespace tessera::app {
namespace {

// Every config key has a flag. Flags are applied through applyConfigJson,
// the same validation as the config file, so that a value means the same and
// is refused for the same reason wherever it is written. That takes a small
// JSON document built here (strings escaped, numbers passed through).
// The default directories as --help shows them (resolveDefaultDirs).
#if TESSERA_SOURCE_DATA
#define DEFAULT_DIR(installed, source) TESSERA_SOURCE_DIR "/" source
#else
#define DEFAULT_DIR(installed, source) TESSERA_DATA_DIR "/" installed
#endif

enum class Kind { String, Number, List, Bool }; // Bool: a flag without a value, meaning true

struct Flag {
    const char* name; // without "--"
    const char* key;  // config key path; one level of nesting ("video.width")
    Kind kind;
    const char* argument; // for --help
    const char* help;
};

constexpr std::array kFlags = {
    Flag{"host", "host", Kind::String, "ADDRESS", "Listen address (default 127.0.0.1)"},
    Flag{"port", "port", Kind::Number, "PORT", "Listen port; 0 picks a free one (default 8080)"},
    Flag{"www-dir", "wwwDir", Kind::String, "DIR", "Web client directory (default " DEFAULT_DIR("www", "data/www") ")"},
    Flag{"layouts-dir", "layoutsDir", Kind::String, "DIR",
         "Layout specs directory (default " DEFAULT_DIR("layouts", "data/layouts") ")"},
    Flag{"pipelines-dir", "pipelinesDir", Kind::String, "DIR",
         "Pipeline fragments directory (default " DEFAULT_DIR("pipelines", "pipelines") ")"},
    Flag{"log-level", "logLevel", Kind::String, "LEVEL",
         "error, warning, info or debug (default warning; GST_DEBUG categories override it)"},
    Flag{"default-layout", "defaultLayout", Kind::String, "NAME", "Layout of a new room (default grid)"},
    Flag{"max-participants", "maxParticipants", Kind::Number, "N", "Participants per room (default 25)"},
    Flag{"join-token", "joinToken", Kind::String, "TOKEN",
         "Token a join must carry (default none; a config file keeps it out of ps)"},
    Flag{"token-secret", "tokenSecret", Kind::String, "SECRET",
         "Joins need a room token signed with this (32+ characters; tessera token mints them; default none)"},
    Flag{"admin-token", "adminToken", Kind::String, "TOKEN",
         "Bearer token /api/* needs (default none; a config file keeps it out of ps)"},
    Flag{"cert", "tls.cert", Kind::String, "FILE",
         "PEM certificate (chain): serve HTTPS and WSS; re-read on SIGHUP (default none: plain HTTP)"},
    Flag{"key", "tls.key", Kind::String, "FILE", "PEM private key of --cert"},
    Flag{"ice-address", "iceAddresses", Kind::List, "IP", "Local address ICE may use (repeatable; default all)"},
    Flag{"min-rtp-port", "minRtpPort", Kind::Number, "PORT", "Lowest UDP port for media (default any)"},
    Flag{"max-rtp-port", "maxRtpPort", Kind::Number, "PORT", "Highest UDP port for media (default any)"},
    Flag{"jitter-latency", "jitterLatencyMs", Kind::Number, "MS", "Jitter buffer per incoming stream (default 100)"},
    Flag{"video-width", "video.width", Kind::Number, "PIXELS", "Composite width (default 1280)"},
    Flag{"video-height", "video.height", Kind::Number, "PIXELS", "Composite height (default 720)"},
    Flag{"video-framerate", "video.framerate", Kind::Number, "FPS", "Composite frame rate (default 30)"},
    Flag{"video-bitrate", "video.bitrate", Kind::Number, "BITS", "Composite bit rate, bits/s (default 1500000)"},
    Flag{"video-codecs", "video.codecs", Kind::String, "LIST",
         "Video codecs in order of preference: each participant gets the first its offer carries (default "
         "vp8,h264,vp9)"},
    Flag{"video-codec", "video.codec", Kind::String, "CODEC", "The one video codec: vp8, h264 or vp9 (--video-codecs)"},
    Flag{"video-tile-width", "video.tileWidth", Kind::Number, "PIXELS", "Width each input is scaled to (default 640)"},
    Flag{"video-tile-height", "video.tileHeight", Kind::Number, "PIXELS",
         "Height each input is scaled to (default 360)"},
    Flag{"video-tiers", "video.tiers", Kind::String, "TIERS",
         "Quality tiers, highest first: NAME:WxH:BITS,... (default high, medium, low from the composite)"},
    Flag{"audio-bitrate", "audio.bitrate", Kind::Number, "BITS", "Opus bit rate, bits/s (default 64000)"},
    Flag{"mix-minus-speakers", "audio.mixMinusSpeakers", Kind::Number, "K",
         "Current speakers who get a mix without their own voice (default 3)"},
    Flag{"record-dir", "recording.dir", Kind::String, "DIR", "Where recordings are written (default recordings)"},
    Flag{"live-dir", "live.dir", Kind::String, "DIR", "Where live HLS streams are written (default live)"},
    Flag{"record-format", "recording.format", Kind::String, "FORMAT", "mkv, webm or mp4 (default mkv)"},
    Flag{"record-all", "recording.auto", Kind::Bool, nullptr, "Record every room from its creation"},
    Flag{"record-width", "recording.width", Kind::Number, "PIXELS", "Recording width (default 1280)"},
    Flag{"record-height", "recording.height", Kind::Number, "PIXELS", "Recording height (default 720)"},
    Flag{"record-bitrate", "recording.bitrate", Kind::Number, "BITS",
         "Recording video bit rate, bits/s (default 2000000)"},
    Flag{"record-audio-bitrate", "recording.audioBitrate", Kind::Number, "BITS",
         "Recording Opus bit rate, bits/s (default 128000)"},
    Flag{"record-segment-seconds", "recording.segmentSeconds", Kind::Number, "SECONDS",
         "Start a new recording file every so many seconds (default 0: one file)"},
    Flag{"record-segment-bytes", "recording.segmentBytes", Kind::Number, "BYTES",
         "Start a new recording file at this size (default 0: one file)"},
    Flag{"metrics-require-token", "metricsRequireToken", Kind::Bool, nullptr, "GET /metrics needs the admin token too"},
    Flag{"allowed-origin", "allowedOrigins", Kind::List, "ORIGIN",
         "Another site whose pages may use the server, e.g. https://example.org (repeatable; default same-origin "
         "only)"},
    Flag{"max-rooms", "limits.maxRooms", Kind::Number, "N", "Rooms open at once (default 100; 0: no limit)"},
    Flag{"server-max-participants", "limits.maxParticipants", Kind::Number, "N",
         "Participants on the whole server (default 500; 0: no limit)"},
    Flag{"joins-per-minute", "limits.joinsPerAddressPerMinute", Kind::Number, "N",
         "Joins per client address per minute (default 60; 0: no limit)"},
    Flag{"connections-per-address", "limits.connectionsPerAddress", Kind::Number, "N",
         "Open WebSockets per client address (default 50; 0: no limit)"},
    Flag{"viewers-per-room", "limits.viewersPerRoom", Kind::Number, "N",
         "WHEP viewers per room (default 100; 0: no limit)"},
    Flag{"viewers-per-address", "limits.viewersPerAddress", Kind::Number, "N",
         "WHEP viewers per client address (default 20; 0: no limit)"},
    Flag{"messages-per-second", "limits.messagesPerSecond", Kind::Number, "N",
         "Signaling messages per connection per second (default 20; 0: no limit)"},
    Flag{"message-burst", "limits.messageBurst", Kind::Number, "N",
         "Signaling messages per connection at once (default 50)"},
    Flag{"join-timeout", "limits.joinTimeoutSeconds", Kind::Number, "SECONDS",
         "Time from join to the first offer (default 20; 0: none)"},
    Flag{"max-frame-bytes", "limits.maxFrameBytes", Kind::Number, "BYTES",
         "A larger WebSocket message closes the connection (default 1048576)"},
    Flag{"max-canvas-pixels", "limits.maxCanvasPixels", Kind::Number, "PIXELS",
         "Largest layout canvas, width x height (default 8294400, 3840x2160; 0: no limit)"},
    Flag{"data-bytes-per-second", "limits.dataBytesPerSecond", Kind::Number, "BYTES",
         "Data-channel bytes one participant may send per second (default 8388608; 0: no limit)"},
    Flag{"data-burst-bytes", "limits.dataBurstBytes", Kind::Number, "BYTES",
         "Data-channel bytes one participant may send at once (default 16777216)"},
    Flag{"data-buffered-bytes", "limits.dataBufferedBytes", Kind::Number, "BYTES",
         "Data-channel bytes that may wait to go to one participant; then its transfers are dropped (default "
         "4194304)"},
    Flag{"turn-secret", "turn.secret", Kind::String, "SECRET",
         "TURN shared secret (coturn's static-auth-secret): each joiner gets its own short-lived credential for "
         "--turn-url (default none; a config file keeps it out of ps)"},
    Flag{"turn-url", "turn.urls", Kind::List, "URL",
         "TURN server the --turn-secret credentials are for, turn:HOST:PORT[?transport=udp] (repeatable)"},
    Flag{"turn-ttl", "turn.ttlSeconds", Kind::Number, "SECONDS",
         "How long a minted TURN credential is valid (default 86400)"},
    // iceServers: written as URLs, turned into RTCIceServer objects below.
    Flag{"stun", "iceServers", Kind::List, "URL", "STUN server, stun:HOST:PORT (repeatable; replaces the config's)"},
    Flag{"turn", "iceServers", Kind::List, "URL",
         "TURN server, turn:USER:PASS@HOST:PORT[?transport=tcp] (repeatable; replaces the config's)"},
};

std::string jsonString(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char escaped[8];
            g_snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
            out += escaped;
        } else {
            out += c;
        }
    }
    return out + '"';
}

// A non-numeric value goes in as a string, so that the config validator
// answers "must be an integer ..." like it does for the file.
std::string jsonNumber(std::string_view text) {
    const bool digits = !text.empty() && text.size() <= 15 &&
                        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    return digits ? std::string(text) : jsonString(text);
}

// "turn:USER:PASS@HOST:PORT?query" (also "turn://...", "turns:...") as an
// RTCIceServer; "stun:HOST:PORT" as one with just the URL. Credentials may be
// percent-encoded.
std::string iceServerJson(std::string_view url) {
    const std::size_t colon = url.find(':');
    const std::size_t at = url.rfind('@');
    if (colon == std::string_view::npos || at == std::string_view::npos || at < colon) {
        return "{\"urls\":" + jsonString(url) + "}";
    }
    std::string_view scheme = url.substr(0, colon + 1);
    std::string_view userinfo = url.substr(colon + 1, at - colon - 1);
    if (userinfo.starts_with("//")) userinfo.remove_prefix(2);
    const std::size_t split = userinfo.find(':');
    const auto unescape = [](std::string_view part) {
        std::unique_ptr<gchar, decltype(&g_free)> text(g_uri_unescape_string(std::string(part).c_str(), nullptr),
                                                       &g_free);
        return text ? std::string(text.get()) : std::string(part);
    };
    std::string json = "{\"urls\":" + jsonString(std::string(scheme) + std::string(url.substr(at + 1)));
    json += ",\"username\":" + jsonString(unescape(userinfo.substr(0, split)));
    if (split != std::string_view::npos) json += ",\"credential\":" + jsonString(unescape(userinfo.substr(split + 1)));
    return json + "}";
}

const Flag* flagByName(std::string_view name) {
    const auto found = std::find_if(kFlags.begin(), kFlags.end(), [&](const Flag& f) { return name == f.name; });
    return found != kFlags.end() ? &*found : nullptr;
}

// The flag values, in command-line order, collected by the GOption callback
// and applied after the config file.
struct Collected {
    std::vector<std::pair<const Flag*, std::string>> values;
};

gboolean collect(const gchar* optionName, const gchar* value, gpointer data, GError** error) noexcept {
    std::string_view name = optionName;
    while (name.starts_with('-')) name.remove_prefix(1);
    const Flag* flag = flagByName(name);
    if (flag == nullptr) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "unknown option %s", optionName);
        return FALSE;
    }
    try {
        static_cast<Collected*>(data)->values.emplace_back(flag, value != nullptr ? value : "");
    } catch (const std::exception& e) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "%s", e.what());
        return FALSE;
    }
    return TRUE;
}

// The flags as one JSON object for applyConfigJson: {"port":0,"video":{"width":640}}.
std::string flagsJson(const Collected& collected) {
    // Key path -> JSON value texts. A list flag keeps every occurrence (two
    // flags, --stun and --turn, fill the same list); otherwise the last wins.
    std::map<std::string, std::vector<std::string>> values;
    for (const auto& [flag, value] : collected.values) {
        std::vector<std::string>& slot = values[flag->key];
        if (flag->kind != Kind::List) slot.clear();
        switch (flag->kind) {
        case Kind::String: slot.push_back(jsonString(value)); break;
        case Kind::Number: slot.push_back(jsonNumber(value)); break;
        case Kind::Bool: slot.push_back("true"); break;
        case Kind::List:
            slot.push_back(std::string_view(flag->key) == "iceServers" ? iceServerJson(value) : jsonString(value));
            break;
        }
    }
    const auto append = [](std::string& members, const std::string& member) {
        if (!members.empty()) members += ',';
        members += member;
    };
    std::string top;
    std::map<std::string, std::string> groups; // "video" -> its members
    for (const auto& entry : values) {
        const std::string& key = entry.first;
        const std::vector<std::string>& texts = entry.second;
        const bool list = std::any_of(kFlags.begin(), kFlags.end(),
                                      [&](const Flag& f) { return key == f.key && f.kind == Kind::List; });
        std::string value;
        for (const std::string& text : texts) append(value, text);
        if (list) value = "[" + value + "]";
        const std::size_t dot = key.find('.');
        if (dot == std::string::npos) {
            append(top, jsonString(key) + ":" + value);
        } else {
            append(groups[key.substr(0, dot)], jsonString(key.substr(dot + 1)) + ":" + value);
        }
    }
    for (const auto& [group, members] : groups) append(top, jsonString(group) + ":{" + members + "}");
    return "{" + top + "}";
}

// The validator names config keys ("video.width: must be ..."); the user typed flags.
[[noreturn]] void rethrowForFlags(const Error& error) {
    const std::string_view message = error.what();
    const std::string_view key = message.substr(0, message.find_first_of(":["));
    const std::size_t colon = message.find(": ");
    const std::string_view reason = colon == std::string_view::npos ? message : message.substr(colon + 2);
    std::string names;
    for (const Flag& flag : kFlags) {
        if (key == flag.key) names += (names.empty() ? "--" : " or --") + std::string(flag.name);
    }
    throw Error(error.code(), (names.empty() ? std::string("command line") : names) + ": " + std::string(reason));
}

std::string readFile(const std::string& path) {
    gchar* contents = nullptr;
    gsize length = 0;
    GError* error = nullptr;
    if (!g_file_get_contents(path.c_str(), &contents, &length, &error)) {
        std::string message = error->message;
        g_error_free(error);
        throw Error(ErrorCode::BadRequest, message);
    }
    std::string text(contents, length);
    g_free(contents);
    return text;
}

} // namespace

Options parseOptions(int argc, char** argv) {
    Collected collected;
    gchar* configFile = nullptr;
    gchar** rest = nullptr;
    gboolean version = FALSE;
    gchar* tokenRoom = nullptr;
    gchar* tokenName = nullptr;
    gchar* tokenTtl = nullptr;
    gchar* tokenGrants = nullptr;

    std::vector<GOptionEntry> entries;
    entries.push_back({"config", 'c', 0, G_OPTION_ARG_FILENAME, &configFile,
                       "JSON config file (docs/config.md); flags override it", "FILE"});
    entries.push_back({"version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", nullptr});
    for (const Flag& flag : kFlags) {
        entries.push_back({flag.name, 0, flag.kind == Kind::Bool ? gint{G_OPTION_FLAG_NO_ARG} : 0,
                           G_OPTION_ARG_CALLBACK, reinterpret_cast<gpointer>(&collect), flag.help, flag.argument});
    }
    entries.push_back({G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &rest, nullptr, nullptr});
    entries.push_back({});

    std::unique_ptr<GOptionContext, decltype(&g_option_context_free)> context(
        g_option_context_new("[validate FILE... | token --room R --name N] - WebRTC video conference server (MCU)"),
        &g_option_context_free);
    g_option_context_set_summary(context.get(),
                                 "Without a command, serves rooms until SIGINT or SIGTERM; SIGHUP reloads layouts\n"
                                 "(as POST /api/layouts/reload does) into running rooms, and the TLS certificate.\n"
                                 "validate FILE...: checks layout specs (*.json) and pipeline fragments (*.pipeline).\n"
                                 "token --room R --name N [--ttl 1h] [--grants LIST]: prints a room token (a JWT\n"
                                 "signed with tokenSecret) for a join (see --help-token).");
    GOptionGroup* group = g_option_group_new("tessera", "Tessera options", "Show Tessera options", &collected, nullptr);
    g_option_group_add_entries(group, entries.data());
    g_option_context_set_main_group(context.get(), group);
    const std::array tokenEntries = {
        GOptionEntry{"room", 0, 0, G_OPTION_ARG_STRING, &tokenRoom, "The room the token opens", "ROOM"},
        GOptionEntry{"name", 0, 0, G_OPTION_ARG_STRING, &tokenName, "The participant's display name", "NAME"},
        GOptionEntry{"ttl", 0, 0, G_OPTION_ARG_STRING, &tokenTtl, "How long it is valid: 90s, 15m, 1h, 7d (default 1h)",
                     "DURATION"},
        GOptionEntry{"grants", 0, 0, G_OPTION_ARG_STRING, &tokenGrants,
                     "publish, subscribe, admin, comma-separated (default publish,subscribe)", "LIST"},
        GOptionEntry{},
    };
    GOptionGroup* tokenGroup = g_option_group_new(
        "token", "tessera token options (needs tokenSecret or --token-secret):", "Show the options of tessera token",
        nullptr, nullptr);
    g_option_group_add_entries(tokenGroup, tokenEntries.data());
    g_option_context_add_group(context.get(), tokenGroup);
    g_option_context_add_group(context.get(), gst_init_get_option_group());

    GError* error = nullptr;
    // GOption wants to edit argc/argv; parse a copy so the caller's stay intact.
    std::vector<char*> args(argv, argv + argc);
    int count = argc;
    char** vector = args.data();
    const gboolean parsed = g_option_context_parse(context.get(), &count, &vector, &error);
    const std::unique_ptr<gchar, decltype(&g_free)> configPath(configFile, &g_free);
    const std::unique_ptr<gchar*, decltype(&g_strfreev)> remaining(rest, &g_strfreev);
    const std::array<std::unique_ptr<gchar, decltype(&g_free)>, 4> tokenStrings = {
        {{tokenRoom, &g_free}, {tokenName, &g_free}, {tokenTtl, &g_free}, {tokenGrants, &g_free}}};
    if (!parsed) {
        std::string message = error->message;
        g_error_free(error);
        throw Error(ErrorCode::BadRequest, message);
    }

    Options options;
    if (version) {
        options.version = true;
        return options;
    }
    if (configPath) {
        try {
            applyConfigJson(options.config, readFile(configPath.get()));
        } catch (const Error& e) {
            throw Error(e.code(), std::string(configPath.get()) + ": " + e.what());
        }
    }
    if (!collected.values.empty()) {
        try {
            applyConfigJson(options.config, flagsJson(collected));
        } catch (const Error& e) {
            rethrowForFlags(e);
        }
    }
    resolveDefaultDirs(options.config);
    for (gchar** word = rest; word != nullptr && *word != nullptr; ++word) options.command.emplace_back(*word);
    if (tokenRoom != nullptr) options.token.room = tokenRoom;
    if (tokenName != nullptr) options.token.name = tokenName;
    if (tokenTtl != nullptr) options.token.ttl = tokenTtl;
    if (tokenGrants != nullptr) options.token.grants = tokenGrants;
    return options;
}

} // namespace tessera::app
