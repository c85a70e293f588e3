#pragma once
// WHIP ingest (RFC 9725) and WHEP egress (the IETF WHEP draft): one HTTP
// exchange, without Tessera's WebSocket protocol. A POST of an SDP offer
// answers 201 with the SDP answer and a resource (/whip/{room}/{id},
// /whep/{room}/{id}) that takes trickled candidates (PATCH) and ends the
// session (DELETE). A WHIP publisher (OBS, ffmpeg, GStreamer, a browser
// page) is a participant like any other; a WHEP viewer (a player) receives
// the room's mix as a viewer (room::Rooms::view): no member, no tile, no
// encoder of its own. Thread: main.
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
    enum class Kind {
        Publish, // WHIP, under /whip
        View,    // WHEP, under /whep
    };
    // `countJoin` throws Error(RateLimited) when an address joins too often
    // (the WebSocket's joins count against the same budget). At most
    // `perAddress` sessions from one address at once (0: no bound); more
    // get 429. `tokens`: joining needs a bearer token (a join token or room
    // tokens), and a resource's PATCH and DELETE then need the one its POST
    // was admitted with.
    Whip(Kind kind, room::Rooms& rooms, unsigned perAddress, bool tokens,
         std::function<void(std::string_view address)> countJoin);
    // Every publisher leaves; a POST still waiting is answered 503.
    ~Whip();
    Whip(const Whip&) = delete;
    Whip& operator=(const Whip&) = delete;

    // `segments`: the path after /whip or /whep: {room} (POST) or {room, id}
    // (PATCH, DELETE), where `id` is the resource's own secret (128 bits from
    // getrandom(2)), not the participant id that the room's members see:
    // knowing the resource URL is what lets a client end the session. Answers `msg`, at once or, for a POST, once the
    // server's answer and candidates are ready (the message is paused).
    void handle(SoupServerMessage* msg, const std::vector<std::string>& segments);

private:
    class Resource;
    void options(SoupServerMessage* msg, const char* methods, const char* acceptHeader, const char* accepted);
    // The POST: the publisher joins, or the viewer starts watching.
    void start(SoupServerMessage* msg, const std::string& room);
    // "WHIP" or "WHEP", for messages.
    const char* label() const noexcept { return m_kind == Kind::Publish ? "WHIP" : "WHEP"; }
    // The resource at {room, id}, or nullptr. Compares every resource's id in
    // constant time: the answer's timing says nothing of how much of a
    // guess was right.
    Resource* find(const std::string& room, const std::string& id) const;
    void patch(SoupServerMessage* msg, Resource& resource);
    void remove(Resource& resource);
    // The participant is gone (left, kicked, failed): the resource goes,
    // from an idle source (it may be on the stack).
    void forget(Resource& resource);

    const Kind m_kind;
    room::Rooms& m_rooms;
    const unsigned m_perAddress;
    const bool m_tokens;
    std::function<void(std::string_view)> m_countJoin;
    std::map<Resource*, std::unique_ptr<Resource>> m_resources;
    std::vector<std::unique_ptr<Resource>> m_forgotten;
    guint m_reapSource = 0;
};

} // namespace tessera::server
