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
