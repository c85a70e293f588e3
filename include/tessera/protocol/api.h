#pragma once
// Bodies of the HTTP API (docs/protocol.md "HTTP"). The protocol module owns the JSON.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/protocol/config.h"
#include "tessera/protocol/error.h"
#include "tessera/protocol/layout_spec.h"
#include "tessera/protocol/messages.h"

namespace tessera::api {

struct ParticipantSummary {
    std::string id;
    std::string name;
    std::string tier = "high";
    bool receiveOnly = false;
    std::uint64_t bitrateIn = 0;  // bits/s
    std::uint64_t bitrateOut = 0; // bits/s
    std::uint64_t packetsLost = 0;
    bool connected = false;                    // ICE and DTLS up: media flows to and from it
    std::string sendCodec;                     // the video codec it sends ("vp8", "h264", "vp9"); "": none
    std::string receiveCodec;                  // the video codec it receives the composite in; "": none
    std::optional<std::uint64_t> estimatedBps; // the link's bandwidth estimate; absent until known
    // The size the server decodes its camera at (the decoder's output);
    // absent until a frame was decoded.
    std::optional<protocol::VideoSize> decodedSize;
    // What its camera was last asked to send (`send-size`); absent until asked.
    std::optional<protocol::SendSize> sendSize;
    // The labels of the data channels it opened with the server; absent when none.
    std::vector<std::string> dataChannels = {};
};

struct RoomSummary {
    std::string room;
    unsigned participants = 0;
    std::string layout;
    bool recording = false;
    unsigned viewers = 0; // WHEP viewers: no members, not in `participants`
};

// One live target of a room (docs/protocol.md, "Live streaming").
struct LiveTargetSummary {
    std::string id;    // "hls", or "rtmp-N"
    std::string kind;  // "hls" or "rtmp"
    std::string url;   // hls: the playlist's path on this server; rtmp: the URL with its stream key hidden
    std::string state; // "running", "retrying" (waiting to reconnect) or "failed" (stopped for good)
    bool retry = false;
    std::string reason;                   // why it failed last; empty while it never failed
    std::optional<double> retryInSeconds; // retrying: when the next attempt starts
    unsigned failures = 0;                // how often it failed since it was started
};

struct RoomDetail {
    std::string room;
    std::string layout;
    bool recording = false;
    std::vector<ParticipantSummary> participants;
    std::string recordingFile;           // while recording: the (first) file; serialised when non-empty
    std::string recordingError;          // the last recording failure in this room; serialised when non-empty
    std::vector<LiveTargetSummary> live; // its live targets; serialised when non-empty
    // WHEP viewers, in arrival order: no members (not in `participants`,
    // no tile); sendCodec, bitrateIn, decodedSize and sendSize say nothing.
    std::vector<ParticipantSummary> viewers;
};

// POST /api/rooms/{room}/live: {"hls": true, "rtmp": URL or [URL, ...], "retry": bool}.
struct LiveStart {
    bool hls = false;
    std::vector<std::string> rtmp; // checked: isRtmpUrl
    bool retry = false;
};
// The longest RTMP URL taken (platform URLs with their keys are ~100-200 characters).
inline constexpr std::size_t kMaxRtmpUrl = 1024;
// rtmp:// or rtmps://, a host, an application path; printable ASCII only,
// no spaces, at most kMaxRtmpUrl characters.
bool isRtmpUrl(std::string_view url);
// The URL without its stream key (the last path segment) and query, for
// the API and logs: "rtmp://host/app/***".
std::string redactRtmpUrl(std::string_view url);

// POST /api/rooms/{room}/recording: an empty body or {"format": "mkv"|"webm"|"mp4"}.
struct RecordingStart {
    std::optional<std::string> format; // nullopt: the configured default
};

// The JSON file beside a recording (docs/recording.md): rewritten on every
// change, so it is current after a crash too.
struct RecordingMetadata {
    struct Segment {
        std::string file;
        double offset = 0; // seconds into the recording where the file starts
    };
    struct Event {
        double offset = 0; // seconds since the recording started
        std::string event; // "present" (there at the start), "join", "leave"
        std::string id;
        std::string name;
    };
    std::string room;
    std::string format;
    std::string file;                // the first (or only) media file
    std::string state = "recording"; // "recording", "finished", "failed"
    std::string started;             // ISO 8601 UTC
    std::int64_t startedUnixMs = 0;
    std::string stopped;            // ISO 8601 UTC; empty while recording
    std::optional<double> duration; // seconds of media, once stopped
    std::string error;              // why it failed; empty otherwise
    std::vector<Segment> segments;
    std::vector<Event> timeline;
};

// PUT /api/rooms/{room}/layout: {"layout": "name"} or {"layout": {spec}}.
struct LayoutRequest {
    std::optional<std::string> name;
    std::optional<protocol::LayoutSpec> spec;
};

std::string serialize(const std::vector<RoomSummary>& rooms);
std::string serialize(const RoomDetail& room);
// POST /api/layouts/reload: {"layouts": [names]}
std::string serializeLayoutNames(const std::vector<std::string>& names);
// {"error": code, "message": text}
std::string serializeError(ErrorCode code, std::string_view message);
// Throws Error(BadRequest) naming the problem (for a spec: the field).
LayoutRequest parseLayoutRequest(std::string_view body);
// Throws Error(BadRequest) for a body that is not empty or a JSON object, or
// an unknown format.
RecordingStart parseRecordingStart(std::string_view body);
// {"file": path}
std::string serializeRecordingStarted(const std::string& file);
// {"file": path, "duration": seconds}
std::string serializeRecordingStopped(const std::string& file, double duration);
std::string serialize(const RecordingMetadata& metadata);
// Throws Error(BadRequest) for a body that is not a JSON object, names no
// target, or holds a bad URL, an unknown key or a wrong type.
LiveStart parseLiveStart(std::string_view body);
// {"live": [targets]}
std::string serializeLive(const std::vector<LiveTargetSummary>& targets);

} // namespace tessera::api
