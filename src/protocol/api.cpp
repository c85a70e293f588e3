// Bodies of the HTTP API (docs/protocol.md "HTTP").
#include <string>

#include <nlohmann/json.hpp>

#include "parse_json.h"
#include "tessera/protocol/api.h"
#include "tessera/protocol/messages.h"

namespace tessera::api {
namespace {

// Output keeps insertion order: the fields read in the order docs/protocol.md lists them.
using OutJson = nlohmann::ordered_json;
using Json = nlohmann::json;

// A layout spec is a few levels deep. The spec object is re-serialised before
// it is parsed, and dump() recurses once per level: a bound keeps a hostile
// body of nested brackets from exhausting the stack.
constexpr int kMaxDepth = 32;

// Names reach us from clients and rooms as bytes; a bad byte must not turn a
// status reply into an exception.
std::string dump(const OutJson& json) { return json.dump(-1, ' ', false, OutJson::error_handler_t::replace); }

[[noreturn]] void fail(std::string_view why) { throw Error(ErrorCode::BadRequest, "layout: " + std::string(why)); }

OutJson liveJson(const std::vector<LiveTargetSummary>& targets) {
    OutJson json = OutJson::array();
    for (const LiveTargetSummary& t : targets) {
        OutJson item = OutJson::object();
        item["id"] = t.id;
        item["kind"] = t.kind;
        item["url"] = t.url;
        item["state"] = t.state;
        item["retry"] = t.retry;
        item["failures"] = t.failures;
        if (!t.reason.empty()) item["reason"] = t.reason;
        if (t.retryInSeconds) item["retryInSeconds"] = *t.retryInSeconds;
        json.push_back(std::move(item));
    }
    return json;
}

} // namespace

std::string serialize(const std::vector<RoomSummary>& rooms) {
    OutJson json = OutJson::array();
    for (const RoomSummary& room : rooms) {
        OutJson item = OutJson::object();
        item["room"] = room.room;
        item["participants"] = room.participants;
        item["layout"] = room.layout;
        item["recording"] = room.recording;
        item["viewers"] = room.viewers;
        json.push_back(std::move(item));
    }
    return dump(json);
}

std::string serialize(const RoomDetail& room) {
    OutJson json = OutJson::object();
    json["room"] = room.room;
    json["layout"] = room.layout;
    json["recording"] = room.recording;
    json["participants"] = OutJson::array();
    for (const ParticipantSummary& p : room.participants) {
        OutJson item = OutJson::object();
        item["id"] = p.id;
        item["name"] = p.name;
        item["tier"] = p.tier;
        // Video codecs from the participant's side; null where it sends or receives no video.
        item["sendCodec"] = p.sendCodec.empty() ? OutJson(nullptr) : OutJson(p.sendCodec);
        item["receiveCodec"] = p.receiveCodec.empty() ? OutJson(nullptr) : OutJson(p.receiveCodec);
        item["receiveOnly"] = p.receiveOnly;
        item["bitrateIn"] = p.bitrateIn;
        item["bitrateOut"] = p.bitrateOut;
        item["packetsLost"] = p.packetsLost;
        item["connected"] = p.connected;
        if (p.estimatedBps) item["estimatedBps"] = *p.estimatedBps;
        if (p.decodedSize) item["decodedSize"] = {{"width", p.decodedSize->width}, {"height", p.decodedSize->height}};
        if (p.sendSize) {
            item["sendSize"] = {{"active", p.sendSize->active},
                                {"width", p.sendSize->width},
                                {"height", p.sendSize->height},
                                {"maxBitrate", p.sendSize->maxBitrate}};
        }
        if (!p.dataChannels.empty()) item["dataChannels"] = p.dataChannels;
        json["participants"].push_back(std::move(item));
    }
    // A viewer sends nothing: only what it receives.
    json["viewers"] = OutJson::array();
    for (const ParticipantSummary& v : room.viewers) {
        OutJson item = OutJson::object();
        item["id"] = v.id;
        item["name"] = v.name;
        item["tier"] = v.tier;
        item["receiveCodec"] = v.receiveCodec.empty() ? OutJson(nullptr) : OutJson(v.receiveCodec);
        item["bitrateOut"] = v.bitrateOut;
        item["connected"] = v.connected;
        if (v.estimatedBps) item["estimatedBps"] = *v.estimatedBps;
        json["viewers"].push_back(std::move(item));
    }
    if (!room.recordingFile.empty()) json["recordingFile"] = room.recordingFile;
    if (!room.recordingError.empty()) json["recordingError"] = room.recordingError;
    if (!room.live.empty()) json["live"] = liveJson(room.live);
    return dump(json);
}

bool isRtmpUrl(std::string_view url) {
    if (url.size() > kMaxRtmpUrl) return false;
    std::string_view rest;
    if (url.starts_with("rtmp://")) {
        rest = url.substr(7);
    } else if (url.starts_with("rtmps://")) {
        rest = url.substr(8);
    } else {
        return false;
    }
    // Printable ASCII without spaces: nothing that could end a header, a
    // log line or a property early.
    for (const char c : url)
        if (c <= ' ' || c > '~') return false;
    const std::size_t slash = rest.find('/');
    // A host, then an application (rtmp2sink needs one).
    return slash != 0 && slash != std::string_view::npos && slash + 1 < rest.size() && rest[slash + 1] != '/';
}

std::string redactRtmpUrl(std::string_view url) {
    const std::size_t scheme = url.find("://");
    const std::size_t host = scheme == std::string_view::npos ? 0 : scheme + 3;
    const std::size_t query = url.find('?', host);
    const std::string_view path = url.substr(0, query);
    const std::size_t firstSlash = path.find('/', host);
    const std::size_t lastSlash = path.rfind('/');
    // Only the application is kept when the URL has no separate stream key.
    if (firstSlash == std::string_view::npos || lastSlash == firstSlash)
        return std::string(path) + (query != std::string_view::npos ? "?***" : "");
    return std::string(path.substr(0, lastSlash)) + "/***";
}

LiveStart parseLiveStart(std::string_view body) {
    const Json json = parseJson(body, "body");
    if (!json.is_object()) throw Error(ErrorCode::BadRequest, "body: must be a JSON object");
    LiveStart request;
    const auto url = [](const Json& value, const std::string& path) {
        if (!value.is_string() || !isRtmpUrl(value.get_ref<const std::string&>())) {
            throw Error(ErrorCode::BadRequest, path +
                                                   ": must be an rtmp:// or rtmps:// URL with a host and an "
                                                   "application, without spaces, of at most " +
                                                   std::to_string(kMaxRtmpUrl) + " characters");
        }
        return value.get<std::string>();
    };
    for (const auto& [key, value] : json.items()) {
        if (key == "hls") {
            if (!value.is_boolean()) throw Error(ErrorCode::BadRequest, "hls: must be true or false");
            request.hls = value.get<bool>();
        } else if (key == "retry") {
            if (!value.is_boolean()) throw Error(ErrorCode::BadRequest, "retry: must be true or false");
            request.retry = value.get<bool>();
        } else if (key == "rtmp") {
            if (value.is_array()) {
                if (value.size() > 16) throw Error(ErrorCode::BadRequest, "rtmp: at most 16 URLs");
                for (std::size_t i = 0; i < value.size(); ++i)
                    request.rtmp.push_back(url(value[i], "rtmp[" + std::to_string(i) + "]"));
            } else {
                request.rtmp.push_back(url(value, "rtmp"));
            }
        } else {
            throw Error(ErrorCode::BadRequest, key.substr(0, 64) + ": unknown key (hls, rtmp, retry)");
        }
    }
    if (!request.hls && request.rtmp.empty())
        throw Error(ErrorCode::BadRequest, "body: names no target (\"hls\": true or \"rtmp\": URL)");
    return request;
}

std::string serializeLive(const std::vector<LiveTargetSummary>& targets) {
    OutJson json = OutJson::object();
    json["live"] = liveJson(targets);
    return dump(json);
}

RecordingStart parseRecordingStart(std::string_view body) {
    RecordingStart request;
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return request;
    const Json json = parseJson(body, "body");
    if (!json.is_object()) throw Error(ErrorCode::BadRequest, "body: must be a JSON object");
    if (const auto it = json.find("format"); it != json.end()) {
        if (!it->is_string() || !isRecordingFormat(it->get_ref<const std::string&>())) {
            throw Error(ErrorCode::BadRequest, "format: must be \"mkv\", \"webm\" or \"mp4\"");
        }
        request.format = it->get<std::string>();
    }
    return request;
}

std::string serializeRecordingStarted(const std::string& file) {
    OutJson json = OutJson::object();
    json["file"] = file;
    return dump(json);
}

std::string serializeRecordingStopped(const std::string& file, double duration) {
    OutJson json = OutJson::object();
    json["file"] = file;
    json["duration"] = duration;
    return dump(json);
}

std::string serialize(const RecordingMetadata& m) {
    OutJson json = OutJson::object();
    json["room"] = m.room;
    json["format"] = m.format;
    json["file"] = m.file;
    json["state"] = m.state;
    json["started"] = m.started;
    json["startedUnixMs"] = m.startedUnixMs;
    if (!m.stopped.empty()) json["stopped"] = m.stopped;
    if (m.duration) json["duration"] = *m.duration;
    if (!m.error.empty()) json["error"] = m.error;
    json["segments"] = OutJson::array();
    for (const auto& segment : m.segments) {
        json["segments"].push_back(OutJson{{"file", segment.file}, {"offset", segment.offset}});
    }
    json["timeline"] = OutJson::array();
    for (const auto& e : m.timeline) {
        json["timeline"].push_back(OutJson{{"offset", e.offset}, {"event", e.event}, {"id", e.id}, {"name", e.name}});
    }
    return json.dump(2, ' ', false, OutJson::error_handler_t::replace) + "\n";
}

std::string serializeLayoutNames(const std::vector<std::string>& names) {
    OutJson json = OutJson::object();
    json["layouts"] = names;
    return dump(json);
}

std::string serializeError(ErrorCode code, std::string_view message) {
    OutJson json = OutJson::object();
    json["error"] = toString(code);
    json["message"] = message;
    return dump(json);
}

LayoutRequest parseLayoutRequest(std::string_view body) {
    const Json json = parseJson(body, "body", [](int depth, Json::parse_event_t, Json&) {
        if (depth > kMaxDepth) throw Error(ErrorCode::BadRequest, "body: nested deeper than 32 levels");
        return true;
    });
    if (!json.is_object()) throw Error(ErrorCode::BadRequest, "body: must be a JSON object");
    const auto it = json.find("layout");
    if (it == json.end()) fail("missing");

    LayoutRequest request;
    if (it->is_string()) {
        // A layout name is a file stem in the layouts directory: the room-name
        // rule keeps it from being a path.
        if (!protocol::isValidRoomName(it->get_ref<const std::string&>())) {
            fail("must be 1-64 characters of [A-Za-z0-9_-]");
        }
        request.name = it->get<std::string>();
    } else if (it->is_object()) {
        try {
            request.spec = protocol::parseLayoutSpec(it->dump());
        } catch (const Error& e) {
            throw Error(e.code(), "layout: " + std::string(e.what()));
        }
    } else {
        fail("must be a layout name or a layout spec object");
    }
    return request;
}

} // namespace tessera::api
