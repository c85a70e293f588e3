// The signaling parsers: every WebSocket text frame a client sends (the
// server's parser) and the server sends (tessera-client's). A parsed message
// must serialize back.
#include "fuzz.h"

#include <tessera/protocol/messages.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    tessera::fuzz::run(data, size, [](std::string_view frame) {
        tessera::protocol::serialize(tessera::protocol::parseClientMessage(frame));
    });
    return tessera::fuzz::run(data, size, [](std::string_view frame) {
        tessera::protocol::serialize(tessera::protocol::parseServerMessage(frame));
    });
}
