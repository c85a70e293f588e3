#pragma once
// What a script rather than a browser sends: raw bytes over TCP and
// WebSocket that no well-behaved client library would produce, and the
// checks that a call survives them (test_limits.cpp, test_hostile.cpp).
#include <string>

#include "harness.h"

namespace tessera::testing {

// A `join` message.
Json joinMessage(const std::string& room, const std::string& name);

// A client's video keeps coming: 30 more frames than it had.
void keepsReceiving(Client& client);

// PUTs `body` to `path` as a chunked body (no Content-Length), in chunks of
// at most 64 KiB, as a script would; the response's status (0: none).
int chunkedPut(const std::string& http, const std::string& path, const std::string& body);

// Sends one text message of `fragments` frames of 60000 bytes each over a
// raw WebSocket to /ws and returns what the server sent first: the close
// code of a close frame, or 0 for a data frame (an answer), -1 for nothing.
int fragmentedMessage(const std::string& http, int fragments);

} // namespace tessera::testing
