// The signaling messages of docs/protocol.md: JSON text frames to typed structs
// and back. Every rejection is Error(BadRequest) whose message starts with
// the path of the offending field ("join.room: ...").
#include <algorithm>
#include <climits>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "parse_json.h"
#include "tessera/protocol/messages.h"

namespace tessera::protocol {
namespace {

// Parsing uses std::map objects: an ordered_map looks keys up linearly, so a
// 64 KiB frame of distinct keys would cost quadratic time to parse.
using Json = nlohmann::json;
// Output keeps insertion order so that "type" comes first.
using OutJson = nlohmann::ordered_json;

constexpr std::size_t kMaxNameChars = 64;
constexpr std::size_t kMaxRoomChars = 64;
constexpr std::size_t kMaxEchoBytes = 32;

[[noreturn]] void fail(const std::string& path, std::string_view why) {
    throw Error(ErrorCode::BadRequest, path + ": " + std::string(why));
}

// A prefix of client-supplied text short enough to quote in an error reply,
// cut on a UTF-8 character boundary.
std::string excerpt(std::string_view text) {
    if (text.size() <= kMaxEchoBytes) return std::string(text);
    std::size_t end = kMaxEchoBytes;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    return std::string(text.substr(0, end)) + "...";
}

// Decodes strictly: no overlong forms, surrogates or values past U+10FFFF.
// The JSON lexer already rejects ill-formed strings; decoding is needed
// anyway to count characters and find control characters.
std::optional<std::u32string> decodeUtf8(std::string_view text) {
    std::u32string out;
    for (std::size_t i = 0; i < text.size();) {
        const auto lead = static_cast<unsigned char>(text[i]);
        // The lead byte gives the sequence length, its payload bits and the
        // smallest code point that needs that length (anything less is overlong).
        std::size_t length = 0;
        char32_t point = 0;
        char32_t smallest = 0;
        if (lead < 0x80) {
            length = 1;
            point = lead;
        } else if ((lead & 0xE0) == 0xC0) {
            length = 2;
            point = lead & 0x1Fu;
            smallest = 0x80;
        } else if ((lead & 0xF0) == 0xE0) {
            length = 3;
            point = lead & 0x0Fu;
            smallest = 0x800;
        } else if ((lead & 0xF8) == 0xF0) {
            length = 4;
            point = lead & 0x07u;
            smallest = 0x10000;
        } else {
            return std::nullopt;
        }
        if (text.size() - i < length) return std::nullopt;
        for (std::size_t k = 1; k < length; ++k) {
            const auto byte = static_cast<unsigned char>(text[i + k]);
            if ((byte & 0xC0) != 0x80) return std::nullopt;
            point = (point << 6) | (byte & 0x3Fu);
        }
        if (point < smallest || point > 0x10FFFF || (point >= 0xD800 && point <= 0xDFFF)) return std::nullopt;
        out.push_back(point);
        i += length;
    }
    return out;
}

// Unicode category Cc: C0 controls, DEL and C1 controls.
bool isControl(char32_t point) { return point < 0x20 || (point >= 0x7F && point <= 0x9F); }

// What is wrong with a display name, or nullptr.
const char* nameProblem(std::string_view name) {
    const auto points = decodeUtf8(name);
    if (!points) return "must be valid UTF-8";
    if (points->empty() || points->size() > kMaxNameChars) return "must be 1-64 characters";
    if (std::any_of(points->begin(), points->end(), isControl)) return "must not contain control characters";
    return nullptr;
}

void checkName(const std::string& path, const std::string& name) {
    if (const char* problem = nameProblem(name)) fail(path, problem);
}

// The members of one JSON object, named in error messages by `path`.
class Fields {
public:
    Fields(const Json& object, std::string path) : m_object(object), m_path(std::move(path)) {
        if (!object.is_object()) fail(m_path, "must be an object");
    }

    std::string path(std::string_view key) const { return m_path + "." + std::string(key); }

    const Json& required(std::string_view key) const {
        const auto it = m_object.find(key);
        if (it == m_object.end()) fail(path(key), "missing");
        return *it;
    }

    // Absent and null both mean "not given": JavaScript clients send either.
    const Json* optional(std::string_view key) const {
        const auto it = m_object.find(key);
        return it == m_object.end() || it->is_null() ? nullptr : &*it;
    }

    std::string string(std::string_view key) const { return asString(required(key), key); }

    std::optional<std::string> optionalString(std::string_view key) const {
        const Json* value = optional(key);
        if (!value) return std::nullopt;
        return asString(*value, key);
    }

    const Json& array(std::string_view key) const {
        const Json& value = required(key);
        if (!value.is_array()) fail(path(key), "must be an array");
        return value;
    }

private:
    std::string asString(const Json& value, std::string_view key) const {
        if (!value.is_string()) fail(path(key), "must be a string");
        return value.get<std::string>();
    }

    const Json& m_object; // Borrowed; outlives this.
    std::string m_path;
};

std::string itemPath(const std::string& arrayPath, std::size_t index) {
    return arrayPath + "[" + std::to_string(index) + "]";
}

// Non-negative integer literals are the only ones nlohmann stores unsigned;
// floats such as 1.5 or 1e3 are rejected rather than truncated.
std::optional<std::uint64_t> unsignedValue(const Json& value) {
    if (!value.is_number_unsigned()) return std::nullopt;
    return value.get<std::uint64_t>();
}

Json parseFrame(std::string_view frame) {
    if (frame.size() > kMaxFrameBytes) throw Error(ErrorCode::BadRequest, "frame exceeds 64 KiB");
    const Json json = parseJson(frame, "message");
    if (!json.is_object()) fail("message", "must be a JSON object");
    return json;
}

std::string messageType(const Json& json) {
    const auto it = json.find("type");
    if (it == json.end()) fail("type", "missing");
    if (!it->is_string()) fail("type", "must be a string");
    return it->get<std::string>();
}

[[noreturn]] void unknownType(const std::string& type) {
    fail("type", "unknown message type \"" + excerpt(type) + "\"");
}

// Shared by both directions: `candidate` is an RTCIceCandidateInit or null.
std::optional<IceCandidate> parseCandidate(const Fields& message) {
    const Json& value = message.required("candidate");
    const std::string path = message.path("candidate");
    if (value.is_null()) return std::nullopt;
    if (!value.is_object()) fail(path, "must be an object or null");
    const Fields fields(value, path);

    IceCandidate candidate;
    candidate.candidate = fields.string("candidate");
    candidate.sdpMid = fields.optionalString("sdpMid");
    if (const Json* index = fields.optional("sdpMLineIndex")) {
        const auto number = unsignedValue(*index);
        if (!number || *number > UINT_MAX) fail(fields.path("sdpMLineIndex"), "must be a non-negative integer or null");
        candidate.sdpMLineIndex = static_cast<unsigned>(*number);
    }
    // Browsers signal end of candidates with an empty candidate string too.
    if (candidate.candidate.empty()) return std::nullopt;
    if (!candidate.sdpMid && !candidate.sdpMLineIndex) fail(path, "needs sdpMid or sdpMLineIndex");
    return candidate;
}

Join parseJoin(const Fields& fields) {
    Join join;
    join.room = fields.string("room");
    if (!isValidRoomName(join.room)) fail(fields.path("room"), "must be 1-64 characters of [A-Za-z0-9_-]");
    join.name = fields.string("name");
    checkName(fields.path("name"), join.name);
    join.token = fields.optionalString("token");
    if (const Json* bitrate = fields.optional("maxBitrate")) {
        const auto number = unsignedValue(*bitrate);
        if (!number || *number == 0 || *number > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            fail(fields.path("maxBitrate"), "must be a positive integer (bits/s)");
        }
        join.maxBitrate = static_cast<std::int64_t>(*number);
    }
    if (const Json* receiveOnly = fields.optional("receiveOnly")) {
        if (!receiveOnly->is_boolean()) fail(fields.path("receiveOnly"), "must be a boolean");
        join.receiveOnly = receiveOnly->get<bool>();
    }
    return join;
}

bool requiredBool(const Fields& fields, const char* key) {
    const Json& value = fields.required(key);
    if (!value.is_boolean()) fail(fields.path(key), "must be a boolean");
    return value.get<bool>();
}

// The client side of `send-size`: sizes are bounded as canvases are
// (a tile is never larger than one), the bit rate as `join`'s.
SendSize parseSendSize(const Fields& fields) {
    SendSize size;
    size.source = fields.string("source");
    if (size.source != "camera" && size.source != "screen") fail(fields.path("source"), "must be camera or screen");
    size.active = requiredBool(fields, "active");
    auto bounded = [&](std::string_view key, std::uint64_t most) {
        const auto number = unsignedValue(fields.required(key));
        if (!number || *number > most) fail(fields.path(key), "must be an integer from 0 to " + std::to_string(most));
        return *number;
    };
    constexpr std::uint64_t kMaxSide = 1u << 15;
    size.width = static_cast<unsigned>(bounded("width", kMaxSide));
    size.height = static_cast<unsigned>(bounded("height", kMaxSide));
    size.maxBitrate = static_cast<std::int64_t>(bounded("maxBitrate", std::numeric_limits<std::int64_t>::max()));
    return size;
}

// The client side of `on-screen`: two arrays of ids, no id in both (the
// frame's 64 KiB bound the lists' length).
OnScreen parseOnScreen(const Fields& fields) {
    OnScreen onScreen;
    const auto ids = [&](std::string_view key) {
        const Json& array = fields.array(key);
        std::vector<std::string> out;
        for (std::size_t i = 0; i < array.size(); ++i) {
            if (!array[i].is_string()) fail(itemPath(fields.path(key), i), "must be a string");
            out.push_back(array[i].get<std::string>());
        }
        return out;
    };
    onScreen.shown = ids("shown");
    onScreen.hidden = ids("hidden");
    for (const auto& id : onScreen.hidden)
        if (std::find(onScreen.shown.begin(), onScreen.shown.end(), id) != onScreen.shown.end())
            fail(fields.path("hidden"), "\"" + excerpt(id) + "\" is also shown");
    return onScreen;
}

ErrorCode parseErrorCode(const Fields& fields) {
    static constexpr ErrorCode kCodes[] = {ErrorCode::BadRequest, ErrorCode::Unauthorized, ErrorCode::RoomFull,
                                           ErrorCode::NotJoined,  ErrorCode::NotFound,     ErrorCode::Conflict,
                                           ErrorCode::Internal,   ErrorCode::Forbidden,    ErrorCode::RateLimited,
                                           ErrorCode::Timeout,    ErrorCode::ServerFull};
    const std::string code = fields.string("code");
    for (ErrorCode candidate : kCodes) {
        if (toString(candidate) == code) return candidate;
    }
    fail(fields.path("code"), "unknown error code \"" + excerpt(code) + "\"");
}

std::vector<ParticipantInfo> parseParticipants(const Fields& fields) {
    const Json& array = fields.array("participants");
    std::vector<ParticipantInfo> participants;
    for (std::size_t i = 0; i < array.size(); ++i) {
        const Fields item(array[i], itemPath(fields.path("participants"), i));
        participants.push_back({item.string("id"), item.string("name")});
    }
    return participants;
}

// RTCIceServer: `urls` is one URL or a list of them.
std::vector<IceServer> parseIceServers(const Fields& fields) {
    const Json& array = fields.array("iceServers");
    std::vector<IceServer> servers;
    for (std::size_t i = 0; i < array.size(); ++i) {
        const Fields item(array[i], itemPath(fields.path("iceServers"), i));
        IceServer server;
        const Json& urls = item.required("urls");
        if (urls.is_string()) {
            server.urls.push_back(urls.get<std::string>());
        } else if (urls.is_array() &&
                   std::all_of(urls.begin(), urls.end(), [](const Json& u) { return u.is_string(); })) {
            server.urls = urls.get<std::vector<std::string>>();
        } else {
            fail(item.path("urls"), "must be a string or an array of strings");
        }
        server.username = item.optionalString("username").value_or("");
        server.credential = item.optionalString("credential").value_or("");
        servers.push_back(std::move(server));
    }
    return servers;
}

OutJson messageJson(std::string_view type) {
    OutJson json = OutJson::object();
    json["type"] = type;
    return json;
}

OutJson candidateJson(const std::optional<IceCandidate>& candidate) {
    if (!candidate) return nullptr;
    OutJson json = OutJson::object();
    json["candidate"] = candidate->candidate;
    json["sdpMid"] = candidate->sdpMid ? OutJson(*candidate->sdpMid) : OutJson(nullptr);
    json["sdpMLineIndex"] = candidate->sdpMLineIndex ? OutJson(*candidate->sdpMLineIndex) : OutJson(nullptr);
    return json;
}

// Text that reached us as bytes (an SDP from GStreamer, a reason string) may
// not be valid UTF-8; replacing bad bytes beats failing to send the message.
std::string dump(const OutJson& json) { return json.dump(-1, ' ', false, OutJson::error_handler_t::replace); }

struct ServerToJson {
    OutJson operator()(const Joined& m) const {
        OutJson json = messageJson("joined");
        json["id"] = m.id;
        json["room"] = m.room;
        json["participants"] = OutJson::array();
        for (const auto& p : m.participants) {
            json["participants"].push_back({{"id", p.id}, {"name", p.name}});
        }
        json["iceServers"] = OutJson::array();
        for (const auto& s : m.iceServers) {
            OutJson server = OutJson::object();
            server["urls"] = s.urls;
            if (!s.username.empty()) server["username"] = s.username;
            if (!s.credential.empty()) server["credential"] = s.credential;
            json["iceServers"].push_back(std::move(server));
        }
        return json;
    }
    OutJson operator()(const Answer& m) const {
        OutJson json = messageJson("answer");
        json["sdp"] = m.sdp;
        return json;
    }
    OutJson operator()(const Candidate& m) const {
        OutJson json = messageJson("candidate");
        json["candidate"] = candidateJson(m.candidate);
        return json;
    }
    OutJson operator()(const ParticipantJoined& m) const {
        OutJson json = messageJson("participant-joined");
        json["id"] = m.id;
        json["name"] = m.name;
        return json;
    }
    OutJson operator()(const ParticipantLeft& m) const {
        OutJson json = messageJson("participant-left");
        json["id"] = m.id;
        return json;
    }
    OutJson operator()(const LayoutChanged& m) const {
        OutJson json = messageJson("layout");
        json["layout"] = m.layout;
        return json;
    }
    OutJson operator()(const Speaker& m) const {
        OutJson json = messageJson("speaker");
        json["id"] = m.id;
        return json;
    }
    OutJson operator()(const ErrorMessage& m) const {
        OutJson json = messageJson("error");
        json["code"] = toString(m.code);
        json["message"] = m.message;
        return json;
    }
    OutJson operator()(const RecordingChanged& m) const {
        OutJson json = messageJson("recording");
        json["recording"] = m.recording;
        return json;
    }
    OutJson operator()(const AudioOnly& m) const {
        OutJson json = messageJson("audio-only");
        json["enabled"] = m.enabled;
        if (m.enabled) json["reason"] = m.reason;
        return json;
    }
    OutJson operator()(const SendSize& m) const {
        OutJson json = messageJson("send-size");
        json["source"] = m.source;
        json["active"] = m.active;
        json["width"] = m.width;
        json["height"] = m.height;
        json["maxBitrate"] = m.maxBitrate;
        return json;
    }
    OutJson operator()(const OnScreen& m) const {
        OutJson json = messageJson("on-screen");
        json["shown"] = m.shown;
        json["hidden"] = m.hidden;
        return json;
    }
};

struct ClientToJson {
    OutJson operator()(const Join& m) const {
        OutJson json = messageJson("join");
        json["room"] = m.room;
        json["name"] = m.name;
        if (m.token) json["token"] = *m.token;
        if (m.maxBitrate) json["maxBitrate"] = *m.maxBitrate;
        json["receiveOnly"] = m.receiveOnly;
        return json;
    }
    OutJson operator()(const Offer& m) const {
        OutJson json = messageJson("offer");
        json["sdp"] = m.sdp;
        return json;
    }
    OutJson operator()(const Candidate& m) const {
        OutJson json = messageJson("candidate");
        json["candidate"] = candidateJson(m.candidate);
        return json;
    }
    OutJson operator()(const Leave&) const { return messageJson("leave"); }
    OutJson operator()(const AudioOnlyRequest& m) const {
        OutJson json = messageJson("audio-only");
        json["enabled"] = m.enabled;
        return json;
    }
};

} // namespace

bool isValidName(std::string_view name) { return nameProblem(name) == nullptr; }

bool isValidRoomName(std::string_view room) noexcept {
    if (room.empty() || room.size() > kMaxRoomChars) return false;
    return std::all_of(room.begin(), room.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

ClientMessage parseClientMessage(std::string_view frame) {
    const Json json = parseFrame(frame);
    const std::string type = messageType(json);
    const Fields fields(json, type);
    if (type == "join") return parseJoin(fields);
    if (type == "offer") {
        Offer offer{fields.string("sdp")};
        if (offer.sdp.empty()) fail(fields.path("sdp"), "must not be empty");
        return offer;
    }
    if (type == "candidate") return Candidate{parseCandidate(fields)};
    if (type == "leave") return Leave{};
    if (type == "audio-only") return AudioOnlyRequest{requiredBool(fields, "enabled")};
    unknownType(type);
}

std::string serialize(const ServerMessage& message) { return dump(std::visit(ServerToJson{}, message)); }

ServerMessage parseServerMessage(std::string_view frame) {
    const Json json = parseFrame(frame);
    const std::string type = messageType(json);
    const Fields fields(json, type);
    if (type == "joined") {
        return Joined{fields.string("id"), fields.string("room"), parseParticipants(fields), parseIceServers(fields)};
    }
    if (type == "answer") return Answer{fields.string("sdp")};
    if (type == "candidate") return Candidate{parseCandidate(fields)};
    if (type == "participant-joined") return ParticipantJoined{fields.string("id"), fields.string("name")};
    if (type == "participant-left") return ParticipantLeft{fields.string("id")};
    if (type == "layout") return LayoutChanged{fields.string("layout")};
    if (type == "speaker") return Speaker{fields.string("id")};
    if (type == "error") return ErrorMessage{parseErrorCode(fields), fields.string("message")};
    if (type == "recording") return RecordingChanged{requiredBool(fields, "recording")};
    if (type == "audio-only") {
        AudioOnly m{requiredBool(fields, "enabled"), fields.optionalString("reason").value_or("")};
        if (m.enabled && m.reason.empty()) fail(fields.path("reason"), "is required when enabled");
        return m;
    }
    if (type == "send-size") return parseSendSize(fields);
    if (type == "on-screen") return parseOnScreen(fields);
    unknownType(type);
}

std::string serialize(const ClientMessage& message) { return dump(std::visit(ClientToJson{}, message)); }

} // namespace tessera::protocol
