#pragma once
// WHIP ingest (RFC 9725): an encoder (OBS, ffmpeg, GStreamer, a browser page)
// joins a room with one HTTP POST of its SDP offer, without Tessera's
// WebSocket protocol. Each publisher is a participant like any other; its
// resource (/whip/{room}/{id}) takes trickled candidates (PATCH) and ends
// the session (DELETE). Thread: main.
#include <libsoup/soup.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/protocol/config.h"
#include "tessera/room/rooms.h"

namespace tessera::server {

class Whip {
public:
    // `countJoin` throws Error(RateLimited) when an address joins too often
    // (the WebSocket's joins count against the same budget).
    Whip(room::Rooms& rooms, std::function<void(std::string_view address)> countJoin);
    // Every publisher leaves; a POST still waiting is answered 503.
    ~Whip();
    Whip(const Whip&) = delete;
    Whip& operator=(const Whip&) = delete;

    // `segments`: the path after /whip: {room} (POST: publish) or {room, id}
    // (PATCH, DELETE). Answers `msg`, at once or, for a POST, once the
    // server's answer and candidates are ready (the message is paused).
    void handle(SoupServerMessage* msg, const std::vector<std::string>& segments);

private:
    class Resource;
    void options(SoupServerMessage* msg, const char* methods, const char* acceptHeader, const char* accepted);
    void publish(SoupServerMessage* msg, const std::string& room);
    void patch(SoupServerMessage* msg, Resource& resource);
    void remove(Resource& resource);
    // The participant is gone (left, kicked, failed): the resource goes,
    // from an idle source (it may be on the stack).
    void forget(Resource& resource);

    room::Rooms& m_rooms;
    std::function<void(std::string_view)> m_countJoin;
    std::map<Resource*, std::unique_ptr<Resource>> m_resources;
    std::vector<std::unique_ptr<Resource>> m_forgotten;
    guint m_reapSource = 0;
};

} // namespace tessera::server
