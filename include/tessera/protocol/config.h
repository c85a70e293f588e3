#pragma once
// Server configuration: embedded defaults, overridden by a JSON config file,
// overridden by command-line flags. Every key is documented in docs/config.md.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/policy/tiers.h"
#include "tessera/protocol/messages.h"

namespace tessera {

struct VideoConfig {
    unsigned width = 1280; // composite canvas, pixels
    unsigned height = 720;
    unsigned framerate = 30;      // frames/s
    unsigned bitrate = 1'500'000; // bits/s of the encoded composite
    // Preference order: each participant sends and receives the first of these
    // its offer carries (protocol::planOffer); each selects
    // pipelines/{decode,encode,pay}-<codec>.pipeline. Distinct, from kVideoCodecs.
    std::vector<std::string> codecs = {"vp8", "h264", "vp9"};
    unsigned tileWidth = 640; // every input is normalised to this size before the compositor
    unsigned tileHeight = 360;
    // The largest key frame a tier's encoder makes, in milliseconds of the
    // tier's own bit rate (vp8/vp9 max-intra-bitrate): 150 ms of the 150
    // kbit/s low tier is 2.8 KB, which passes a 300 kbit/s link with a
    // 200 ms queue; an uncapped key frame is several times larger and never
    // arrives whole. 0: no cap.
    unsigned keyFrameMaxMs = 150;
    // Quality tiers as configured (any order); empty: effectiveTiers() derives them.
    std::vector<policy::Tier> tiers;
};

// The video codecs a server can decode and encode, by config name. (AV1 is
// not among them: GStreamer 1.22 on Debian has no AV1 RTP depayloader.)
inline constexpr std::string_view kVideoCodecs[] = {"vp8", "h264", "vp9"};
inline bool isVideoCodec(std::string_view codec) {
    for (std::string_view known : kVideoCodecs)
        if (codec == known) return true;
    return false;
}

// The tiers a room encodes, highest bit rate first (policy::sortedTiers):
// `video.tiers`, or policy::defaultTiers() of the canvas at video.bitrate.
std::vector<policy::Tier> effectiveTiers(const VideoConfig& video);

struct AudioConfig {
    unsigned bitrate = 64'000; // bits/s per Opus encode
    // K: the current speakers who get a private mix without their own voice
    // (and its own encode); everyone else shares one encode of the full mix.
    unsigned mixMinusSpeakers = 3;
};

// Recording a room's mix to a file (docs/recording.md).
struct RecordingConfig {
    std::string dir = "recordings"; // where files go; relative to the working directory
    std::string format = "mkv";     // "mkv", "webm" or "mp4": selects pipelines/record-<format>.pipeline
    bool autoRecord = false;        // config key "auto": record every room from its creation
    unsigned width = 1280;          // the recording's own canvas, pixels (scaled from the composite)
    unsigned height = 720;
    unsigned bitrate = 2'000'000;    // bits/s of the recording's video
    unsigned audioBitrate = 128'000; // bits/s of the recording's Opus
    unsigned segmentSeconds = 0;     // > 0: a new file every so many seconds (at a key frame)
    std::uint64_t segmentBytes = 0;  // > 0: a new file when one reaches this size
};

// The recording formats, each a pipelines/record-<format>.pipeline.
inline bool isRecordingFormat(std::string_view format) {
    return format == "mkv" || format == "webm" || format == "mp4";
}

// Streaming a room's mix live to HLS and RTMP targets (docs/config.md "Live").
struct LiveConfig {
    std::string dir = "live"; // HLS: a directory per room below it; relative to the working directory
    unsigned maxTargets = 4;  // live targets one room may have at once (HLS and each RTMP URL)
    unsigned width = 1280;    // the stream's own canvas, pixels (scaled from the composite)
    unsigned height = 720;
    unsigned bitrate = 2'000'000;    // bits/s of the stream's H.264
    unsigned audioBitrate = 128'000; // bits/s of the stream's AAC
    unsigned segmentSeconds = 2;     // HLS segment length (and the key-frame interval)
    unsigned playlistLength = 6;     // HLS segments in the playlist; two more are kept on disk
    unsigned retryMaxSeconds = 60;   // longest wait between reconnects of a target started with "retry"
};

// HTTPS and WSS on the listen port (docs/security.md). Both or neither.
struct TlsConfig {
    std::string cert; // PEM certificate (chain) file; empty: plain HTTP
    std::string key;  // PEM private key file
};

// Bounds on what one client may cost the server (docs/config.md "Limits").
// 0 turns a limit off.
struct LimitsConfig {
    unsigned maxRooms = 100;                       // a join that would open one more room gets "server-full"
    unsigned maxParticipants = 500;                // on the whole server; the next join gets "server-full"
    unsigned joinsPerAddressPerMinute = 60;        // joins from one client address; more get "rate-limited"
    unsigned connectionsPerAddress = 50;           // open WebSockets per remote address; more get HTTP 429
    unsigned messagesPerSecond = 20;               // signaling frames per connection, sustained ...
    unsigned messageBurst = 50;                    // ... and at once; more get "rate-limited"
    unsigned joinTimeoutSeconds = 20;              // join to offer ("timeout"), and answer to ICE connected
    unsigned maxFrameBytes = 1024 * 1024;          // a larger WebSocket message closes the connection (1009)
    unsigned dataBytesPerSecond = 8 * 1024 * 1024; // data-channel bytes one sender may relay, sustained ...
    unsigned dataBurstBytes = 16 * 1024 * 1024;    // ... and at once; then its transfer is cancelled
    unsigned dataBufferedBytes = 4 * 1024 * 1024;  // waiting to go to one receiver; then its transfers are dropped
    unsigned maxCanvasPixels = 3840 * 2160;        // a layout's own canvas; a larger one is refused (400)
    unsigned viewersPerRoom = 100;                 // WHEP viewers of one room; more get 409 (room-full)
    unsigned viewersPerAddress = 20;               // WHEP viewers from one client address; more get 429
};

// TURN REST credentials minted per participant (docs/security.md "TURN").
struct TurnConfig {
    std::string secret;            // coturn's static-auth-secret; empty: no minted credentials
    std::vector<std::string> urls; // turn:/turns: URLs the credentials are for
    unsigned ttlSeconds = 86400;   // how long a credential is valid from the join
};

struct Config {
    std::string host = "127.0.0.1";   // listen address
    std::uint16_t port = 8080;        // listen port; 0 picks a free one (printed at start)
    std::string wwwDir;               // web client; empty: resolveDefaultDirs
    std::string layoutsDir;           // layout specs; empty: resolveDefaultDirs
    std::string pipelinesDir;         // gst-launch fragments; empty: resolveDefaultDirs
    std::string logLevel = "warning"; // "error", "warning", "info" or "debug": what tessera logs
    std::string defaultLayout = "grid";
    unsigned maxParticipants = 25;           // per room; the next join gets "room-full"
    std::string joinToken;                   // non-empty: join needs this token
    std::string tokenSecret;                 // non-empty: join needs a room token (JWT) signed with it
    std::string adminToken;                  // non-empty: /api/* needs "Authorization: Bearer <token>"
    bool metricsRequireToken = false;        // /metrics needs the admin token too
    std::vector<std::string> allowedOrigins; // normalised; besides same-origin (protocol/origin.h)
    TlsConfig tls;
    std::vector<protocol::IceServer> iceServers; // sent in "joined"; the server uses the first stun:/turn: ones too
    TurnConfig turn;                             // minted credentials for these URLs replace static ones
    std::vector<std::string> iceAddresses;       // local IPs ICE may use; empty: all
    unsigned minRtpPort = 0;                     // 0: any
    unsigned maxRtpPort = 0;
    unsigned jitterLatencyMs = 100; // webrtcbin jitter buffer, ms (docs/config.md)
    VideoConfig video;
    AudioConfig audio;
    RecordingConfig recording;
    LiveConfig live;
    LimitsConfig limits;
};

// Applies the JSON object in `text` on top of `config`. Unknown keys and
// wrong types throw Error(BadRequest) naming the key path (e.g. "video.width").
void applyConfigJson(Config& config, std::string_view text);

// The log levels of `logLevel`, least to most verbose.
inline bool isLogLevel(std::string_view level) {
    return level == "error" || level == "warning" || level == "info" || level == "debug";
}

// Fills empty directory keys with the data the build was configured with:
// datadir/tessera/{www,layouts,pipelines} when installed, the source tree's
// data/www, data/layouts and pipelines in a build made to run from the
// checkout (meson -Dsource_data=true, as scripts/build does).
void resolveDefaultDirs(Config& config);

} // namespace tessera
