#pragma once
// Rooms and participants: join, leave, offer/answer relay, data-channel
// relay, kick, layout changes. Owns the state; talks to media through media::Engine and to
// clients through ClientSink. Main thread only. Links neither GStreamer nor
// libsoup: unit tests drive it with fakes.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/media/engine.h"
#include "tessera/protocol/api.h"
#include "tessera/protocol/config.h"
#include "tessera/protocol/messages.h"
#include "tessera/protocol/room_token.h"
#include "tessera/room/layout_library.h"

namespace tessera::room {

// One client connection as Rooms sees it (the server's WebSocket session).
// A sink may re-enter Rooms from send() or disconnect() (a failed send may
// make the session leave), but must not destroy itself synchronously; it
// must outlive its participant (the server calls Rooms::leave first).
class ClientSink {
public:
    virtual ~ClientSink() = default;
    // Thread: main.
    virtual void send(const protocol::ServerMessage& message) = 0;
    // Closes the connection; Rooms has already removed the participant.
    virtual void disconnect(const std::string& reason) = 0;
};

// Everything GET /metrics reports, gathered in one pass.
struct MetricsSnapshot {
    struct Participant {
        std::string id;
        media::PeerStats stats;
    };
    struct Room {
        std::string room;
        media::RoomStats stats;
        std::vector<Participant> participants; // join order
        bool recording = false;
        std::vector<api::LiveTargetSummary> live; // its live targets (kind and state)
        unsigned viewers = 0;                     // WHEP viewers (Rooms::view): no members
    };
    std::vector<Room> rooms;           // sorted by name
    std::uint64_t roomPipelines = 0;   // rooms' media alive: open, finishing a recording, or not yet torn down
    std::uint64_t recordingErrors = 0; // recordings that failed to start or failed while running
    std::uint64_t liveFailures = 0;    // live targets that failed to start or failed while running
};

// A recording's file name without extension: the room name with anything
// but [A-Za-z0-9_-] replaced by '_' (at most 64 characters, never empty), a
// '-' and the UTC time as YYYYMMDDTHHMMSSZ. Never a path: no '/', no "..".
std::string recordingStem(std::string_view room, std::int64_t unixMs);

// A WHEP viewer's request (Rooms::view).
struct ViewRequest {
    std::string room;
    std::string name; // shown in the room's details
    std::optional<std::string> token;
    // A quality tier's name (video.tiers) to receive whatever the link
    // does; nullopt: chosen by bandwidth, as for a participant.
    std::optional<std::string> tier;
};

class Rooms {
public:
    // Throws Error(BadRequest) when config.defaultLayout is not in `layouts`.
    Rooms(const Config& config, media::Engine& engine, LayoutLibrary& layouts);
    ~Rooms();
    Rooms(const Rooms&) = delete;
    Rooms& operator=(const Rooms&) = delete;

    // Returns the new participant's id. Throws Error(Unauthorized) for a bad
    // token, Error(RoomFull), Error(ServerFull) when limits.maxRooms are open
    // and the room is not one of them, or Error(Internal) when media fails.
    // A participant that sends no offer within limits.joinTimeoutSeconds is
    // removed: its sink gets an error `timeout` and is disconnected.
    std::string join(const protocol::Join& join, ClientSink& sink);
    // A WHEP viewer (docs/protocol.md): it receives the room's mix on a
    // receive-only peer and is no member: nobody is told it came or went, it
    // has no tile, the API lists it under `viewers` and it does not count
    // against maxParticipants. Its peer shares the room's encoders as any
    // receiver does. Returns its id, which offer, candidate and leave take
    // as a participant's. Throws Error(NotFound) when nobody is in the room
    // (a viewer opens no room), Error(Unauthorized) as join does,
    // Error(RoomFull) at limits.viewersPerRoom, Error(BadRequest) for an
    // unknown tier. Viewers hold no room open: when its last participant
    // leaves, its viewers are removed and their sinks disconnected.
    std::string view(const ViewRequest& request, ClientSink& sink);
    // Throw Error(NotJoined) for an unknown participant. An offer sending
    // media without a publish grant, or asking for it without a subscribe
    // grant, is refused: Error(Unauthorized); a viewer's offer that sends
    // media: Error(BadRequest).
    void offer(const std::string& participantId, const std::string& sdp);
    void candidate(const std::string& participantId, const std::optional<protocol::IceCandidate>& candidate);
    // The client asks for audio only, or video again (the `audio-only` message).
    void setAudioOnly(const std::string& participantId, bool audioOnly);
    // Idempotent: an unknown id (already kicked or failed) is ignored.
    void leave(const std::string& participantId);

    // HTTP API. Unknown room or participant: Error(NotFound).
    std::vector<api::RoomSummary> list() const;
    api::RoomDetail detail(const std::string& room) const;
    void kick(const std::string& room, const std::string& participantId);
    // Unknown layout name or a request with neither name nor spec: Error(BadRequest).
    void setLayout(const std::string& room, const api::LayoutRequest& request);
    // Re-reads the layouts directory (SIGHUP, POST /api/layouts/reload).
    // Every room showing a named layout whose spec changed gets the new spec
    // (and its participants a `layout` message); inline specs and layouts
    // whose file went away stay as they are. Returns the loaded names. A bad
    // file throws (Error naming the file) and changes nothing.
    std::vector<std::string> reloadLayouts();

    // Starts recording the room's mix (format: nullopt for the configured
    // default); returns the media file's path. Error(NotFound) for an unknown
    // room, Error(Conflict) when it records already (or is finalising),
    // Error(Internal) when the target cannot be written.
    std::string startRecording(const std::string& room, const std::optional<std::string>& format);
    // Finalises the recording; `done` runs on the main context once the file
    // is complete, never from inside this call. Error(NotFound) for an
    // unknown room, Error(Conflict) when it is not recording.
    void stopRecording(const std::string& room, std::function<void(const media::RecordingResult&)> done);

    // Finalises every running recording (server shutdown); `done` runs on the
    // main context once all are complete, at once when there are none.
    void stopAllRecordings(std::function<void()> done);

    // Live streaming (docs/protocol.md, "Live streaming"). Starts the targets
    // the request names and returns all the room's targets. Error(NotFound)
    // for an unknown room; Error(Conflict) when a named target runs already
    // or the room would have more than live.maxTargets; Error(Internal) when
    // the HLS directory cannot be made. A target that cannot start is
    // listed as failed (or retrying); the others start all the same.
    std::vector<api::LiveTargetSummary> startLive(const std::string& room, const api::LiveStart& request);
    // Stops one target (`id`) or, with `id` empty, every target; returns the
    // targets left. Error(NotFound) for an unknown room or target,
    // Error(Conflict) for "every target" of a room that has none.
    std::vector<api::LiveTargetSummary> stopLive(const std::string& room, const std::string& id);
    // The room's targets; Error(NotFound) for an unknown room.
    std::vector<api::LiveTargetSummary> live(const std::string& room) const { return liveSummary(roomOrThrow(room)); }
    // The directory of the room's HLS stream while it has one (running or
    // retrying), or of the one it stopped last (ended) while the room is
    // open: what GET /live/{room}/... may serve from. nullopt otherwise.
    std::optional<std::string> hlsDirectory(const std::string& room) const;

    MetricsSnapshot metrics() const;
    std::size_t roomCount() const noexcept { return m_rooms.size(); }
    // Members only; viewers apart.
    std::size_t participantCount() const noexcept { return m_participants.size() - viewerCount(); }
    std::size_t viewerCount() const noexcept;

private:
    class Room;
    class Participant;
    class Entry;
    enum class Removal { Left, Kicked, Failed, TimedOut };
    // How a participant got in: with a room token (its claims and the token
    // itself), or by the join token or an open door (no claims).
    struct Admission {
        std::optional<protocol::RoomTokenClaims> claims;
        std::string token;
    };

    // Throws Error(Unauthorized) unless the join's token lets it in (docs/security.md).
    Admission admit(const protocol::Join& join);
    void startJoinTimer(Participant& participant);
    void onJoinTimeout(const std::string& participantId);

    // Listener calls, routed here by Participant and Room.
    void onAnswer(Participant& participant, const std::string& sdp);
    void onLocalCandidate(Participant& participant, const std::optional<protocol::IceCandidate>& candidate);
    void onPeerFailed(Participant& participant, const std::string& reason);
    void onAudioOnly(Participant& participant, bool audioOnly, const std::string& reason);
    // Relays chat and file messages to the others in the room (docs/protocol.md "Data channels").
    void onDataMessage(Participant& participant, const media::DataMessage& message);
    // A message to relay; `transfer`: the file transfer it belongs to ("" for
    // chat), `ends`: its `end` or `cancel`.
    struct Relay {
        media::DataMessage message;
        std::string transfer;
        bool ends = false;
    };
    std::optional<Relay> relayed(Room& room, const Participant& from, const media::DataMessage& message);
    void dropOverBudget(Room& room, Participant& from, const media::DataMessage& message);
    // Sends to one receiver, unless limits.dataBufferedBytes already wait for it there.
    void relayTo(Participant& receiver, const std::string& fromId, const std::string& fromName, const Relay& relay);
    // Receivers forget the transfers they were too slow for once those are over.
    void forgetEndedTransfers(Room& room);
    void onSpeakerChanged(Room& room, const std::string& participantId);
    // Tells the participant what the layout needs of its video (`send-size`).
    void onSendSize(Room& room, const std::string& participantId, const protocol::SendSize& size);
    // Tells everyone whose video the composite shows (`on-screen`).
    void onOnScreen(Room& room, const protocol::OnScreen& onScreen);
    void onScreenShareChanged(Room& room, const std::string& participantId, bool active);
    // `named`: the spec came from the layout library (a reload may update it).
    void applyLayout(Room& room, const protocol::LayoutSpec& spec, bool named);
    void onRecordingSegment(Room& room, const std::string& path, double offset);
    void onRecordingFailed(Room& room, const std::string& reason);
    void onRecordingStopped(Room& room, const media::RecordingResult& result);
    // A closed room's media finished one thing (see Room::closingHolds); it goes after the last.
    void releaseClosingHold(Room& room);
    struct LiveTarget;
    void onLiveFailed(Room& room, const std::string& id, const std::string& reason);
    // Starts (or restarts) the target in media; a failure marks it failed or retrying.
    void attemptLive(Room& room, LiveTarget& target);
    void liveTargetFailed(Room& room, LiveTarget& target, const std::string& reason);
    void onLiveRetry(const std::string& room, const std::string& id);
    // Stops every live target of a room that closes.
    void stopAllLive(Room& room);
    std::vector<api::LiveTargetSummary> liveSummary(const Room& room) const;
    void beginStopRecording(Room& room);
    // Adds a timeline event to the room's recording, if any, and saves its metadata.
    void recordEvent(Room& room, const std::string& event, const std::string& id, const std::string& name);
    void saveRecordingMetadata(const Room& room);

    Room& roomOrThrow(const std::string& name) const;
    Participant& participantOrThrow(const std::string& id) const;
    bool isLive(const Participant& participant) const;
    bool isLive(const Room& room) const;
    std::string newParticipantId();
    void remove(const std::string& participantId, Removal how, const std::string& reason);
    void sendTo(const std::string& participantId, const protocol::ServerMessage& message);
    // Sends to every participant of the room but `except`, re-checking each
    // one first: a send may make anyone (even the whole room) leave.
    void broadcast(const std::string& room, const protocol::ServerMessage& message, const std::string& except = {});
    // Calls `action` for each participant of the room but `except` that is
    // still there when its turn comes.
    void forEachOther(const std::string& room, const std::string& except,
                      const std::function<void(Participant&)>& action);
    void collectGarbage();
    void scheduleGarbageCollection();
    // A dead room's media finished stopping (RoomMedia::stop): it goes.
    void onMediaStopped(Room& room);

    Config m_config;
    media::Engine& m_engine;  // Borrowed; outlives this.
    LayoutLibrary& m_layouts; // Borrowed; outlives this.
    std::map<std::string, std::unique_ptr<Room>, std::less<>> m_rooms;
    std::map<std::string, Participant*, std::less<>> m_participants; // Borrowed from their Room; viewers too.
    // Removed participants and rooms wait here until no Rooms call or media
    // callback is on the stack: a peer is never destroyed from inside its
    // own handleOffer() or listener call. Peers die before their RoomMedia.
    std::vector<std::unique_ptr<Participant>> m_deadParticipants;
    std::vector<std::unique_ptr<Room>> m_deadRooms;
    // Rooms nobody is in any more whose recording is being finalised: their
    // media lives on until the recorder has drained.
    std::vector<std::unique_ptr<Room>> m_closingRooms;
    // Dead rooms whose media is stopping on the thread pool.
    std::vector<std::unique_ptr<Room>> m_stoppingRooms;
    // Room tokens of kicked participants -> when they stop mattering (expiry
    // plus skew, seconds since the epoch); forgotten after that.
    std::map<std::string, std::int64_t, std::less<>> m_revokedTokens;
    std::uint64_t m_recordingErrors = 0;
    std::uint64_t m_liveFailures = 0;
    unsigned m_depth = 0;         // nesting of public calls and listener callbacks
    unsigned m_collectSource = 0; // pending idle collection (GLib source id), 0: none
};

} // namespace tessera::room
