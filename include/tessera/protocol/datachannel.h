#pragma once
// Data-channel payloads (docs/protocol.md "Data channels", framing of "file" in
// docs/datachannels.md). Parsed and built here because only the protocol
// module sees JSON.
#include <cstdint>
#include <string>
#include <string_view>

namespace tessera::protocol {

inline constexpr std::size_t kMaxChatBytes = 16 * 1024;
inline constexpr std::size_t kMaxChunkPayload = 16 * 1024;

// {"text": "..."} from a participant's "chat" channel. Throws Error(BadRequest)
// for anything else (not JSON, no text, empty or over 16 KiB).
std::string parseChat(std::string_view message);

// What the others receive: {"from", "name", "text", "ts"} (ts in Unix ms).
std::string serializeChat(const std::string& fromId, const std::string& name, const std::string& text,
                          std::int64_t unixMs);

// A JSON control message on the "file" channel ({"type": "start"|"end"|...,
// "id": ...}).
struct FileControl {
    std::string type;
    std::string id;
    std::string relayed; // the message with "from" and "fromName" added
};

// Throws Error(BadRequest) if `message` is not a JSON object with a string
// "type" and a valid "id".
FileControl annotateFileControl(std::string_view message, const std::string& fromId, const std::string& name);

// The transfer id of a binary chunk, [1 byte L][L bytes id][1..16384 bytes
// payload]. Throws Error(BadRequest) for anything else.
std::string chunkTransferId(std::string_view chunk);

// What receivers get when the server ends a transfer itself:
// {"type": "cancel", "id", "from", "fromName", "reason"}.
std::string serverCancel(const std::string& id, const std::string& fromId, const std::string& name,
                         const std::string& reason);

} // namespace tessera::protocol
