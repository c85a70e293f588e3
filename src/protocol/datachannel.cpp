#include "tessera/protocol/datachannel.h"

#include <nlohmann/json.hpp>

#include "tessera/protocol/error.h"

namespace tessera::protocol {
namespace {

using nlohmann::json;

json parseObject(std::string_view message, const char* what) {
    json j = json::parse(message, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw Error(ErrorCode::BadRequest, std::string(what) + ": must be a JSON object");
    return j;
}

bool validTransferId(const std::string& id) {
    if (id.empty() || id.size() > 32) return false;
    for (char c : id)
        if (!std::isalnum(static_cast<unsigned char>(c))) return false;
    return true;
}

} // namespace

std::string parseChat(std::string_view message) {
    if (message.size() > kMaxChatBytes) throw Error(ErrorCode::BadRequest, "chat: message exceeds 16 KiB");
    json j = parseObject(message, "chat");
    auto text = j.find("text");
    if (text == j.end() || !text->is_string()) throw Error(ErrorCode::BadRequest, "chat.text: must be a string");
    std::string s = text->get<std::string>();
    if (s.empty()) throw Error(ErrorCode::BadRequest, "chat.text: must not be empty");
    return s;
}

std::string serializeChat(const std::string& fromId, const std::string& name, const std::string& text,
                          std::int64_t unixMs) {
    return json{{"from", fromId}, {"name", name}, {"text", text}, {"ts", unixMs}}.dump(-1, ' ', false,
                                                                                       json::error_handler_t::replace);
}

FileControl annotateFileControl(std::string_view message, const std::string& fromId, const std::string& name) {
    if (message.size() > kMaxChatBytes) throw Error(ErrorCode::BadRequest, "file: control message exceeds 16 KiB");
    json j = parseObject(message, "file");
    auto type = j.find("type");
    if (type == j.end() || !type->is_string()) throw Error(ErrorCode::BadRequest, "file.type: must be a string");
    auto id = j.find("id");
    if (id == j.end() || !id->is_string() || !validTransferId(id->get<std::string>()))
        throw Error(ErrorCode::BadRequest, "file.id: must be 1-32 characters of [A-Za-z0-9]");
    j["from"] = fromId;
    j["fromName"] = name;
    return {type->get<std::string>(), id->get<std::string>(), j.dump(-1, ' ', false, json::error_handler_t::replace)};
}

std::string chunkTransferId(std::string_view chunk) {
    const std::size_t length = chunk.empty() ? 0 : static_cast<unsigned char>(chunk[0]);
    const std::size_t payload = chunk.size() > length + 1 ? chunk.size() - length - 1 : 0;
    if (payload == 0 || payload > kMaxChunkPayload || !validTransferId(std::string(chunk.substr(1, length))))
        throw Error(ErrorCode::BadRequest, "file: a chunk is [1 byte L][L bytes id][1-16384 bytes]");
    return std::string(chunk.substr(1, length));
}

std::string serverCancel(const std::string& id, const std::string& fromId, const std::string& name,
                         const std::string& reason) {
    return json{{"type", "cancel"}, {"id", id}, {"from", fromId}, {"fromName", name}, {"reason", reason}}.dump(
        -1, ' ', false, json::error_handler_t::replace);
}

} // namespace tessera::protocol
