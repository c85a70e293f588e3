#pragma once
// GET /live/{room}/{file}: a room's HLS stream (docs/protocol.md, "Live
// streaming"). Thread: main.
#include <libsoup/soup.h>

#include <string>
#include <vector>

#include "tessera/room/rooms.h"

namespace tessera::server {

// Serves the playlist (index.m3u8) or a segment (segmentNNNNN.ts) of the
// room's HLS stream, from the directory the room streams into, while it
// streams HLS; 404 for anything else. `segments`: the path after /live.
void serveLive(SoupServerMessage* msg, const room::Rooms& rooms, const std::vector<std::string>& segments);

} // namespace tessera::server
