#pragma once
// Data-channel payloads (docs/protocol.md "Data channels", framing of "file" in
// docs/datachannels.md). Parsed and built here because only the protocol
// module sees JSON.
#include <cstdint>
#include <string>
#include <string_view>

namespace tessera::protocol {

inline constexpr std::size_t kMaxChatBytes = 16 * 1024;

// {"text": "..."} from a participant's "chat" channel. Throws Error(BadRequest)
// for anything else (not JSON, no text, empty or over 16 KiB).
std::string parseChat(std::string_view message);

// What the others receive: {"from", "name", "text", "ts"} (ts in Unix ms).
std::string serializeChat(const std::string& fromId, const std::string& name, const std::string& text,
                          std::int64_t unixMs);

// A JSON control message on the "file" channel ({"type": "start"|"end"|...,
// "id": ...}) with "from" and "fromName" added. Throws Error(BadRequest) if it
// is not a JSON object with a string "type" and a valid "id".
std::string annotateFileControl(std::string_view message, const std::string& fromId, const std::string& name);

} // namespace tessera::protocol
