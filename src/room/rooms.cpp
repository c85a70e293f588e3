#define G_LOG_DOMAIN "tessera-room"
#include "tessera/room/rooms.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "tessera/auth/jwt.h"
#include "tessera/glib/raii.h"
#include "tessera/policy/backoff.h"
#include "tessera/policy/rate.h"
#include "tessera/protocol/datachannel.h"
#include "tessera/protocol/offer_plan.h"
#include "tessera/protocol/token.h"
#include "tessera/protocol/turn_credentials.h"

namespace tessera::room {

namespace {
// The first wait before a live target started with "retry" reconnects.
constexpr std::int64_t kLiveRetryFirstMs = 1000;
} // namespace

// One live target of a room and what the API shows of it.
struct Rooms::LiveTarget {
    enum class State { Running, Retrying, Failed };
    media::LiveTarget media;
    bool retry = false;
    State state = State::Running;
    std::string reason;
    unsigned failures = 0;
    policy::Backoff backoff;
    unsigned retryTimer = 0; // GLib source of the next attempt (0: none)
    std::int64_t retryAtUs = 0;

    LiveTarget(media::LiveTarget target, bool retry, unsigned retryMaxSeconds)
        : media(std::move(target)), retry(retry), backoff(kLiveRetryFirstMs, std::int64_t{retryMaxSeconds} * 1000) {}
    ~LiveTarget() { cancelRetry(); }
    LiveTarget(const LiveTarget&) = delete;
    LiveTarget& operator=(const LiveTarget&) = delete;
    void cancelRetry() {
        if (retryTimer != 0) g_source_remove(retryTimer);
        retryTimer = 0;
    }
};

// One room: its media (the mixing pipeline) and its participants in join order.
class Rooms::Room final : public media::RoomListener {
public:
    Room(Rooms& rooms, std::string name) : m_rooms(rooms), name(std::move(name)) {}

    // Thread: main.
    void onSpeakerChanged(const std::string& participantId) override { m_rooms.onSpeakerChanged(*this, participantId); }
    void onScreenShareChanged(const std::string& participantId, bool active) override {
        m_rooms.onScreenShareChanged(*this, participantId, active);
    }
    void onRecordingSegment(const std::string& path, double offset) override {
        m_rooms.onRecordingSegment(*this, path, offset);
    }
    void onRecordingFailed(const std::string& reason) override { m_rooms.onRecordingFailed(*this, reason); }
    void onSendSize(const std::string& participantId, const protocol::SendSize& size) override {
        m_rooms.onSendSize(*this, participantId, size);
    }
    void onOnScreen(const protocol::OnScreen& seen) override { m_rooms.onOnScreen(*this, seen); }
    void onLiveFailed(const std::string& id, const std::string& reason) override {
        m_rooms.onLiveFailed(*this, id, reason);
    }

private:
    Rooms& m_rooms; // Borrowed; owns this.

public:
    const std::string name;
    std::string layout;                         // the name sent in `layout` messages and the API
    protocol::LayoutSpec spec;                  // the spec applied to media
    bool namedLayout = false;                   // the spec is the library's `layout` (false: an inline spec)
    std::string speaker;                        // participant id, empty: nobody
    std::optional<protocol::OnScreen> onScreen; // the last `on-screen` told; a joiner gets it too
    std::set<std::string> sharing;              // participants whose screen share is live
    std::optional<std::string> beforeShare;     // the layout to restore when the last share ends
    struct Recording {
        std::string metadataPath;
        api::RecordingMetadata metadata;
        std::int64_t startMonotonicUs = 0;
        bool stopping = false;
        std::vector<std::function<void(const media::RecordingResult&)>> waiters; // pending stops
    };
    std::optional<Recording> recording;
    std::string recordingError;                    // the last failure, shown in the API
    std::map<std::string, std::string> transfers;  // file transfer id -> the participant who started it
    std::vector<std::unique_ptr<LiveTarget>> live; // in start order; destroyed (timers cancelled) with the room
    unsigned liveCounter = 0;                      // numbers rtmp-N ids
    // The directory of the HLS stream stopped last: still served (its
    // playlist ends with #EXT-X-ENDLIST) until HLS starts again or the room closes.
    std::string endedHls;
    // A closed room (in m_closingRooms): what its media still finishes (a
    // recording, live streams ending) before it goes.
    unsigned closingHolds = 0;
    // Owned. Declared before the participants so that their peers, which live
    // in this media's pipeline, are destroyed first.
    std::unique_ptr<media::RoomMedia> media;
    std::vector<std::unique_ptr<Participant>> participants; // Owned; join order.
    std::vector<std::unique_ptr<Participant>> viewers;      // Owned; WHEP viewers (Rooms::view), no members.
};

class Rooms::Participant final : public media::PeerListener {
public:
    Participant(Rooms& rooms, std::string id, const protocol::Join& join, const Admission& admission, ClientSink& sink,
                const LimitsConfig& limits, bool viewer = false)
        : m_rooms(rooms), id(std::move(id)), name(join.name), room(join.room), receiveOnly(join.receiveOnly),
          viewer(viewer), admission(admission), sink(sink),
          dataBudget(limits.dataBytesPerSecond, limits.dataBurstBytes) {}
    ~Participant() { cancelJoinTimer(); }
    Participant(const Participant&) = delete;
    Participant& operator=(const Participant&) = delete;

    void cancelJoinTimer() {
        if (joinTimer != 0) g_source_remove(joinTimer);
        joinTimer = 0;
    }

    // Thread: main.
    void onAnswer(const std::string& sdp) override { m_rooms.onAnswer(*this, sdp); }
    void onLocalCandidate(const std::optional<protocol::IceCandidate>& candidate) override {
        m_rooms.onLocalCandidate(*this, candidate);
    }
    void onPeerFailed(const std::string& reason) override { m_rooms.onPeerFailed(*this, reason); }
    void onDataMessage(const media::DataMessage& message) override { m_rooms.onDataMessage(*this, message); }
    void onAudioOnly(bool audioOnly, const std::string& reason) override {
        m_rooms.onAudioOnly(*this, audioOnly, reason);
    }

private:
    Rooms& m_rooms; // Borrowed; owns this.

public:
    const std::string id;
    const std::string name;
    const std::string room;
    const bool receiveOnly;
    const bool viewer; // a WHEP viewer (Rooms::view): in its room's `viewers`, not `participants`
    const Admission admission;
    ClientSink& sink;                                 // Borrowed; outlives this participant (see ClientSink).
    bool announced = false;                           // the others were sent participant-joined
    unsigned joinTimer = 0;                           // GLib source: the time to send a first offer runs out (0: none)
    policy::TokenBucket dataBudget;                   // bytes it may send on data channels
    bool dataLimited = false;                         // its last data-channel message was over budget
    std::set<std::string> slowFor;                    // transfers it fell too far behind on: it gets no more of them
    std::optional<protocol::SendSize> cameraSendSize; // what its camera was last asked to send (the API shows it)
    std::unique_ptr<media::Peer> peer;                // Owned.
};

// Marks a call into Rooms. When the outermost one returns, removed peers and
// rooms are destroyed: right away for calls from the server, from an idle
// source for media callbacks (the calling peer's code is still on the stack).
class Rooms::Entry {
public:
    enum class From { Client, Media };

    Entry(Rooms& rooms, From from) : m_rooms(rooms), m_from(from) {
        // Garbage left by a media callback goes before anything new is
        // created: a room re-created under the same name must not meet its
        // old pipeline.
        if (m_rooms.m_depth == 0 && m_from == From::Client) m_rooms.collectGarbage();
        ++m_rooms.m_depth;
    }
    ~Entry() {
        if (--m_rooms.m_depth != 0) return;
        if (m_from == From::Client) {
            m_rooms.collectGarbage();
        } else {
            m_rooms.scheduleGarbageCollection();
        }
    }
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;

private:
    Rooms& m_rooms;
    From m_from;
};

Rooms::Rooms(const Config& config, media::Engine& engine, LayoutLibrary& layouts)
    : m_config(config), m_engine(engine), m_layouts(layouts) {
    if (!m_layouts.find(m_config.defaultLayout)) {
        throw Error(ErrorCode::BadRequest,
                    "default layout '" + m_config.defaultLayout + "' is not in " + m_layouts.directory().string());
    }
}

Rooms::~Rooms() {
    if (m_collectSource != 0) g_source_remove(m_collectSource);
    // Recordings still being finalised are cut short (their files play, unfinalised).
    m_closingRooms.clear();
    // Nobody is told anything: the server is shutting down and sinks may be
    // gone. Unindex first so that a late listener call finds nothing live,
    // and move the rooms out so that no lookup walks a map being destroyed.
    m_participants.clear();
    auto rooms = std::move(m_rooms);
    m_rooms.clear();
    m_deadParticipants.clear();
    m_deadRooms.clear();
    rooms.clear();
    m_stoppingRooms.clear(); // each waits for its media's stop on the pool
}

std::string Rooms::join(const protocol::Join& request, ClientSink& sink) {
    Entry entry(*this, Entry::From::Client);
    const Admission admission = admit(request);
    // With a room token, its name is the participant's.
    protocol::Join join = request;
    if (admission.claims) join.name = admission.claims->name;
    // The parser checked this already; the room name also names pipelines and
    // metrics labels, so it is checked again at the owner.
    if (!protocol::isValidRoomName(join.room))
        throw Error(ErrorCode::BadRequest, "room: must be 1-64 of [A-Za-z0-9_-]");

    auto found = m_rooms.find(join.room);
    if (found != m_rooms.end() && found->second->participants.size() >= m_config.maxParticipants) {
        throw Error(ErrorCode::RoomFull,
                    "room '" + join.room + "' is full (" + std::to_string(m_config.maxParticipants) + " participants)");
    }
    if (const unsigned most = m_config.limits.maxParticipants; most != 0 && participantCount() >= most) {
        throw Error(ErrorCode::ServerFull, "the server has " + std::to_string(most) + " participants: try later");
    }
    if (found == m_rooms.end() && m_config.limits.maxRooms != 0 && m_rooms.size() >= m_config.limits.maxRooms) {
        throw Error(ErrorCode::ServerFull,
                    "the server has " + std::to_string(m_config.limits.maxRooms) + " rooms open: join one of them");
    }
    if (found == m_rooms.end()) {
        // A reload may have dropped the default layout since startup; the
        // built-in grid is always there.
        std::optional<protocol::LayoutSpec> spec = m_layouts.find(m_config.defaultLayout);
        if (!spec) {
            g_warning("default layout '%s' is gone; room '%s' starts with 'grid'", m_config.defaultLayout.c_str(),
                      join.room.c_str());
            spec = m_layouts.find("grid");
        }
        auto room = std::make_unique<Room>(*this, join.room);
        room->media = m_engine.createRoom(join.room, *room);
        room->media->setLayout(*spec);
        room->layout = spec->name;
        room->spec = *spec;
        room->namedLayout = true;
        found = m_rooms.emplace(join.room, std::move(room)).first;
        g_info("room '%s' created", join.room.c_str());
        if (m_config.recording.autoRecord) {
            try {
                startRecording(join.room, std::nullopt);
            } catch (const Error& e) {
                // Counted and shown in the room's details; the join goes on.
                g_warning("room '%s': automatic recording did not start: %s", join.room.c_str(), e.what());
            }
        }
    }
    Room& room = *found->second;

    auto participant = std::make_unique<Participant>(*this, newParticipantId(), join, admission, sink, m_config.limits);
    std::string id = participant->id;
    try {
        participant->peer = room.media->addPeer(
            id, media::PeerOptions{join.name, join.receiveOnly, join.maxBitrate, std::nullopt}, *participant);
    } catch (...) {
        // Rooms exist while someone is in them: undo a room made for this join.
        if (room.participants.empty()) {
            m_deadRooms.push_back(std::move(found->second));
            m_rooms.erase(found);
        }
        throw;
    }

    protocol::Joined joined{
        id, join.room, {}, protocol::iceServersFor(m_config, id, g_get_real_time() / G_USEC_PER_SEC)};
    for (const auto& other : room.participants) joined.participants.push_back({other->id, other->name});
    startJoinTimer(*participant);
    m_participants.emplace(id, participant.get());
    room.participants.push_back(std::move(participant));
    recordEvent(room, "join", id, join.name);
    g_info("'%s' joined room '%s' as %s (%zu in the room)", join.name.c_str(), join.room.c_str(), id.c_str(),
           room.participants.size());

    // Every send may make the joiner leave (and close the room): copy what is
    // needed first; sendTo skips a participant that is gone.
    const std::string layout = room.layout, speaker = room.speaker;
    const bool recording = room.recording.has_value();
    const auto onScreen = room.onScreen;
    sendTo(id, joined);
    // The joiner learns the room's current state too.
    sendTo(id, protocol::LayoutChanged{layout});
    if (!speaker.empty()) sendTo(id, protocol::Speaker{speaker});
    if (recording) sendTo(id, protocol::RecordingChanged{true});
    if (onScreen) sendTo(id, *onScreen);
    // Gone already (its sink failed): the others heard nothing, and remove()
    // told them nothing either.
    if (const auto joiner = m_participants.find(id); joiner != m_participants.end()) {
        joiner->second->announced = true;
        broadcast(join.room, protocol::ParticipantJoined{id, join.name}, id);
    }
    return id;
}

std::string Rooms::view(const ViewRequest& request, ClientSink& sink) {
    Entry entry(*this, Entry::From::Client);
    const protocol::Join join{request.room, request.name, request.token, std::nullopt, true};
    const Admission admission = admit(join);
    const auto found = m_rooms.find(request.room);
    // A viewer opens no room: an anonymous player must not start a pipeline.
    if (found == m_rooms.end()) throw Error(ErrorCode::NotFound, "nobody is in room '" + request.room + "'");
    Room& room = *found->second;
    if (const unsigned most = m_config.limits.viewersPerRoom; most != 0 && room.viewers.size() >= most) {
        throw Error(ErrorCode::RoomFull,
                    "room '" + request.room + "' has " + std::to_string(most) + " viewers (limits.viewersPerRoom)");
    }
    if (request.tier) {
        const auto tiers = effectiveTiers(m_config.video);
        if (std::none_of(tiers.begin(), tiers.end(), [&](const policy::Tier& t) { return t.name == *request.tier; }))
            throw Error(ErrorCode::BadRequest, "tier: no tier '" + *request.tier + "' (video.tiers)");
    }
    auto viewer =
        std::make_unique<Participant>(*this, newParticipantId(), join, admission, sink, m_config.limits, true);
    const std::string id = viewer->id;
    viewer->peer = room.media->addPeer(id, media::PeerOptions{join.name, true, std::nullopt, request.tier}, *viewer);
    startJoinTimer(*viewer);
    m_participants.emplace(id, viewer.get());
    room.viewers.push_back(std::move(viewer));
    g_info("viewer %s watches room '%s' (%zu viewers)", id.c_str(), request.room.c_str(), room.viewers.size());
    // Its ICE servers; nothing else about the room: it is no member.
    sendTo(id, protocol::Joined{
                   id, request.room, {}, protocol::iceServersFor(m_config, id, g_get_real_time() / G_USEC_PER_SEC)});
    return id;
}

std::size_t Rooms::viewerCount() const noexcept {
    std::size_t n = 0;
    for (const auto& [name, room] : m_rooms) n += room->viewers.size();
    return n;
}

Rooms::Admission Rooms::admit(const protocol::Join& join) {
    if (m_config.tokenSecret.empty()) {
        if (!m_config.joinToken.empty() && !tokensEqual(join.token.value_or(""), m_config.joinToken)) {
            throw Error(ErrorCode::Unauthorized, join.token ? "invalid token" : "this server needs a token to join");
        }
        return {};
    }
    if (!join.token) throw Error(ErrorCode::Unauthorized, "this server needs a room token to join");
    Admission admission{auth::verifyRoomToken(*join.token, m_config.tokenSecret), *join.token};
    const std::int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    protocol::checkRoomToken(*admission.claims, join.room, now);
    std::erase_if(m_revokedTokens, [now](const auto& revoked) { return revoked.second < now; });
    if (m_revokedTokens.contains(admission.token)) {
        throw Error(ErrorCode::Unauthorized, "token: revoked (its holder was removed from the room)");
    }
    return admission;
}

void Rooms::offer(const std::string& participantId, const std::string& sdp) {
    Entry entry(*this, Entry::From::Client);
    Participant& participant = participantOrThrow(participantId);
    // A viewer's media would be decoded and given a tile: it sends none.
    if (participant.viewer && protocol::offerMedia(sdp).sends)
        throw Error(ErrorCode::BadRequest, "a viewer's offer receives only: audio and video recvonly");
    if (const auto& claims = participant.admission.claims) {
        // Refused rather than answered with fewer directions: the client
        // learns at once what its token allows, and no half-call starts.
        const protocol::OfferMedia media = protocol::offerMedia(sdp);
        if (media.sends && !claims->grants.publish) {
            throw Error(ErrorCode::Unauthorized,
                        "token: no publish grant; offer audio and video recvonly (join with receiveOnly)");
        }
        if (media.receives && !claims->grants.subscribe) {
            throw Error(ErrorCode::Unauthorized, "token: no subscribe grant; offer audio and video sendonly");
        }
    }
    participant.peer->handleOffer(sdp);
    // From here on the media's own ICE timeout applies (docs/protocol.md).
    participant.cancelJoinTimer();
}

// A joiner that never offers holds a place in its room (room-full) and its
// room's encoders: it gets limits.joinTimeoutSeconds to send an offer.
void Rooms::startJoinTimer(Participant& participant) {
    const unsigned seconds = m_config.limits.joinTimeoutSeconds;
    if (seconds == 0) return;
    struct Pending {
        Rooms* rooms;
        std::string id;
    };
    participant.joinTimer = g_timeout_add_seconds_full(
        G_PRIORITY_DEFAULT, seconds,
        // Thread: main. Removing the participant removes this source, so a
        // participant indexed under the id is the one it was made for.
        [](gpointer data) noexcept -> gboolean {
            const auto* pending = static_cast<Pending*>(data);
            glib::guarded("join timeout", [pending] { pending->rooms->onJoinTimeout(pending->id); });
            return G_SOURCE_REMOVE;
        },
        new Pending{this, participant.id}, [](gpointer data) noexcept { delete static_cast<Pending*>(data); });
}

void Rooms::onJoinTimeout(const std::string& participantId) {
    Entry entry(*this, Entry::From::Client);
    const auto found = m_participants.find(participantId);
    if (found == m_participants.end()) return;
    found->second->joinTimer = 0; // the source is being removed by returning
    remove(participantId, Removal::TimedOut,
           "no offer within " + std::to_string(m_config.limits.joinTimeoutSeconds) + " s of joining");
}

void Rooms::candidate(const std::string& participantId, const std::optional<protocol::IceCandidate>& candidate) {
    Entry entry(*this, Entry::From::Client);
    participantOrThrow(participantId).peer->addRemoteCandidate(candidate);
}

void Rooms::setAudioOnly(const std::string& participantId, bool audioOnly) {
    Entry entry(*this, Entry::From::Client);
    participantOrThrow(participantId).peer->setAudioOnly(audioOnly);
}

void Rooms::leave(const std::string& participantId) {
    Entry entry(*this, Entry::From::Client);
    remove(participantId, Removal::Left, "left");
}

std::vector<api::RoomSummary> Rooms::list() const {
    std::vector<api::RoomSummary> out;
    out.reserve(m_rooms.size());
    for (const auto& [name, room] : m_rooms) {
        out.push_back({name, static_cast<unsigned>(room->participants.size()), room->layout,
                       room->recording.has_value(), static_cast<unsigned>(room->viewers.size())});
    }
    return out;
}

api::RoomDetail Rooms::detail(const std::string& name) const {
    const Room& room = roomOrThrow(name);
    api::RoomDetail out{room.name, room.layout, room.recording.has_value(), {}, {}, room.recordingError, {}, {}};
    if (room.recording) out.recordingFile = room.recording->metadata.file;
    out.live = liveSummary(room);
    const auto summary = [](const Participant& participant) {
        const media::PeerStats stats = participant.peer->stats();
        return api::ParticipantSummary{participant.id,
                                       participant.name,
                                       stats.tier,
                                       participant.receiveOnly,
                                       stats.bitrateIn,
                                       stats.bitrateOut,
                                       stats.packetsLost,
                                       stats.connected,
                                       stats.sendCodec,
                                       stats.receiveCodec,
                                       stats.estimatedBps,
                                       stats.decodedSize,
                                       participant.cameraSendSize,
                                       stats.dataChannels};
    };
    for (const auto& participant : room.participants) out.participants.push_back(summary(*participant));
    for (const auto& viewer : room.viewers) out.viewers.push_back(summary(*viewer));
    return out;
}

void Rooms::kick(const std::string& room, const std::string& participantId) {
    Entry entry(*this, Entry::From::Client);
    roomOrThrow(room);
    const auto found = m_participants.find(participantId);
    if (found == m_participants.end() || found->second->room != room) {
        throw Error(ErrorCode::NotFound, "no participant '" + participantId + "' in room '" + room + "'");
    }
    // The token that let them in must not let them straight back: refused
    // until it would have expired anyway.
    if (const Admission& admission = found->second->admission; admission.claims) {
        m_revokedTokens.emplace(admission.token, admission.claims->exp + protocol::kClockSkewSeconds);
    }
    remove(participantId, Removal::Kicked, "removed by an administrator");
}

void Rooms::setLayout(const std::string& name, const api::LayoutRequest& request) {
    Entry entry(*this, Entry::From::Client);
    Room& room = roomOrThrow(name);
    protocol::LayoutSpec spec;
    const bool named = !request.spec;
    if (request.spec) {
        protocol::checkCanvasArea(*request.spec, m_config.limits.maxCanvasPixels);
        spec = *request.spec;
    } else if (request.name) {
        std::optional<protocol::LayoutSpec> found = m_layouts.find(*request.name);
        if (!found) throw Error(ErrorCode::BadRequest, "unknown layout '" + *request.name + "'");
        spec = std::move(*found);
    } else {
        throw Error(ErrorCode::BadRequest, "layout: missing");
    }
    // An explicit choice wins over the automatic presentation layout.
    room.beforeShare.reset();
    applyLayout(room, spec, named);
}

std::vector<std::string> Rooms::reloadLayouts() {
    Entry entry(*this, Entry::From::Client);
    m_layouts.reload(); // throws, naming the bad file, before anything changes
    // Names first: applying a layout broadcasts, and a send may make anyone
    // (even a whole room) leave.
    std::vector<std::string> names;
    for (const auto& [name, room] : m_rooms) names.push_back(name);
    for (const std::string& name : names) {
        const auto found = m_rooms.find(name);
        if (found == m_rooms.end()) continue;
        Room& room = *found->second;
        if (!room.namedLayout) continue;
        const std::optional<protocol::LayoutSpec> spec = m_layouts.find(room.layout);
        if (!spec || *spec == room.spec) continue;
        g_info("room '%s': layout '%s' changed on reload", name.c_str(), room.layout.c_str());
        try {
            applyLayout(room, *spec, true);
        } catch (const Error& e) {
            // One room's media refusing must not stop the others getting theirs.
            g_warning("room '%s': cannot apply the reloaded layout '%s': %s", name.c_str(), spec->name.c_str(),
                      e.what());
        }
    }
    return m_layouts.names();
}

void Rooms::applyLayout(Room& room, const protocol::LayoutSpec& spec, bool named) {
    // Media first: if it rejects the spec, the room keeps its layout and nobody is told.
    room.media->setLayout(spec);
    room.layout = spec.name;
    room.spec = spec;
    room.namedLayout = named;
    g_info("room '%s' layout is now '%s'", room.name.c_str(), spec.name.c_str());
    broadcast(room.name, protocol::LayoutChanged{spec.name});
}

void Rooms::onScreenShareChanged(Room& room, const std::string& participantId, bool active) {
    Entry entry(*this, Entry::From::Media);
    if (!isLive(room)) return;
    const bool wasSharing = !room.sharing.empty();
    if (active)
        room.sharing.insert(participantId);
    else
        room.sharing.erase(participantId);
    const bool sharing = !room.sharing.empty();
    if (sharing == wasSharing) return;
    // While a share is live the room shows it large (docs/protocol.md, Media);
    // when the last one ends the previous layout comes back.
    if (sharing) {
        auto presentation = m_layouts.find("presentation");
        if (!presentation || room.layout == "presentation") return;
        room.beforeShare = room.layout;
        applyLayout(room, *presentation, true);
    } else if (room.beforeShare) {
        auto previous = m_layouts.find(*room.beforeShare);
        room.beforeShare.reset();
        if (previous) applyLayout(room, *previous, true);
    }
}

MetricsSnapshot Rooms::metrics() const {
    MetricsSnapshot out;
    out.rooms.reserve(m_rooms.size());
    for (const auto& [name, room] : m_rooms) {
        MetricsSnapshot::Room& entry =
            out.rooms.emplace_back(MetricsSnapshot::Room{name,
                                                         room->media->stats(),
                                                         {},
                                                         room->recording.has_value(),
                                                         liveSummary(*room),
                                                         static_cast<unsigned>(room->viewers.size())});
        for (const auto& participant : room->participants) {
            entry.participants.push_back({participant->id, participant->peer->stats()});
        }
    }
    out.roomPipelines = m_rooms.size() + m_closingRooms.size() + m_deadRooms.size() + m_stoppingRooms.size();
    out.recordingErrors = m_recordingErrors;
    out.liveFailures = m_liveFailures;
    return out;
}

namespace {

// A UTC time (milliseconds since the epoch) in a g_date_time_format() format.
std::string formatUtc(std::int64_t unixMs, const char* format) {
    GDateTime* time = g_date_time_new_from_unix_utc(unixMs / 1000);
    if (time == nullptr) return {};
    gchar* text = g_date_time_format(time, format);
    std::string out = text != nullptr ? text : "";
    g_free(text);
    g_date_time_unref(time);
    return out;
}

std::string isoUtc(std::int64_t unixMs) { return formatUtc(unixMs, "%Y-%m-%dT%H:%M:%SZ"); }

} // namespace

std::string recordingStem(std::string_view room, std::int64_t unixMs) {
    constexpr std::size_t kMaxRoomChars = 64;
    std::string stem;
    for (const char c : room.substr(0, kMaxRoomChars)) {
        stem += g_ascii_isalnum(c) || c == '-' || c == '_' ? c : '_';
    }
    if (stem.empty()) stem = "room";
    return stem + formatUtc(unixMs, "-%Y%m%dT%H%M%SZ");
}

std::string Rooms::startRecording(const std::string& name, const std::optional<std::string>& format) {
    Entry entry(*this, Entry::From::Client);
    Room& room = roomOrThrow(name);
    if (room.recording) {
        throw Error(ErrorCode::Conflict, room.recording->stopping ? "room '" + name + "' is finalising a recording"
                                                                  : "room '" + name + "' is already recording");
    }
    const std::string chosen = format.value_or(m_config.recording.format);
    if (!isRecordingFormat(chosen)) throw Error(ErrorCode::BadRequest, "format: must be \"mkv\", \"webm\" or \"mp4\"");
    auto failStart = [&](const std::string& why) {
        ++m_recordingErrors;
        room.recordingError = why;
        g_warning("room '%s': recording did not start: %s", name.c_str(), why.c_str());
        return Error(ErrorCode::Internal, why);
    };
    // Absolute, so that the API and the metadata name the file unambiguously.
    gchar* dir = g_canonicalize_filename(m_config.recording.dir.c_str(), nullptr);
    const std::string directory = dir;
    g_free(dir);
    // Writable now, not only when the first media reaches the file (that
    // would fail later, from the bus): permissions, a read-only file system
    // and an immutable directory (which stops root too) answer 500 at once.
    if (g_mkdir_with_parents(directory.c_str(), 0750) != 0 || g_access(directory.c_str(), W_OK) != 0) {
        throw failStart("recording directory " + directory + ": " + g_strerror(errno));
    }
    const std::int64_t nowMs = g_get_real_time() / 1000;
    // The server makes the name (never the client): room name + UTC time, and
    // a counter if that second already has a recording.
    std::string stem = recordingStem(name, nowMs);
    for (int n = 2; g_file_test((directory + "/" + stem + ".json").c_str(), G_FILE_TEST_EXISTS); ++n) {
        stem = recordingStem(name, nowMs) + "-" + std::to_string(n);
    }
    std::string file;
    try {
        file = room.media->startRecording({directory, stem, chosen});
    } catch (const Error& e) {
        if (e.code() != ErrorCode::Internal) throw;
        throw failStart(e.what());
    }
    Room::Recording recording;
    recording.metadataPath = directory + "/" + stem + ".json";
    recording.startMonotonicUs = g_get_monotonic_time();
    recording.metadata.room = name;
    recording.metadata.format = chosen;
    recording.metadata.file = file;
    recording.metadata.started = isoUtc(nowMs);
    recording.metadata.startedUnixMs = nowMs;
    for (const auto& participant : room.participants) {
        recording.metadata.timeline.push_back({0.0, "present", participant->id, participant->name});
    }
    room.recording = std::move(recording);
    room.recordingError.clear();
    saveRecordingMetadata(room);
    g_info("room '%s': recording to %s", name.c_str(), file.c_str());
    // Participants are told they are being recorded (docs/protocol.md, `recording`).
    broadcast(name, protocol::RecordingChanged{true});
    return file;
}

void Rooms::stopRecording(const std::string& name, std::function<void(const media::RecordingResult&)> done) {
    Entry entry(*this, Entry::From::Client);
    Room& room = roomOrThrow(name);
    if (!room.recording) throw Error(ErrorCode::Conflict, "room '" + name + "' is not recording");
    room.recording->waiters.push_back(std::move(done));
    beginStopRecording(room);
}

void Rooms::stopAllRecordings(std::function<void()> done) {
    Entry entry(*this, Entry::From::Client);
    std::vector<Room*> recording;
    for (const auto& [name, room] : m_rooms) {
        if (room->recording) recording.push_back(room.get());
    }
    for (const auto& room : m_closingRooms) {
        if (room->recording) recording.push_back(room.get());
    }
    if (recording.empty()) {
        done();
        return;
    }
    auto remaining = std::make_shared<std::size_t>(recording.size());
    auto finished = std::make_shared<std::function<void()>>(std::move(done));
    for (Room* room : recording) {
        room->recording->waiters.push_back([remaining, finished](const media::RecordingResult&) {
            if (--*remaining == 0) (*finished)();
        });
        beginStopRecording(*room);
    }
}

void Rooms::beginStopRecording(Room& room) {
    if (room.recording->stopping) return;
    room.recording->stopping = true;
    // The media answers later, on the main context, and never after it is
    // destroyed: the room outlives its media, so the reference stays valid.
    room.media->stopRecording(
        [this, &room](const media::RecordingResult& result) { onRecordingStopped(room, result); });
}

void Rooms::onRecordingStopped(Room& room, const media::RecordingResult& result) {
    Entry entry(*this, Entry::From::Media);
    if (!room.recording) return;
    room.recording->metadata.state = result.error.empty() ? "finished" : "failed";
    room.recording->metadata.error = result.error;
    room.recording->metadata.duration = result.duration;
    room.recording->metadata.stopped = isoUtc(g_get_real_time() / 1000);
    saveRecordingMetadata(room);
    const auto waiters = std::move(room.recording->waiters);
    room.recording.reset();
    if (!result.error.empty()) {
        ++m_recordingErrors;
        room.recordingError = result.error;
        g_warning("room '%s': %s", room.name.c_str(), result.error.c_str());
    } else {
        g_info("room '%s': recording %s finished (%.1f s)", room.name.c_str(), result.file.c_str(), result.duration);
    }
    for (const auto& waiter : waiters) waiter(result);
    // A closing room's name may belong to a new room by now: only a live room is told.
    if (isLive(room)) broadcast(room.name, protocol::RecordingChanged{false});
    releaseClosingHold(room);
}

void Rooms::releaseClosingHold(Room& room) {
    // A room nobody is in any more goes once its media finished.
    const auto closing =
        std::find_if(m_closingRooms.begin(), m_closingRooms.end(), [&](const auto& r) { return r.get() == &room; });
    if (closing == m_closingRooms.end() || --room.closingHolds > 0) return;
    m_deadRooms.push_back(std::move(*closing));
    m_closingRooms.erase(closing);
}

void Rooms::onRecordingSegment(Room& room, const std::string& path, double offset) {
    if (!room.recording) return;
    room.recording->metadata.segments.push_back({path, offset});
    saveRecordingMetadata(room);
}

void Rooms::onRecordingFailed(Room& room, const std::string& reason) {
    // The media removed its recorder; there is nothing to stop.
    onRecordingStopped(room, media::RecordingResult{room.recording ? room.recording->metadata.file : "", 0, reason});
}

void Rooms::recordEvent(Room& room, const std::string& event, const std::string& id, const std::string& name) {
    if (!room.recording || room.recording->stopping) return;
    const double offset =
        static_cast<double>(g_get_monotonic_time() - room.recording->startMonotonicUs) / G_USEC_PER_SEC;
    room.recording->metadata.timeline.push_back({offset, event, id, name});
    saveRecordingMetadata(room);
}

void Rooms::saveRecordingMetadata(const Room& room) {
    // Written whole and renamed into place: after a crash the file is the
    // last complete version, never half of one.
    const std::string text = api::serialize(room.recording->metadata);
    GError* error = nullptr;
    if (!g_file_set_contents(room.recording->metadataPath.c_str(), text.c_str(), static_cast<gssize>(text.size()),
                             &error)) {
        g_warning("room '%s': cannot write %s: %s", room.name.c_str(), room.recording->metadataPath.c_str(),
                  error->message);
        g_error_free(error);
    }
}

void Rooms::onAnswer(Participant& participant, const std::string& sdp) {
    Entry entry(*this, Entry::From::Media);
    // A removed peer may still deliver what it had queued: drop it.
    if (isLive(participant)) sendTo(participant.id, protocol::Answer{sdp});
}

void Rooms::onLocalCandidate(Participant& participant, const std::optional<protocol::IceCandidate>& candidate) {
    Entry entry(*this, Entry::From::Media);
    if (isLive(participant)) sendTo(participant.id, protocol::Candidate{candidate});
}

void Rooms::onAudioOnly(Participant& participant, bool audioOnly, const std::string& reason) {
    Entry entry(*this, Entry::From::Media);
    if (!isLive(participant)) return;
    sendTo(participant.id, protocol::AudioOnly{audioOnly, reason});
}

void Rooms::onPeerFailed(Participant& participant, const std::string& reason) {
    Entry entry(*this, Entry::From::Media);
    if (!isLive(participant)) return;
    g_warning("participant %s in room '%s': media failed: %s", participant.id.c_str(), participant.room.c_str(),
              reason.c_str());
    remove(participant.id, Removal::Failed, reason);
}

namespace {

// Transfers one participant may have started and not ended at once; the web
// client sends one file at a time.
constexpr std::size_t kMaxTransfersPerSender = 16;

} // namespace

// What the others get for a message on a participant's data channel
// (docs/protocol.md "Data channels"; the file framing is docs/datachannels.md):
// chat is re-issued with the sender and a timestamp; file chunks (binary)
// pass byte for byte; file control messages gain the sender. A transfer id
// belongs to whoever sent its `start` until its `end` or `cancel`: nobody
// else may send chunks or control messages for it. Throws Error for a
// message to drop; nullopt: nothing to relay.
std::optional<Rooms::Relay> Rooms::relayed(Room& room, const Participant& from, const media::DataMessage& message) {
    if (message.label == "chat" && !message.binary) {
        const std::string text = protocol::parseChat(message.data);
        return Relay{{"chat", false, protocol::serializeChat(from.id, from.name, text, g_get_real_time() / 1000)}, {}};
    }
    if (message.label != "file") return std::nullopt;
    const auto ownedByOther = [&](const std::string& id) {
        const auto owner = room.transfers.find(id);
        return owner != room.transfers.end() && owner->second != from.id;
    };
    if (message.binary) {
        const std::string id = protocol::chunkTransferId(message.data);
        const auto owner = room.transfers.find(id);
        if (owner == room.transfers.end() || owner->second != from.id)
            throw Error(ErrorCode::Forbidden, "file: a chunk of transfer '" + id + "', which it did not start");
        return Relay{message, id, false};
    }
    protocol::FileControl control = protocol::annotateFileControl(message.data, from.id, from.name);
    if (ownedByOther(control.id))
        throw Error(ErrorCode::Forbidden, "file: transfer '" + control.id + "' belongs to another participant");
    if (control.type == "start") {
        const auto started = std::count_if(room.transfers.begin(), room.transfers.end(),
                                           [&](const auto& t) { return t.second == from.id; });
        if (!room.transfers.contains(control.id) && static_cast<std::size_t>(started) >= kMaxTransfersPerSender)
            throw Error(ErrorCode::RateLimited, "file: more than 16 transfers at once");
        room.transfers[control.id] = from.id;
    }
    const bool ends = control.type == "end" || control.type == "cancel";
    if (ends) room.transfers.erase(control.id);
    return Relay{{"file", false, std::move(control.relayed)}, control.id, ends};
}

// A receiver that does not take data as fast as it comes (a slow link, a
// stalled client) must not make the server buffer without bound, nor slow
// the others: past limits.dataBufferedBytes waiting on its channel, it
// loses the message, and for a file the rest of that transfer, which it is
// told is cancelled. The call and the other receivers are untouched.
void Rooms::relayTo(Participant& receiver, const std::string& fromId, const std::string& fromName, const Relay& relay) {
    if (receiver.slowFor.contains(relay.transfer)) {
        if (relay.ends) receiver.slowFor.erase(relay.transfer);
        return;
    }
    const std::uint64_t waiting = receiver.peer->dataBuffered(relay.message.label);
    // A transfer's end still goes: it is small and closes what was sent.
    if (waiting <= m_config.limits.dataBufferedBytes || relay.ends) {
        receiver.peer->sendData(relay.message);
        return;
    }
    const std::string why = "receiver over " + std::to_string(m_config.limits.dataBufferedBytes) + " bytes behind";
    g_info("%s: %s message from %s dropped: %s", receiver.id.c_str(), relay.message.label.c_str(), fromId.c_str(),
           why.c_str());
    if (relay.transfer.empty()) return;
    receiver.slowFor.insert(relay.transfer);
    receiver.peer->sendData({"file", false, protocol::serverCancel(relay.transfer, fromId, fromName, why)});
}

void Rooms::forgetEndedTransfers(Room& room) {
    for (const auto& participant : room.participants)
        std::erase_if(participant->slowFor, [&](const std::string& id) { return !room.transfers.contains(id); });
}

// Over its byte budget, the sender's message is dropped, and a transfer it
// belongs to is cancelled for the receivers (they would get a file with a
// hole otherwise); the sender hears it once per episode.
void Rooms::dropOverBudget(Room& room, Participant& from, const media::DataMessage& message) {
    std::optional<std::string> transfer;
    try {
        transfer = message.binary ? protocol::chunkTransferId(message.data)
                                  : protocol::annotateFileControl(message.data, from.id, from.name).id;
    } catch (const Error&) {
        // Not part of a transfer: just dropped.
    }
    const auto owner = transfer && message.label == "file" ? room.transfers.find(*transfer) : room.transfers.end();
    const bool cancel = owner != room.transfers.end() && owner->second == from.id;
    if (cancel) {
        room.transfers.erase(owner);
        forgetEndedTransfers(room);
    }
    const bool tell = !from.dataLimited;
    from.dataLimited = true;
    const std::string id = from.id, name = from.name, roomName = room.name;
    const std::string why = "over " + std::to_string(m_config.limits.dataBytesPerSecond) + " bytes/s";
    g_info("%s: data-channel message dropped: %s", id.c_str(), why.c_str());
    if (cancel) {
        const media::DataMessage notice{"file", false, protocol::serverCancel(*transfer, id, name, why)};
        forEachOther(roomName, id, [&](Participant& other) { other.peer->sendData(notice); });
    }
    if (tell) {
        sendTo(id, protocol::ErrorMessage{
                       ErrorCode::RateLimited,
                       "data channel: sending " + why +
                           (cancel ? "; transfer '" + *transfer + "' was cancelled" : "; a message was dropped")});
    }
}

void Rooms::onDataMessage(Participant& participant, const media::DataMessage& message) {
    Entry entry(*this, Entry::From::Media);
    if (!isLive(participant)) return;
    Room& room = *m_rooms.find(participant.room)->second;
    if (!participant.dataBudget.take(g_get_monotonic_time(), message.data.size())) {
        dropOverBudget(room, participant, message);
        return;
    }
    participant.dataLimited = false;
    std::optional<Relay> relay;
    try {
        relay = relayed(room, participant, message);
    } catch (const Error& e) {
        // A data channel has no error reply: drop it, as the web client drops what it cannot read.
        g_debug("%s: dropped a message on '%s': %s", participant.id.c_str(), message.label.c_str(), e.what());
        return;
    }
    if (!relay) {
        g_debug("%s: ignored a message on unknown channel '%s'", participant.id.c_str(), message.label.c_str());
        return;
    }
    const std::string fromId = participant.id, fromName = participant.name;
    forEachOther(participant.room, participant.id,
                 [&](Participant& other) { relayTo(other, fromId, fromName, *relay); });
}

void Rooms::onSendSize(Room& room, const std::string& participantId, const protocol::SendSize& size) {
    Entry entry(*this, Entry::From::Media);
    const auto found = m_participants.find(participantId);
    if (!isLive(room) || found == m_participants.end() || found->second->room != room.name) return;
    if (size.source == "camera") found->second->cameraSendSize = size;
    sendTo(participantId, size);
}

void Rooms::onOnScreen(Room& room, const protocol::OnScreen& onScreen) {
    Entry entry(*this, Entry::From::Media);
    if (!isLive(room)) return;
    room.onScreen = onScreen;
    broadcast(room.name, onScreen);
}

void Rooms::onSpeakerChanged(Room& room, const std::string& participantId) {
    Entry entry(*this, Entry::From::Media);
    if (!isLive(room) || room.speaker == participantId) return;
    room.speaker = participantId;
    broadcast(room.name, protocol::Speaker{participantId});
}

Rooms::Room& Rooms::roomOrThrow(const std::string& name) const {
    const auto found = m_rooms.find(name);
    if (found == m_rooms.end()) throw Error(ErrorCode::NotFound, "no room '" + name + "'");
    return *found->second;
}

Rooms::Participant& Rooms::participantOrThrow(const std::string& id) const {
    const auto found = m_participants.find(id);
    if (found == m_participants.end()) throw Error(ErrorCode::NotJoined, "not in a room");
    return *found->second;
}

bool Rooms::isLive(const Participant& participant) const {
    const auto found = m_participants.find(participant.id);
    return found != m_participants.end() && found->second == &participant;
}

bool Rooms::isLive(const Room& room) const {
    const auto found = m_rooms.find(room.name);
    return found != m_rooms.end() && found->second.get() == &room;
}

std::string Rooms::newParticipantId() {
    // Random rather than a counter: ids are seen by every participant and
    // should say nothing about how many people used the server.
    for (;;) {
        char id[16];
        std::snprintf(id, sizeof id, "p%08x", g_random_int());
        if (!m_participants.contains(id)) return id;
    }
}

void Rooms::remove(const std::string& participantId, Removal how, const std::string& reason) {
    const auto found = m_participants.find(participantId);
    if (found == m_participants.end()) return;
    Participant& participant = *found->second;
    ClientSink& sink = participant.sink;
    const std::string roomName = participant.room;
    const bool announced = participant.announced;
    const auto roomEntry = m_rooms.find(roomName);
    Room& room = *roomEntry->second;
    // Its transfers' ids are free again; receivers end them on participant-left.
    std::erase_if(room.transfers, [&](const auto& t) { return t.second == participantId; });
    forgetEndedTransfers(room);

    // Unindex everything before telling anyone, so that whatever a send
    // triggers sees the participant gone.
    m_participants.erase(found);
    participant.cancelJoinTimer();
    auto& list = participant.viewer ? room.viewers : room.participants;
    const auto slot = std::find_if(list.begin(), list.end(), [&](const auto& p) { return p.get() == &participant; });
    const bool viewer = participant.viewer;
    m_deadParticipants.push_back(std::move(*slot));
    list.erase(slot);
    g_info("%s%s left room '%s' (%s; %zu left)", viewer ? "viewer " : "", participantId.c_str(), roomName.c_str(),
           reason.c_str(), room.participants.size());
    if (!viewer) recordEvent(room, "leave", participantId, participant.name);
    // Viewers hold no room open: they go with it, and are told once the
    // leaver's sink has been (below).
    std::vector<ClientSink*> viewerSinks;
    if (room.participants.empty()) {
        for (auto& v : room.viewers) {
            m_participants.erase(v->id);
            v->cancelJoinTimer();
            viewerSinks.push_back(&v->sink);
            m_deadParticipants.push_back(std::move(v));
        }
        room.viewers.clear();
    }
    if (room.participants.empty()) {
        // A stream of nobody stops with the room (docs/protocol.md, "Live streaming").
        stopAllLive(room);
        // The recording is finalised and the live streams end (HLS's last
        // segment and end tag) first; the room's media lives until then.
        const bool recording = room.recording.has_value();
        room.closingHolds = recording ? 1 : 0;
        if (room.media->whenLiveStopped([this, &room] {
                Entry media(*this, Entry::From::Media);
                releaseClosingHold(room);
            }))
            ++room.closingHolds;
        if (recording) beginStopRecording(room);
        if (room.closingHolds > 0) {
            m_closingRooms.push_back(std::move(roomEntry->second));
        } else {
            m_deadRooms.push_back(std::move(roomEntry->second));
        }
        m_rooms.erase(roomEntry);
        g_info("room '%s' closed", roomName.c_str());
    }

    switch (how) {
    case Removal::Left: break;
    case Removal::Kicked: sink.disconnect(reason); break;
    case Removal::Failed:
        sink.send(protocol::ErrorMessage{ErrorCode::Internal, "media failed: " + reason});
        sink.disconnect("media failed");
        break;
    case Removal::TimedOut:
        sink.send(protocol::ErrorMessage{ErrorCode::Timeout, reason});
        sink.disconnect("join timeout");
        break;
    }
    for (ClientSink* v : viewerSinks) v->disconnect("the room closed");
    if (announced) broadcast(roomName, protocol::ParticipantLeft{participantId});
}

void Rooms::sendTo(const std::string& participantId, const protocol::ServerMessage& message) {
    const auto found = m_participants.find(participantId);
    if (found != m_participants.end()) found->second->sink.send(message);
}

void Rooms::broadcast(const std::string& room, const protocol::ServerMessage& message, const std::string& except) {
    forEachOther(room, except, [&](Participant& participant) { participant.sink.send(message); });
}

void Rooms::forEachOther(const std::string& room, const std::string& except,
                         const std::function<void(Participant&)>& action) {
    const auto found = m_rooms.find(room);
    if (found == m_rooms.end()) return;
    // Ids, not pointers: the action may remove anyone, the room included.
    std::vector<std::string> ids;
    ids.reserve(found->second->participants.size());
    for (const auto& participant : found->second->participants) {
        if (participant->id != except) ids.push_back(participant->id);
    }
    for (const std::string& id : ids) {
        const auto live = m_participants.find(id);
        if (live != m_participants.end()) action(*live->second);
    }
}

void Rooms::collectGarbage() {
    if (m_depth != 0) return;
    // Peers first: they live in their room's pipeline. Moved out so that a
    // destructor that calls back finds consistent (empty) lists.
    auto participants = std::move(m_deadParticipants);
    auto rooms = std::move(m_deadRooms);
    m_deadParticipants.clear();
    m_deadRooms.clear();
    participants.clear();
    // Their media stops on the thread pool: on the main loop, a room's
    // pipeline going NULL (and its last peers' teardowns before it) held
    // every room's signaling for up to a second.
    for (auto& room : rooms) {
        Room* stopping = room.get();
        if (stopping->media->stop([this, stopping] { onMediaStopped(*stopping); }))
            m_stoppingRooms.push_back(std::move(room));
    }
    rooms.clear(); // those whose media stops as it goes
}

void Rooms::onMediaStopped(Room& room) {
    const auto found =
        std::find_if(m_stoppingRooms.begin(), m_stoppingRooms.end(), [&](const auto& r) { return r.get() == &room; });
    if (found == m_stoppingRooms.end()) return;
    m_stoppingRooms.erase(found);
    // glibc keeps what a room's streaming threads freed in their arenas:
    // without a trim, a server that once held a large call stays that size
    // (docs/architecture.md). Here, once the room's pipeline and everything
    // in it is gone, peers' teardowns on the pool included (the stop waited
    // for them).
    malloc_trim(0);
}

void Rooms::scheduleGarbageCollection() {
    if (m_collectSource != 0 || (m_deadParticipants.empty() && m_deadRooms.empty())) return;
    m_collectSource = g_idle_add(
        [](gpointer data) -> gboolean {
            auto* self = static_cast<Rooms*>(data);
            self->m_collectSource = 0;
            self->collectGarbage();
            return G_SOURCE_REMOVE;
        },
        this);
}

} // namespace tessera::room

namespace tessera::room {

std::vector<api::LiveTargetSummary> Rooms::liveSummary(const Room& room) const {
    std::vector<api::LiveTargetSummary> out;
    const std::int64_t now = g_get_monotonic_time();
    for (const auto& t : room.live) {
        const bool hls = t->media.kind == media::LiveTarget::Kind::Hls;
        api::LiveTargetSummary s;
        s.id = t->media.id;
        s.kind = hls ? "hls" : "rtmp";
        s.url = hls ? "/live/" + room.name + "/index.m3u8" : api::redactRtmpUrl(t->media.url);
        s.state = t->state == LiveTarget::State::Running    ? "running"
                  : t->state == LiveTarget::State::Retrying ? "retrying"
                                                            : "failed";
        s.retry = t->retry;
        s.reason = t->reason;
        s.failures = t->failures;
        if (t->state == LiveTarget::State::Retrying)
            s.retryInSeconds = static_cast<double>(std::max<std::int64_t>(0, t->retryAtUs - now)) / G_USEC_PER_SEC;
        out.push_back(std::move(s));
    }
    return out;
}

namespace {

// Makes the directory of a new HLS stream of the room,
// <live.dir>/<room>/<n> with n one more than any stream's there, and
// returns it. Every stream has a directory of its own: one stopped just
// before still ends its stream (its last segment and #EXT-X-ENDLIST) for up
// to the media's drain bound, and in a shared directory it wrote over the
// new stream's playlist and segments (the same names), ending it for its
// players. The newest earlier stream stays on disk (it may be draining);
// older ones are deleted, so a room keeps at most two streams' files.
std::string prepareHlsDirectory(const Config& config, const std::string& room) {
    namespace fs = std::filesystem;
    gchar* base = g_canonicalize_filename(config.live.dir.c_str(), nullptr);
    // The room name is 1-64 of [A-Za-z0-9_-] (checked at join): never a path.
    const fs::path roomDir = fs::path(base) / room;
    g_free(base);
    std::error_code error;
    fs::create_directories(roomDir, error);
    if (error) throw Error(ErrorCode::Internal, "live directory " + roomDir.string() + ": " + error.message());
    // The streams' directories, by number: names of 1-9 digits (anything
    // else there is not ours, and stays).
    std::vector<std::pair<unsigned long, fs::path>> streams;
    for (const fs::directory_entry& entry : fs::directory_iterator(roomDir, error)) {
        const std::string name = entry.path().filename().string();
        if (name.size() <= 9 && name.find_first_not_of("0123456789") == std::string::npos && entry.is_directory(error))
            streams.emplace_back(std::stoul(name), entry.path());
    }
    std::sort(streams.begin(), streams.end());
    for (std::size_t i = 0; i + 1 < streams.size(); ++i) fs::remove_all(streams[i].second, error);
    const fs::path directory = roomDir / std::to_string(streams.empty() ? 1 : streams.back().first + 1);
    if (!fs::create_directory(directory, error))
        throw Error(ErrorCode::Internal,
                    "live directory " + directory.string() + ": " + (error ? error.message() : "exists already"));
    if (g_access(directory.c_str(), W_OK) != 0)
        throw Error(ErrorCode::Internal, "live directory " + directory.string() + ": " + g_strerror(errno));
    return directory.string();
}

} // namespace

std::vector<api::LiveTargetSummary> Rooms::startLive(const std::string& name, const api::LiveStart& request) {
    Entry entry(*this, Entry::From::Client);
    Room& room = roomOrThrow(name);
    // Every target is checked before any starts: a refused request changes nothing.
    const auto existing = [&](media::LiveTarget::Kind kind, const std::string& url) -> LiveTarget* {
        for (const auto& t : room.live)
            if (t->media.kind == kind && (kind == media::LiveTarget::Kind::Hls || t->media.url == url)) return t.get();
        return nullptr;
    };
    std::vector<std::pair<media::LiveTarget::Kind, std::string>> wanted;
    if (request.hls) wanted.emplace_back(media::LiveTarget::Kind::Hls, "");
    for (const std::string& url : request.rtmp) {
        if (std::find(wanted.begin(), wanted.end(), std::pair{media::LiveTarget::Kind::Rtmp, url}) != wanted.end())
            throw Error(ErrorCode::BadRequest, "rtmp: " + api::redactRtmpUrl(url) + " is named twice");
        wanted.emplace_back(media::LiveTarget::Kind::Rtmp, url);
    }
    std::size_t added = 0;
    for (const auto& [kind, url] : wanted) {
        const LiveTarget* found = existing(kind, url);
        if (found && found->state != LiveTarget::State::Failed) {
            throw Error(ErrorCode::Conflict, "room '" + name + "' streams to " +
                                                 (url.empty() ? "HLS" : api::redactRtmpUrl(url)) + " already (" +
                                                 found->media.id + ")");
        }
        if (!found) ++added;
    }
    if (room.live.size() + added > m_config.live.maxTargets) {
        throw Error(ErrorCode::Conflict, "room '" + name + "' may have at most " +
                                             std::to_string(m_config.live.maxTargets) +
                                             " live targets (live.maxTargets); stop one first");
    }
    for (const auto& [kind, url] : wanted) {
        LiveTarget* target = existing(kind, url);
        if (target) {
            // A failed target named again starts afresh.
            target->retry = request.retry;
            target->reason.clear();
        } else {
            media::LiveTarget spec{kind == media::LiveTarget::Kind::Hls ? "hls"
                                                                        : "rtmp-" + std::to_string(++room.liveCounter),
                                   kind,
                                   url,
                                   {}};
            room.live.push_back(
                std::make_unique<LiveTarget>(std::move(spec), request.retry, m_config.live.retryMaxSeconds));
            target = room.live.back().get();
        }
        if (kind == media::LiveTarget::Kind::Hls) {
            room.endedHls.clear(); // emptied below: a new stream
            try {
                target->media.directory = prepareHlsDirectory(m_config, name);
            } catch (const Error&) {
                std::erase_if(room.live, [&](const auto& t) { return t.get() == target; });
                throw;
            }
        }
        attemptLive(room, *target);
    }
    return liveSummary(room);
}

void Rooms::attemptLive(Room& room, LiveTarget& target) {
    target.cancelRetry();
    target.backoff.started(g_get_monotonic_time() / 1000);
    try {
        room.media->startLive(target.media);
        target.state = LiveTarget::State::Running;
        g_info("room '%s': live target %s started (%s)", room.name.c_str(), target.media.id.c_str(),
               target.media.kind == media::LiveTarget::Kind::Hls ? target.media.directory.c_str()
                                                                 : api::redactRtmpUrl(target.media.url).c_str());
    } catch (const Error& e) {
        liveTargetFailed(room, target, e.what());
    }
}

void Rooms::liveTargetFailed(Room& room, LiveTarget& target, const std::string& reason) {
    ++target.failures;
    ++m_liveFailures;
    target.reason = reason;
    if (!target.retry) {
        target.state = LiveTarget::State::Failed;
        g_warning("room '%s': live target %s failed: %s", room.name.c_str(), target.media.id.c_str(), reason.c_str());
        return;
    }
    target.state = LiveTarget::State::Retrying;
    const std::int64_t waitMs = target.backoff.failed(g_get_monotonic_time() / 1000);
    target.retryAtUs = g_get_monotonic_time() + waitMs * 1000;
    g_warning("room '%s': live target %s failed: %s; reconnecting in %.1f s", room.name.c_str(),
              target.media.id.c_str(), reason.c_str(), static_cast<double>(waitMs) / 1000);
    struct Pending {
        Rooms* rooms;
        std::string room, id;
    };
    target.retryTimer = g_timeout_add_full(
        G_PRIORITY_DEFAULT, static_cast<guint>(waitMs),
        // Thread: main. Stopping or destroying the target removes this source.
        [](gpointer data) noexcept -> gboolean {
            const auto* pending = static_cast<Pending*>(data);
            glib::guarded("live retry", [pending] { pending->rooms->onLiveRetry(pending->room, pending->id); });
            return G_SOURCE_REMOVE;
        },
        new Pending{this, room.name, target.media.id},
        [](gpointer data) noexcept { delete static_cast<Pending*>(data); });
}

void Rooms::onLiveRetry(const std::string& name, const std::string& id) {
    Entry entry(*this, Entry::From::Client);
    const auto found = m_rooms.find(name);
    if (found == m_rooms.end()) return;
    Room& room = *found->second;
    for (const auto& t : room.live) {
        if (t->media.id != id) continue;
        t->retryTimer = 0; // the source is being removed by returning
        if (t->state == LiveTarget::State::Retrying) attemptLive(room, *t);
        return;
    }
}

void Rooms::onLiveFailed(Room& room, const std::string& id, const std::string& reason) {
    Entry entry(*this, Entry::From::Media);
    if (!isLive(room)) return;
    for (const auto& t : room.live) {
        // A target stopped meanwhile (or failed already) is not failed again.
        if (t->media.id == id && t->state == LiveTarget::State::Running) liveTargetFailed(room, *t, reason);
    }
}

std::vector<api::LiveTargetSummary> Rooms::stopLive(const std::string& name, const std::string& id) {
    Entry entry(*this, Entry::From::Client);
    Room& room = roomOrThrow(name);
    if (id.empty() && room.live.empty()) throw Error(ErrorCode::Conflict, "room '" + name + "' is not live");
    if (!id.empty() &&
        std::none_of(room.live.begin(), room.live.end(), [&](const auto& t) { return t->media.id == id; }))
        throw Error(ErrorCode::NotFound, "room '" + name + "' has no live target '" + id.substr(0, 64) + "'");
    std::erase_if(room.live, [&](const std::unique_ptr<LiveTarget>& t) {
        if (!id.empty() && t->media.id != id) return false;
        if (t->state == LiveTarget::State::Running) room.media->stopLive(t->media.id);
        if (t->media.kind == media::LiveTarget::Kind::Hls && t->state != LiveTarget::State::Failed)
            room.endedHls = t->media.directory;
        g_info("room '%s': live target %s stopped", name.c_str(), t->media.id.c_str());
        return true;
    });
    return liveSummary(room);
}

void Rooms::stopAllLive(Room& room) {
    for (const auto& t : room.live)
        if (t->state == LiveTarget::State::Running) room.media->stopLive(t->media.id);
    room.live.clear();
}

std::optional<std::string> Rooms::hlsDirectory(const std::string& name) const {
    const auto found = m_rooms.find(name);
    if (found == m_rooms.end()) return std::nullopt;
    for (const auto& t : found->second->live) {
        if (t->media.kind == media::LiveTarget::Kind::Hls && t->state != LiveTarget::State::Failed)
            return t->media.directory;
    }
    if (!found->second->endedHls.empty()) return found->second->endedHls;
    return std::nullopt;
}

} // namespace tessera::room
