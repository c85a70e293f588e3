// Rooms with fake media and fake clients: the signaling flow, membership,
// layouts and the lifetime of peers, without GStreamer.
#include <catch2/catch.hpp>

#include <glib.h>
#include <glib/gstdio.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "tessera/auth/jwt.h"
#include "tessera/room/layout_library.h"
#include "tessera/room/rooms.h"

namespace {

using namespace tessera;
namespace fs = std::filesystem;

// ---- Fake media ------------------------------------------------------------

class FakeRoomMedia;

class FakePeer final : public media::Peer {
public:
    FakePeer(FakeRoomMedia& room, std::string id, media::PeerOptions options, media::PeerListener& listener);
    ~FakePeer() override;

    void handleOffer(const std::string& sdp) override {
        const bool outer = !inCall;
        inCall = true;
        offers.push_back(sdp);
        if (onOffer) onOffer(sdp);
        if (outer) inCall = false;
    }
    void addRemoteCandidate(const std::optional<protocol::IceCandidate>& candidate) override {
        candidates.push_back(candidate);
    }
    void sendData(const media::DataMessage& message) override { dataSent.push_back(message); }
    std::uint64_t dataBuffered(const std::string& label) const override {
        const auto it = buffered.find(label);
        return it != buffered.end() ? it->second : 0;
    }
    media::PeerStats stats() const override { return peerStats; }
    void setAudioOnly(bool audioOnly) override { audioOnlyRequests.push_back(audioOnly); }

    static inline int alive = 0;
    // Set when a peer is destroyed from inside one of its own calls.
    static inline bool destroyedDuringCall = false;

    FakeRoomMedia& room;
    const std::string id;
    const media::PeerOptions options;
    media::PeerListener& listener;
    std::vector<std::string> offers;
    std::vector<std::optional<protocol::IceCandidate>> candidates;
    std::function<void(const std::string&)> onOffer;
    std::vector<media::DataMessage> dataSent;
    std::map<std::string, std::uint64_t> buffered; // dataBuffered by label: a slow receiver
    media::PeerStats peerStats;
    std::vector<bool> audioOnlyRequests;
    bool inCall = false;
};

class FakeRoomMedia final : public media::RoomMedia {
public:
    FakeRoomMedia(std::string name, media::RoomListener& listener) : name(std::move(name)), listener(listener) {
        ++alive;
    }
    ~FakeRoomMedia() override {
        --alive;
        // The room must destroy its peers first: they live in its pipeline.
        CHECK(peers.empty());
        // And stop its live targets: they are branches of it too.
        CHECK(live.empty());
    }

    std::unique_ptr<media::Peer> addPeer(const std::string& participantId, const media::PeerOptions& options,
                                         media::PeerListener& peerListener) override {
        if (failAddPeer) throw Error(ErrorCode::Internal, "no more pads");
        return std::make_unique<FakePeer>(*this, participantId, options, peerListener);
    }
    void setLayout(const protocol::LayoutSpec& spec) override {
        if (failSetLayout) throw Error(ErrorCode::BadRequest, "canvas too large");
        layouts.push_back(spec);
    }
    media::RoomStats stats() const override { return roomStats; }
    std::string startRecording(const media::RecordingRequest& request) override {
        if (recording) throw Error(ErrorCode::Conflict, "already");
        recording = request;
        return request.directory + "/" + request.stem + "." + request.format;
    }
    void stopRecording(std::function<void(const media::RecordingResult&)> done) override {
        if (!recording || stopDone) throw Error(ErrorCode::Conflict, "not recording");
        stopDone = std::move(done);
    }
    // Completes a pending stop, as the recorder's drained EOS would.
    void finishRecording(double duration, const std::string& error = {}) {
        REQUIRE(stopDone);
        auto done = std::move(stopDone);
        stopDone = nullptr;
        const std::string file = recording->directory + "/" + recording->stem + "." + recording->format;
        recording.reset();
        done({file, duration, error});
    }
    void startLive(const media::LiveTarget& target) override {
        if (failLive) throw Error(ErrorCode::Internal, "cannot start");
        REQUIRE(live.count(target.id) == 0);
        live[target.id] = target;
    }
    void stopLive(const std::string& id) override { live.erase(id); }

    static inline int alive = 0;
    static inline bool failAddPeer = false;
    bool failSetLayout = false;
    const std::string name;
    media::RoomListener& listener;
    std::map<std::string, FakePeer*> peers;
    std::vector<protocol::LayoutSpec> layouts;
    media::RoomStats roomStats;
    std::optional<media::RecordingRequest> recording;
    std::function<void(const media::RecordingResult&)> stopDone;
    bool failLive = false;
    std::map<std::string, media::LiveTarget> live; // attached targets by id
};

FakePeer::FakePeer(FakeRoomMedia& room, std::string id, media::PeerOptions options, media::PeerListener& listener)
    : room(room), id(std::move(id)), options(std::move(options)), listener(listener) {
    ++alive;
    room.peers[this->id] = this;
}

FakePeer::~FakePeer() {
    --alive;
    if (inCall) destroyedDuringCall = true;
    room.peers.erase(id);
}

class FakeEngine final : public media::Engine {
public:
    std::unique_ptr<media::RoomMedia> createRoom(const std::string& room, media::RoomListener& listener) override {
        if (failCreateRoom) throw Error(ErrorCode::Internal, "no encoder");
        ++roomsCreated;
        auto media = std::make_unique<FakeRoomMedia>(room, listener);
        last = media.get();
        rooms[room] = media.get();
        return media;
    }
    // The live media of a room (the last one created under that name).
    FakeRoomMedia& room(const std::string& name) {
        REQUIRE(rooms.count(name) == 1);
        return *rooms[name];
    }
    FakePeer& peer(const std::string& roomName, const std::string& id) {
        FakeRoomMedia& media = room(roomName);
        REQUIRE(media.peers.count(id) == 1);
        return *media.peers[id];
    }

    bool failCreateRoom = false;
    int roomsCreated = 0;
    FakeRoomMedia* last = nullptr;
    std::map<std::string, FakeRoomMedia*> rooms; // not owned; may dangle after a room closes
};

// ---- Fake client -----------------------------------------------------------

class FakeSink final : public room::ClientSink {
public:
    void send(const protocol::ServerMessage& message) override {
        messages.push_back(message);
        // A copy: the handler may replace itself.
        if (auto handler = onSend) handler(message);
    }
    void disconnect(const std::string& reason) override {
        disconnected = true;
        disconnectReason = reason;
    }

    template <typename T>
    std::vector<T> all() const {
        std::vector<T> out;
        for (const auto& message : messages) {
            if (const T* typed = std::get_if<T>(&message)) out.push_back(*typed);
        }
        return out;
    }
    template <typename T>
    T last() const {
        const auto found = all<T>();
        REQUIRE_FALSE(found.empty());
        return found.back();
    }
    template <typename T>
    std::size_t count() const {
        return all<T>().size();
    }

    std::vector<protocol::ServerMessage> messages;
    std::function<void(const protocol::ServerMessage&)> onSend;
    bool disconnected = false;
    std::string disconnectReason;
};

// ---- Fixture ---------------------------------------------------------------

// Rooms logs failures (as it should); the tests cause them on purpose.
[[maybe_unused]] const bool quietRoomLogs = [] {
    g_log_set_handler(
        "tessera-room", static_cast<GLogLevelFlags>(G_LOG_LEVEL_MASK & ~G_LOG_LEVEL_ERROR & ~G_LOG_LEVEL_CRITICAL),
        [](const gchar*, GLogLevelFlags, const gchar*, gpointer) {}, nullptr);
    return true;
}();

// Runs pending idle sources: Rooms destroys peers removed by a media callback from one.
void drainMainContext() {
    while (g_main_context_iteration(nullptr, FALSE)) {}
}

protocol::Join joinMessage(const std::string& room, const std::string& name) {
    protocol::Join join;
    join.room = room;
    join.name = name;
    return join;
}

struct Fixture {
    Fixture() : Fixture(defaultConfig()) {}
    explicit Fixture(Config c)
        : config(std::move(c)), layouts(TESSERA_SOURCE_DIR "/data/layouts"),
          rooms(std::make_unique<room::Rooms>(config, engine, layouts)) {
        FakePeer::alive = 0;
        FakePeer::destroyedDuringCall = false;
        FakeRoomMedia::alive = 0;
        FakeRoomMedia::failAddPeer = false;
    }
    ~Fixture() {
        rooms.reset();
        CHECK(FakePeer::alive == 0);
        CHECK(FakeRoomMedia::alive == 0);
    }

    static Config defaultConfig() {
        Config c;
        c.maxParticipants = 3;
        protocol::IceServer stun;
        stun.urls = {"stun:stun.example.org:3478"};
        c.iceServers = {stun};
        return c;
    }

    std::string join(const std::string& room, const std::string& name, FakeSink& sink) {
        return rooms->join(joinMessage(room, name), sink);
    }

    Config config;
    FakeEngine engine;
    room::LayoutLibrary layouts;
    std::unique_ptr<room::Rooms> rooms;
};

// A scratch directory, removed with its files.
struct TempDir {
    TempDir() {
        gchar* made = g_dir_make_tmp("tessera-layouts-XXXXXX", nullptr);
        REQUIRE(made != nullptr);
        path = made;
        g_free(made);
    }
    ~TempDir() { fs::remove_all(path); }
    void write(const std::string& name, const std::string& text) const { std::ofstream(path / name) << text; }
    fs::path path;
};

std::string layoutJson(const std::string& name) {
    return R"({"name": ")" + name + R"(", "rest": {"x": 0, "y": 0, "w": 1, "h": 1}})";
}

} // namespace

// ---- Join ------------------------------------------------------------------

TEST_CASE("join: the joiner gets joined with the others and the ICE servers", "[rooms]") {
    Fixture f;
    FakeSink alice, bob;
    const std::string a = f.join("r1", "Alice", alice);
    CHECK(!a.empty());

    const auto joined = alice.last<protocol::Joined>();
    CHECK(joined.id == a);
    CHECK(joined.room == "r1");
    CHECK(joined.participants.empty());
    REQUIRE(joined.iceServers.size() == 1);
    CHECK(joined.iceServers[0].urls == std::vector<std::string>{"stun:stun.example.org:3478"});
    // `joined` comes first, then the room's current layout.
    REQUIRE(std::holds_alternative<protocol::Joined>(alice.messages.front()));
    CHECK(alice.last<protocol::LayoutChanged>().layout == "grid");

    const std::string b = f.join("r1", "Bob", bob);
    CHECK(b != a);
    const auto bobJoined = bob.last<protocol::Joined>();
    REQUIRE(bobJoined.participants.size() == 1);
    CHECK(bobJoined.participants[0].id == a);
    CHECK(bobJoined.participants[0].name == "Alice");

    // Others hear of the joiner; the joiner does not hear of itself.
    const auto heard = alice.last<protocol::ParticipantJoined>();
    CHECK(heard.id == b);
    CHECK(heard.name == "Bob");
    CHECK(bob.count<protocol::ParticipantJoined>() == 0);

    // One room, one media, the default layout applied once at creation.
    CHECK(f.engine.roomsCreated == 1);
    REQUIRE(f.engine.room("r1").layouts.size() == 1);
    CHECK(f.engine.room("r1").layouts[0].name == "grid");
    CHECK(f.rooms->roomCount() == 1);
    CHECK(f.rooms->participantCount() == 2);
}

TEST_CASE("join: peer options come from the join message", "[rooms]") {
    Fixture f;
    FakeSink sink;
    protocol::Join join = joinMessage("r1", "Viewer");
    join.receiveOnly = true;
    join.maxBitrate = 300'000;
    const std::string id = f.rooms->join(join, sink);
    const FakePeer& peer = f.engine.peer("r1", id);
    CHECK(peer.options.name == "Viewer");
    CHECK(peer.options.receiveOnly);
    CHECK(peer.options.maxBitrate == 300'000);
    CHECK(f.rooms->detail("r1").participants.at(0).receiveOnly);
}

TEST_CASE("join: rooms are independent", "[rooms]") {
    Fixture f;
    FakeSink a, b;
    f.join("r1", "A", a);
    f.join("r2", "B", b);
    CHECK(f.engine.roomsCreated == 2);
    CHECK(b.last<protocol::Joined>().participants.empty());
    CHECK(a.count<protocol::ParticipantJoined>() == 0);
}

TEST_CASE("join: a full room refuses with room-full and changes nothing", "[rooms]") {
    Fixture f; // maxParticipants = 3
    FakeSink s1, s2, s3, s4;
    f.join("r1", "1", s1);
    f.join("r1", "2", s2);
    f.join("r1", "3", s3);
    const std::size_t before = s1.messages.size();
    try {
        f.join("r1", "4", s4);
        FAIL("join succeeded");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::RoomFull);
    }
    CHECK(s4.messages.empty());
    CHECK(s1.messages.size() == before);
    CHECK(FakePeer::alive == 3);
    // Another room is not affected.
    CHECK_NOTHROW(f.join("r2", "4", s4));
}

TEST_CASE("join: a configured token is required", "[rooms]") {
    Config config = Fixture::defaultConfig();
    config.joinToken = "s3cret";
    Fixture f(config);
    FakeSink sink;
    protocol::Join join = joinMessage("r1", "A");
    const auto refused = [&] {
        try {
            f.rooms->join(join, sink);
        } catch (const Error& e) {
            return e.code() == ErrorCode::Unauthorized;
        }
        return false;
    };
    CHECK(refused());
    join.token = "wrong";
    CHECK(refused());
    join.token = "s3cre";
    CHECK(refused());
    CHECK(f.rooms->roomCount() == 0);
    CHECK(f.engine.roomsCreated == 0);
    CHECK(sink.messages.empty());
    join.token = "s3cret";
    CHECK_NOTHROW(f.rooms->join(join, sink));
}

TEST_CASE("join with room tokens: the token's room and name, its grants at the offer, refused after a kick",
          "[rooms][token]") {
    Config config = Fixture::defaultConfig();
    config.tokenSecret = "0123456789abcdef0123456789abcdef";
    Fixture f(config);
    const std::int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    const auto token = [&](const std::string& room, const std::string& name, protocol::Grants grants) {
        return auth::mintRoomToken({room, name, now + 600, now, now, "id-" + name, grants}, config.tokenSecret);
    };
    const auto unauthorized = [](const std::function<void()>& action) {
        try {
            action();
        } catch (const Error& e) {
            return e.code() == ErrorCode::Unauthorized;
        }
        return false;
    };
    FakeSink sink;
    protocol::Join join = joinMessage("r1", "Claimed");
    CHECK(unauthorized([&] { f.rooms->join(join, sink); }));
    join.token = token("r2", "Ada", {});
    CHECK(unauthorized([&] { f.rooms->join(join, sink); }));
    CHECK(f.rooms->roomCount() == 0);
    CHECK(sink.messages.empty());

    join.token = token("r1", "Ada", {});
    const std::string ada = f.rooms->join(join, sink);
    CHECK(f.rooms->detail("r1").participants.at(0).name == "Ada");
    CHECK_NOTHROW(f.rooms->offer(ada, "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\n"));

    FakeSink listenerSink;
    join.token = token("r1", "Listener", protocol::Grants{false, true, false});
    const std::string listener = f.rooms->join(join, listenerSink);
    CHECK(unauthorized([&] { f.rooms->offer(listener, "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\n"); }));
    CHECK(unauthorized([&] { f.rooms->offer(listener, "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n"); }));
    CHECK(f.engine.peer("r1", listener).offers.empty());
    CHECK_NOTHROW(f.rooms->offer(listener, "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\n"));

    // Kicked: the same token is refused, another one (another jti) is not.
    f.rooms->kick("r1", ada);
    FakeSink again;
    join.token = token("r1", "Ada", {});
    CHECK(unauthorized([&] { f.rooms->join(join, again); }));
    join.token = auth::mintRoomToken({"r1", "Ada", now + 600, now, now, "id-new", {}}, config.tokenSecret);
    CHECK_NOTHROW(f.rooms->join(join, again));
}

TEST_CASE("join: media failures leave no room behind", "[rooms]") {
    Fixture f;
    FakeSink sink;
    SECTION("createRoom throws") {
        f.engine.failCreateRoom = true;
        CHECK_THROWS_AS(f.join("r1", "A", sink), Error);
    }
    SECTION("addPeer throws for the first participant") {
        FakeRoomMedia::failAddPeer = true;
        CHECK_THROWS_AS(f.join("r1", "A", sink), Error);
        FakeRoomMedia::failAddPeer = false;
    }
    CHECK(f.rooms->roomCount() == 0);
    CHECK(FakeRoomMedia::alive == 0);
    CHECK(sink.messages.empty());
}

TEST_CASE("Rooms refuses a default layout the library does not have", "[rooms]") {
    Config config;
    config.defaultLayout = "nope";
    FakeEngine engine;
    room::LayoutLibrary layouts(TESSERA_SOURCE_DIR "/data/layouts");
    CHECK_THROWS_AS(room::Rooms(config, engine, layouts), Error);
}

// ---- Offer, answer, candidates ---------------------------------------------

TEST_CASE("offer goes to the peer; its answer goes back to the client", "[rooms]") {
    Fixture f;
    FakeSink alice, bob;
    const std::string a = f.join("r1", "Alice", alice);
    f.join("r1", "Bob", bob);

    f.rooms->offer(a, "v=0 offer");
    FakePeer& peer = f.engine.peer("r1", a);
    CHECK(peer.offers == std::vector<std::string>{"v=0 offer"});

    peer.listener.onAnswer("v=0 answer");
    CHECK(alice.last<protocol::Answer>().sdp == "v=0 answer");
    CHECK(bob.count<protocol::Answer>() == 0);

    // A renegotiation is just another offer.
    f.rooms->offer(a, "v=0 offer 2");
    CHECK(peer.offers.size() == 2);

    try {
        f.rooms->offer("nobody", "v=0");
        FAIL("offer for an unknown participant succeeded");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::NotJoined);
    }
}

TEST_CASE("candidates are relayed both ways, end of candidates included", "[rooms]") {
    Fixture f;
    FakeSink alice;
    const std::string a = f.join("r1", "Alice", alice);
    FakePeer& peer = f.engine.peer("r1", a);

    protocol::IceCandidate remote{"candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host", "0", 0u};
    f.rooms->candidate(a, remote);
    f.rooms->candidate(a, std::nullopt);
    REQUIRE(peer.candidates.size() == 2);
    REQUIRE(peer.candidates[0].has_value());
    CHECK(peer.candidates[0]->candidate == remote.candidate);
    CHECK(peer.candidates[0]->sdpMid == "0");
    CHECK_FALSE(peer.candidates[1].has_value());

    protocol::IceCandidate local{"candidate:2 1 udp 2122260223 192.0.2.2 40000 typ host", "1", 1u};
    peer.listener.onLocalCandidate(local);
    const auto sent = alice.last<protocol::Candidate>();
    REQUIRE(sent.candidate.has_value());
    CHECK(sent.candidate->candidate == local.candidate);
    CHECK(sent.candidate->sdpMLineIndex == 1u);

    CHECK_THROWS_AS(f.rooms->candidate("nobody", std::nullopt), Error);
}

TEST_CASE("audio only: the client's request reaches its peer, the peer's change reaches only its client",
          "[rooms][audio-only]") {
    Fixture f;
    FakeSink alice, bob;
    const std::string a = f.join("r1", "Alice", alice);
    f.join("r1", "Bob", bob);
    FakePeer& peer = f.engine.peer("r1", a);
    f.rooms->setAudioOnly(a, true);
    f.rooms->setAudioOnly(a, false);
    CHECK(peer.audioOnlyRequests == std::vector<bool>{true, false});
    CHECK_THROWS_AS(f.rooms->setAudioOnly("nobody", true), Error);

    const std::size_t bobHad = bob.messages.size();
    peer.listener.onAudioOnly(true, "link");
    const auto told = alice.last<protocol::AudioOnly>();
    CHECK(told.enabled);
    CHECK(told.reason == "link");
    peer.listener.onAudioOnly(false, "");
    CHECK_FALSE(alice.last<protocol::AudioOnly>().enabled);
    CHECK(bob.messages.size() == bobHad);
}

// ---- Leave, kick, failure ----------------------------------------------------

TEST_CASE("leave: the others hear of it; the last one closes the room", "[rooms]") {
    Fixture f;
    FakeSink alice, bob;
    const std::string a = f.join("r1", "Alice", alice);
    const std::string b = f.join("r1", "Bob", bob);

    f.rooms->leave(a);
    CHECK(bob.last<protocol::ParticipantLeft>().id == a);
    CHECK(alice.count<protocol::ParticipantLeft>() == 0);
    CHECK(FakePeer::alive == 1);
    CHECK(f.rooms->roomCount() == 1);
    CHECK(f.rooms->detail("r1").participants.size() == 1);

    // Leaving twice (socket closed after a leave message) is harmless.
    CHECK_NOTHROW(f.rooms->leave(a));

    f.rooms->leave(b);
    CHECK(FakePeer::alive == 0);
    CHECK(FakeRoomMedia::alive == 0);
    CHECK(f.rooms->roomCount() == 0);
    CHECK(f.rooms->list().empty());
    CHECK_THROWS_AS(f.rooms->detail("r1"), Error);

    // The name can be used again: a fresh room.
    FakeSink carol;
    f.join("r1", "Carol", carol);
    CHECK(f.engine.roomsCreated == 2);
    CHECK(carol.last<protocol::Joined>().participants.empty());
}

TEST_CASE("no peer or room media outlives its participants", "[rooms]") {
    Fixture f;
    std::vector<std::unique_ptr<FakeSink>> sinks;
    std::vector<std::string> ids;
    for (int i = 0; i < 6; ++i) {
        sinks.push_back(std::make_unique<FakeSink>());
        ids.push_back(f.join(i % 2 ? "odd" : "even", "P" + std::to_string(i), *sinks.back()));
    }
    CHECK(FakePeer::alive == 6);
    CHECK(FakeRoomMedia::alive == 2);
    for (const std::string& id : ids) f.rooms->leave(id);
    CHECK(FakePeer::alive == 0);
    CHECK(FakeRoomMedia::alive == 0);
    CHECK(f.rooms->participantCount() == 0);
}

TEST_CASE("kick: the others hear of it and the client is disconnected", "[rooms]") {
    Fixture f;
    FakeSink alice, bob, carol;
    const std::string a = f.join("r1", "Alice", alice);
    const std::string b = f.join("r1", "Bob", bob);
    f.join("r2", "Carol", carol);

    f.rooms->kick("r1", b);
    CHECK(bob.disconnected);
    CHECK(!bob.disconnectReason.empty());
    CHECK(alice.last<protocol::ParticipantLeft>().id == b);
    CHECK_FALSE(alice.disconnected);
    CHECK(carol.count<protocol::ParticipantLeft>() == 0);
    CHECK(FakePeer::alive == 2);
    // The session's close arrives afterwards and leaves again: harmless.
    CHECK_NOTHROW(f.rooms->leave(b));

    const auto notFound = [&](const std::string& room, const std::string& id) {
        try {
            f.rooms->kick(room, id);
        } catch (const Error& e) {
            return e.code() == ErrorCode::NotFound;
        }
        return false;
    };
    CHECK(notFound("nope", a));
    CHECK(notFound("r1", "nobody"));
    CHECK(notFound("r2", a)); // in another room
    CHECK(FakePeer::alive == 2);
}

TEST_CASE("a failed peer removes only its participant", "[rooms]") {
    Fixture f;
    FakeSink s1, s2, s3;
    const std::string p1 = f.join("r1", "1", s1);
    const std::string p2 = f.join("r1", "2", s2);
    const std::string p3 = f.join("r1", "3", s3);

    f.engine.peer("r1", p2).listener.onPeerFailed("DTLS handshake failed");
    const auto error = s2.last<protocol::ErrorMessage>();
    CHECK(error.code == ErrorCode::Internal);
    CHECK(error.message.find("DTLS handshake failed") != std::string::npos);
    CHECK(s2.disconnected);
    CHECK(s1.last<protocol::ParticipantLeft>().id == p2);
    CHECK(s3.last<protocol::ParticipantLeft>().id == p2);
    CHECK_FALSE(s1.disconnected);
    CHECK(f.rooms->participantCount() == 2);

    // The failed peer is destroyed after its callback returned, not inside it.
    drainMainContext();
    CHECK(FakePeer::alive == 2);
    CHECK_THROWS_AS(f.rooms->offer(p2, "v=0"), Error);
    CHECK_NOTHROW(f.rooms->offer(p1, "v=0"));
    CHECK_NOTHROW(f.rooms->offer(p3, "v=0"));
}

TEST_CASE("a peer failing inside handleOffer is not destroyed under its own feet", "[rooms]") {
    Fixture f;
    FakeSink alice, bob;
    const std::string a = f.join("r1", "Alice", alice);
    f.join("r1", "Bob", bob);
    FakePeer& peer = f.engine.peer("r1", a);
    peer.onOffer = [&peer](const std::string&) { peer.listener.onPeerFailed("bad SDP"); };

    f.rooms->offer(a, "garbage");
    CHECK_FALSE(FakePeer::destroyedDuringCall);
    CHECK(FakePeer::alive == 1); // destroyed once offer() returned
    CHECK(alice.disconnected);
    CHECK(bob.last<protocol::ParticipantLeft>().id == a);
}

TEST_CASE("listener calls from a removed peer are ignored", "[rooms]") {
    Fixture f;
    FakeSink alice, bob;
    const std::string a = f.join("r1", "Alice", alice);
    f.join("r1", "Bob", bob);
    FakePeer& peer = f.engine.peer("r1", a);
    peer.listener.onPeerFailed("ICE failed");
    // Still alive until the idle source runs: whatever it had queued is dropped.
    const std::size_t before = alice.messages.size();
    peer.listener.onAnswer("late answer");
    peer.listener.onLocalCandidate(protocol::IceCandidate{"candidate:late", "0", 0u});
    peer.listener.onPeerFailed("again");
    CHECK(alice.messages.size() == before);
    CHECK(bob.count<protocol::ParticipantLeft>() == 1);
    drainMainContext();
}

// ---- Data channels ---------------------------------------------------------

namespace {
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
} // namespace

TEST_CASE("data: chat reaches every other participant with sender and time", "[rooms]") {
    Fixture f;
    FakeSink s1, s2, s3, other;
    const std::string a = f.join("r1", "Alice", s1);
    const std::string b = f.join("r1", "Bob", s2);
    const std::string c = f.join("r1", "Carol", s3);
    const std::string x = f.join("r2", "Xavier", other);

    const gint64 before = g_get_real_time() / 1000;
    f.engine.peer("r1", a).listener.onDataMessage({"chat", false, R"({"text": "hello \"all\""})"});
    const gint64 after = g_get_real_time() / 1000;

    CHECK(f.engine.peer("r1", a).dataSent.empty()); // not echoed to the sender
    CHECK(f.engine.peer("r2", x).dataSent.empty()); // nor to another room
    for (const std::string& id : {b, c}) {
        const auto& sent = f.engine.peer("r1", id).dataSent;
        REQUIRE(sent.size() == 1);
        CHECK(sent[0].label == "chat");
        CHECK_FALSE(sent[0].binary);
        CHECK(contains(sent[0].data, R"("from":")" + a + '"'));
        CHECK(contains(sent[0].data, R"("name":"Alice")"));
        CHECK(contains(sent[0].data, R"("text":"hello \"all\"")"));
        const std::size_t ts = sent[0].data.find(R"("ts":)");
        REQUIRE(ts != std::string::npos);
        const long long stamp = std::stoll(sent[0].data.substr(ts + 5));
        CHECK(stamp >= before);
        CHECK(stamp <= after);
    }
}

TEST_CASE("data: malformed chat and unknown channels are dropped", "[rooms]") {
    Fixture f;
    FakeSink s1, s2;
    const std::string a = f.join("r1", "Alice", s1);
    const std::string b = f.join("r1", "Bob", s2);
    media::PeerListener& listener = f.engine.peer("r1", a).listener;
    const std::size_t messages = s1.messages.size();
    listener.onDataMessage({"chat", false, "not json"});
    listener.onDataMessage({"chat", false, R"({"message": "no text"})"});
    listener.onDataMessage({"chat", true, R"({"text": "binary chat"})"});
    listener.onDataMessage({"other", false, R"({"text": "hi"})"});
    CHECK(f.engine.peer("r1", b).dataSent.empty());
    CHECK(s1.messages.size() == messages); // no error reply (a data channel has none), no disconnect
    CHECK_FALSE(s1.disconnected);
}

TEST_CASE("data: file chunks pass byte for byte, control messages gain the sender", "[rooms]") {
    Fixture f;
    FakeSink s1, s2;
    const std::string a = f.join("r1", "Alice", s1);
    const std::string b = f.join("r1", "Bob", s2);
    media::PeerListener& listener = f.engine.peer("r1", a).listener;

    listener.onDataMessage({"file", false, R"({"type": "start", "id": "abc123", "name": "x.bin", "size": 3})"});
    // [id length][id][payload], the payload with a NUL and high bytes.
    const std::string chunk("\x06"
                            "abc123"
                            "\x00\xff\x80",
                            10);
    listener.onDataMessage({"file", true, chunk});
    listener.onDataMessage({"file", false, R"({"type": "end", "id": "abc123"})"});
    listener.onDataMessage({"file", false, R"({"type": "start", "id": "bad id!"})"}); // dropped

    const auto& sent = f.engine.peer("r1", b).dataSent;
    REQUIRE(sent.size() == 3);
    CHECK(sent[0].label == "file");
    CHECK_FALSE(sent[0].binary);
    CHECK(contains(sent[0].data, R"("type":"start")"));
    CHECK(contains(sent[0].data, R"("from":")" + a + '"'));
    CHECK(contains(sent[0].data, R"("fromName":"Alice")"));
    CHECK(sent[1].binary);
    CHECK(sent[1].label == "file");
    CHECK(sent[1].data == chunk);
    CHECK(contains(sent[2].data, R"("type":"end")"));
}

TEST_CASE("data: a transfer id belongs to its sender until it ends", "[rooms][limits]") {
    Fixture f;
    FakeSink s1, s2, s3;
    const std::string a = f.join("r1", "Alice", s1);
    const std::string b = f.join("r1", "Bob", s2);
    const std::string c = f.join("r1", "Carol", s3);
    media::PeerListener& alice = f.engine.peer("r1", a).listener;
    media::PeerListener& bob = f.engine.peer("r1", b).listener;
    const auto& carol = f.engine.peer("r1", c).dataSent;
    const std::string aliceChunk("\x02"
                                 "a1"
                                 "alice",
                                 8);
    const std::string bobChunk("\x02"
                               "a1"
                               "EVIL!",
                               8);

    alice.onDataMessage({"file", false, R"({"type": "start", "id": "a1", "name": "x", "size": 10})"});
    REQUIRE(carol.size() == 1);
    // Bob can neither write into Alice's transfer, nor take its id, nor end it.
    bob.onDataMessage({"file", true, bobChunk});
    bob.onDataMessage({"file", false, R"({"type": "start", "id": "a1", "name": "y", "size": 5})"});
    bob.onDataMessage({"file", false, R"({"type": "end", "id": "a1"})"});
    bob.onDataMessage({"file", false, R"({"type": "cancel", "id": "a1"})"});
    // Chunks of a transfer nobody started, and malformed chunks, go nowhere.
    bob.onDataMessage({"file", true,
                       std::string("\x02"
                                   "b9"
                                   "bytes",
                                   8)});
    bob.onDataMessage({"file", true,
                       std::string("\x02"
                                   "b9",
                                   3)});
    bob.onDataMessage({"file", true,
                       std::string("\x05"
                                   "b9",
                                   3)});
    CHECK(carol.size() == 1);
    alice.onDataMessage({"file", true, aliceChunk});
    alice.onDataMessage({"file", true, aliceChunk});
    alice.onDataMessage({"file", false, R"({"type": "end", "id": "a1"})"});
    REQUIRE(carol.size() == 4);
    CHECK(carol[1].data == aliceChunk);
    CHECK(carol[2].data == aliceChunk);
    CHECK(carol[3].data.find(R"("type":"end")") != std::string::npos);
    // Ended, the id is free: now Bob may use it.
    bob.onDataMessage({"file", false, R"({"type": "start", "id": "a1", "name": "y", "size": 5})"});
    bob.onDataMessage({"file", true, bobChunk});
    CHECK(carol.size() == 6);
    // Ids of a leaver are freed too.
    f.rooms->leave(b);
    alice.onDataMessage({"file", false, R"({"type": "start", "id": "a1", "name": "x", "size": 10})"});
    CHECK(carol.size() == 7);
    CHECK(s1.all<protocol::ErrorMessage>().empty());
}

// Alice (the sender), Bob and Carol in room r1: the data-limit tests.
struct DataTrio {
    explicit DataTrio(const Config& config) : f(config) {}
    Fixture f;
    FakeSink aliceSink, bobSink, carolSink;
    const std::string a = f.join("r1", "Alice", aliceSink);
    const std::string b = f.join("r1", "Bob", bobSink);
    const std::string c = f.join("r1", "Carol", carolSink);
};

TEST_CASE("data: a sender over its byte budget has its transfer cancelled, once told; others go on",
          "[rooms][limits]") {
    Config config = Fixture::defaultConfig();
    config.limits.dataBytesPerSecond = 1000;
    config.limits.dataBurstBytes = 20'000;
    DataTrio t(config);
    Fixture& f = t.f;
    const std::string &a = t.a, &b = t.b, &c = t.c;
    media::PeerListener& alice = f.engine.peer("r1", a).listener;
    media::PeerListener& bob = f.engine.peer("r1", b).listener;
    const auto& carol = f.engine.peer("r1", c).dataSent;
    alice.onDataMessage({"file", false, R"({"type": "start", "id": "big", "name": "x", "size": 99999})"});
    const std::string chunk = std::string("\x03"
                                          "big",
                                          4) +
                              std::string(8000, 'x');
    alice.onDataMessage({"file", true, chunk});
    alice.onDataMessage({"file", true, chunk});
    CHECK(carol.size() == 3);
    CHECK(t.aliceSink.all<protocol::ErrorMessage>().empty());
    // The third 8 KB chunk within a second is over the 20 KB burst.
    alice.onDataMessage({"file", true, chunk});
    alice.onDataMessage({"file", true, chunk});
    REQUIRE(carol.size() == 4);
    CHECK(carol[3].data.find(R"("type":"cancel")") != std::string::npos);
    CHECK(carol[3].data.find(R"("from":")" + a + '"') != std::string::npos);
    const auto errors = t.aliceSink.all<protocol::ErrorMessage>();
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].code == ErrorCode::RateLimited);
    CHECK(errors[0].message.find("'big' was cancelled") != std::string::npos);
    CHECK_FALSE(t.aliceSink.disconnected);
    // Bob's budget is his own.
    bob.onDataMessage({"chat", false, R"({"text": "still here"})"});
    CHECK(carol.size() == 5);
}

TEST_CASE("data: a receiver too far behind loses the rest of a transfer, told so; the others get it all",
          "[rooms][limits]") {
    Config config = Fixture::defaultConfig();
    config.limits.dataBufferedBytes = 100'000;
    DataTrio t(config);
    Fixture& f = t.f;
    const std::string &a = t.a, &b = t.b, &c = t.c;
    media::PeerListener& alice = f.engine.peer("r1", a).listener;
    const auto& bob = f.engine.peer("r1", b).dataSent;
    FakePeer& carol = f.engine.peer("r1", c);
    const std::string chunk = std::string("\x02"
                                          "t1",
                                          3) +
                              "data";
    alice.onDataMessage({"file", false, R"({"type": "start", "id": "t1", "name": "x", "size": 12})"});
    alice.onDataMessage({"file", true, chunk});
    REQUIRE(carol.dataSent.size() == 2);
    // Exactly the bound still goes; one byte more and Carol is behind.
    carol.buffered["file"] = 100'000;
    alice.onDataMessage({"file", true, chunk});
    REQUIRE(carol.dataSent.size() == 3);
    carol.buffered["file"] = 100'001;
    alice.onDataMessage({"file", true, chunk});
    REQUIRE(carol.dataSent.size() == 4);
    CHECK_FALSE(carol.dataSent[3].binary);
    CHECK(contains(carol.dataSent[3].data, R"("type":"cancel")"));
    CHECK(contains(carol.dataSent[3].data, R"("id":"t1")"));
    CHECK(contains(carol.dataSent[3].data, R"("from":")" + a + '"'));
    CHECK(contains(carol.dataSent[3].data, "over 100000 bytes behind"));
    // Caught up or not, she gets nothing more of it, not even its end ...
    carol.buffered["file"] = 0;
    alice.onDataMessage({"file", true, chunk});
    alice.onDataMessage({"file", false, R"({"type": "end", "id": "t1"})"});
    CHECK(carol.dataSent.size() == 4);
    // ... while Bob got the whole file, and the sender heard nothing.
    REQUIRE(bob.size() == 6);
    CHECK(bob[4].data == chunk);
    CHECK(contains(bob[5].data, R"("type":"end")"));
    CHECK(t.aliceSink.all<protocol::ErrorMessage>().empty());
    // The next transfer reaches her again; chat is bounded on its own channel.
    alice.onDataMessage({"file", false, R"({"type": "start", "id": "t1", "name": "y", "size": 4})"});
    CHECK(carol.dataSent.size() == 5);
    carol.buffered["chat"] = 100'001;
    alice.onDataMessage({"chat", false, R"({"text": "hello"})"});
    CHECK(carol.dataSent.size() == 5);
    CHECK(bob.size() == 8);
    // Behind when the sender's transfer starts: she never gets any of it,
    // and forgets it once it is over, even when its sender leaves.
    carol.buffered["file"] = 100'001;
    alice.onDataMessage({"file", false, R"({"type": "start", "id": "t2", "name": "z", "size": 4})"});
    CHECK(contains(carol.dataSent.back().data, R"("type":"cancel")"));
    CHECK(contains(carol.dataSent.back().data, R"("id":"t2")"));
    const std::size_t before = carol.dataSent.size();
    carol.buffered["file"] = 0;
    f.rooms->leave(a);
    media::PeerListener& bobs = f.engine.peer("r1", b).listener;
    bobs.onDataMessage({"file", false, R"({"type": "start", "id": "t2", "name": "w", "size": 4})"});
    CHECK(carol.dataSent.size() == before + 1);
    CHECK(contains(carol.dataSent.back().data, R"("type":"start")"));
}

TEST_CASE("data: a participant removed mid-relay is skipped", "[rooms]") {
    Fixture f;
    FakeSink s1, s2, s3;
    const std::string a = f.join("r1", "A", s1);
    const std::string b = f.join("r1", "B", s2);
    const std::string c = f.join("r1", "C", s3);
    // B's peer fails as it is handed the message; C must still get it.
    FakePeer& peerB = f.engine.peer("r1", b);
    FakePeer& peerC = f.engine.peer("r1", c);
    f.engine.peer("r1", a).listener.onDataMessage({"file", false, R"({"type": "start", "id": "z"})"});
    peerB.listener.onPeerFailed("gone");
    f.engine.peer("r1", a).listener.onDataMessage({"file", true, std::string("\x01zX", 3)});
    CHECK(peerB.dataSent.size() == 1);
    CHECK(peerC.dataSent.size() == 2);
    drainMainContext();
}

// ---- Re-entrancy -----------------------------------------------------------

TEST_CASE("a client leaving from inside a send does not break a broadcast", "[rooms]") {
    Fixture f;
    FakeSink s1, s2, s3;
    const std::string p1 = f.join("r1", "1", s1);
    const std::string p2 = f.join("r1", "2", s2);
    // s2's socket is dead: its next send makes its session leave, mid-broadcast.
    s2.onSend = [&](const protocol::ServerMessage&) {
        s2.onSend = nullptr;
        f.rooms->leave(p2);
    };
    const std::string p3 = f.join("r1", "3", s3);
    CHECK(s1.last<protocol::ParticipantJoined>().id == p3);
    CHECK(s1.last<protocol::ParticipantLeft>().id == p2);
    CHECK(s3.last<protocol::ParticipantLeft>().id == p2);
    CHECK(f.rooms->participantCount() == 2);
    CHECK(FakePeer::alive == 2);
}

TEST_CASE("a joiner whose first send fails is gone, and nobody hears of it", "[rooms]") {
    Fixture f;
    FakeSink s1, s2;
    f.join("r1", "1", s1);
    std::string p2;
    s2.onSend = [&](const protocol::ServerMessage& message) {
        if (const auto* joined = std::get_if<protocol::Joined>(&message)) {
            s2.onSend = nullptr;
            f.rooms->leave(joined->id);
        }
    };
    p2 = f.join("r1", "2", s2);
    CHECK(s1.count<protocol::ParticipantJoined>() == 0);
    CHECK(s1.count<protocol::ParticipantLeft>() == 0);
    CHECK(f.rooms->participantCount() == 1);
    CHECK(FakePeer::alive == 1);
    CHECK_NOTHROW(f.rooms->leave(p2));
}

TEST_CASE("the whole room leaving during a broadcast", "[rooms]") {
    Fixture f;
    FakeSink s1, s2;
    const std::string p1 = f.join("r1", "1", s1);
    const std::string p2 = f.join("r1", "2", s2);
    s1.onSend = [&](const protocol::ServerMessage& message) {
        if (std::holds_alternative<protocol::LayoutChanged>(message)) {
            s1.onSend = nullptr;
            f.rooms->leave(p1);
            f.rooms->leave(p2);
        }
    };
    f.rooms->setLayout("r1", api::LayoutRequest{std::string("speaker"), std::nullopt});
    CHECK(f.rooms->roomCount() == 0);
    CHECK(FakePeer::alive == 0);
    CHECK(FakeRoomMedia::alive == 0);
}

// ---- Layout and speaker ----------------------------------------------------

TEST_CASE("layout by name: applied to media, announced to everyone", "[rooms]") {
    Fixture f;
    FakeSink alice, bob;
    f.join("r1", "Alice", alice);
    f.join("r1", "Bob", bob);

    f.rooms->setLayout("r1", api::LayoutRequest{std::string("speaker"), std::nullopt});
    FakeRoomMedia& media = f.engine.room("r1");
    REQUIRE(media.layouts.size() == 2);
    CHECK(media.layouts.back().name == "speaker");
    CHECK(alice.last<protocol::LayoutChanged>().layout == "speaker");
    CHECK(bob.last<protocol::LayoutChanged>().layout == "speaker");
    CHECK(f.rooms->detail("r1").layout == "speaker");
    CHECK(f.rooms->list().at(0).layout == "speaker");

    // A late joiner learns the current layout.
    FakeSink carol;
    f.join("r1", "Carol", carol);
    CHECK(carol.last<protocol::LayoutChanged>().layout == "speaker");
}

TEST_CASE("layout inline: the spec itself is applied", "[rooms]") {
    Fixture f;
    FakeSink alice;
    f.join("r1", "Alice", alice);
    protocol::LayoutSpec spec;
    spec.name = "custom-1";
    spec.padding = 8;
    spec.rest = protocol::FracRect{0, 0, 1, 1};
    f.rooms->setLayout("r1", api::LayoutRequest{std::nullopt, spec});
    FakeRoomMedia& media = f.engine.room("r1");
    CHECK(media.layouts.back().name == "custom-1");
    CHECK(media.layouts.back().padding == 8);
    CHECK(alice.last<protocol::LayoutChanged>().layout == "custom-1");
    CHECK(f.rooms->detail("r1").layout == "custom-1");
}

TEST_CASE("layout: unknown name, unknown room, media refusal change nothing", "[rooms]") {
    Fixture f;
    FakeSink alice;
    f.join("r1", "Alice", alice);
    const std::size_t messages = alice.messages.size();
    FakeRoomMedia& media = f.engine.room("r1");

    try {
        f.rooms->setLayout("r1", api::LayoutRequest{std::string("nope"), std::nullopt});
        FAIL("unknown layout accepted");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::BadRequest);
        CHECK(std::string(e.what()) == "unknown layout 'nope'");
    }
    try {
        f.rooms->setLayout("nowhere", api::LayoutRequest{std::string("grid"), std::nullopt});
        FAIL("unknown room accepted");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::NotFound);
    }
    CHECK_THROWS_AS(f.rooms->setLayout("r1", api::LayoutRequest{}), Error);
    media.failSetLayout = true;
    CHECK_THROWS_AS(f.rooms->setLayout("r1", api::LayoutRequest{std::string("pip"), std::nullopt}), Error);

    CHECK(media.layouts.size() == 1);
    CHECK(alice.messages.size() == messages);
    CHECK(f.rooms->detail("r1").layout == "grid");
}

TEST_CASE("speaker changes are relayed to everyone, once", "[rooms]") {
    Fixture f;
    FakeSink alice, bob;
    const std::string a = f.join("r1", "Alice", alice);
    f.join("r1", "Bob", bob);
    media::RoomListener& listener = f.engine.room("r1").listener;

    listener.onSpeakerChanged(a);
    CHECK(alice.last<protocol::Speaker>().id == a);
    CHECK(bob.last<protocol::Speaker>().id == a);
    listener.onSpeakerChanged(a);
    CHECK(bob.count<protocol::Speaker>() == 1);

    // A late joiner learns who speaks.
    FakeSink carol;
    f.join("r1", "Carol", carol);
    CHECK(carol.last<protocol::Speaker>().id == a);

    listener.onSpeakerChanged("");
    CHECK(bob.last<protocol::Speaker>().id.empty());
    CHECK(bob.count<protocol::Speaker>() == 2);
}

TEST_CASE("send-size goes to its participant only, the API shows the camera's; a leaver's is dropped",
          "[rooms][sendsize]") {
    Fixture f;
    FakeSink alice, bob;
    const std::string a = f.join("r1", "Alice", alice);
    const std::string b = f.join("r1", "Bob", bob);
    media::RoomListener& listener = f.engine.room("r1").listener;

    const protocol::SendSize camera{"camera", true, 412, 232, 155573}, screen{"screen", false, 0, 0, 0};
    listener.onSendSize(a, camera);
    listener.onSendSize(a, screen);
    CHECK(alice.all<protocol::SendSize>() == std::vector<protocol::SendSize>{camera, screen});
    CHECK(bob.count<protocol::SendSize>() == 0);
    const auto entry = f.rooms->detail("r1").participants.front();
    REQUIRE(entry.id == a);
    CHECK(entry.sendSize == camera); // the camera's, not the screen's
    CHECK_FALSE(f.rooms->detail("r1").participants.back().sendSize);

    f.rooms->leave(b);
    listener.onSendSize(b, camera); // queued before it left
    CHECK(bob.count<protocol::SendSize>() == 0);
}

TEST_CASE("on-screen goes to everyone, a joiner gets the last one", "[rooms][onscreen]") {
    Fixture f;
    FakeSink alice, bob;
    const std::string a = f.join("r1", "Alice", alice);
    const std::string b = f.join("r1", "Bob", bob);
    media::RoomListener& listener = f.engine.room("r1").listener;
    // Nothing said before media says it: a joiner gets none either.
    CHECK(alice.count<protocol::OnScreen>() == 0);

    const protocol::OnScreen first{{a}, {b}}, second{{b}, {a}};
    listener.onOnScreen(first);
    CHECK(alice.last<protocol::OnScreen>() == first);
    CHECK(bob.last<protocol::OnScreen>() == first);
    listener.onOnScreen(second);
    CHECK(bob.all<protocol::OnScreen>() == std::vector<protocol::OnScreen>{first, second});

    // A late joiner learns who is on screen, after `joined`.
    FakeSink carol;
    f.join("r1", "Carol", carol);
    CHECK(carol.all<protocol::OnScreen>() == std::vector<protocol::OnScreen>{second});
}

TEST_CASE("a live screen share switches to presentation and back", "[rooms]") {
    Fixture f;
    FakeSink alice, bob;
    const std::string a = f.join("r1", "Alice", alice);
    const std::string b = f.join("r1", "Bob", bob);
    f.rooms->setLayout("r1", api::LayoutRequest{std::string("speaker"), std::nullopt});
    media::RoomListener& listener = f.engine.room("r1").listener;

    listener.onScreenShareChanged(a, true);
    CHECK(bob.last<protocol::LayoutChanged>().layout == "presentation");
    CHECK(f.engine.room("r1").layouts.back().name == "presentation");
    // A second share keeps the presentation; the layout returns only when
    // the last one ends, to what the room had before.
    listener.onScreenShareChanged(b, true);
    listener.onScreenShareChanged(a, false);
    CHECK(bob.last<protocol::LayoutChanged>().layout == "presentation");
    listener.onScreenShareChanged(b, false);
    CHECK(alice.last<protocol::LayoutChanged>().layout == "speaker");
    CHECK(f.engine.room("r1").layouts.back().name == "speaker");

    // An operator's choice during a share is kept when the share ends.
    listener.onScreenShareChanged(a, true);
    f.rooms->setLayout("r1", api::LayoutRequest{std::string("grid"), std::nullopt});
    listener.onScreenShareChanged(a, false);
    CHECK(alice.last<protocol::LayoutChanged>().layout == "grid");
}

// ---- API and metrics data --------------------------------------------------

TEST_CASE("list, detail and metrics report rooms, participants and media stats", "[rooms]") {
    Fixture f;
    FakeSink s1, s2, s3;
    const std::string a = f.join("beta", "Alice", s1);
    const std::string b = f.join("beta", "Bob", s2);
    f.join("alpha", "Carol", s3);

    FakePeer& peer = f.engine.peer("beta", a);
    peer.peerStats.bitrateIn = 500'000;
    peer.peerStats.bitrateOut = 900'000;
    peer.peerStats.packetsLost = 4;
    peer.peerStats.tier = "low";
    peer.peerStats.sendCodec = "h264";
    peer.peerStats.receiveCodec = "h264";
    f.engine.room("beta").roomStats.framesOut = 77;

    const auto list = f.rooms->list();
    REQUIRE(list.size() == 2);
    CHECK(list[0].room == "alpha"); // sorted
    CHECK(list[0].participants == 1);
    CHECK(list[1].room == "beta");
    CHECK(list[1].participants == 2);
    CHECK(list[1].layout == "grid");
    CHECK_FALSE(list[1].recording);

    const auto detail = f.rooms->detail("beta");
    CHECK(detail.room == "beta");
    REQUIRE(detail.participants.size() == 2);
    CHECK(detail.participants[0].id == a); // join order
    CHECK(detail.participants[0].name == "Alice");
    CHECK(detail.participants[0].tier == "low");
    CHECK(detail.participants[0].bitrateIn == 500'000);
    CHECK(detail.participants[0].bitrateOut == 900'000);
    CHECK(detail.participants[0].packetsLost == 4);
    CHECK(detail.participants[0].sendCodec == "h264");
    CHECK(detail.participants[0].receiveCodec == "h264");
    CHECK(detail.participants[1].id == b);

    const auto metrics = f.rooms->metrics();
    REQUIRE(metrics.rooms.size() == 2);
    CHECK(metrics.rooms[1].room == "beta");
    CHECK(metrics.rooms[1].stats.framesOut == 77);
    REQUIRE(metrics.rooms[1].participants.size() == 2);
    CHECK(metrics.rooms[1].participants[0].id == a);
    CHECK(metrics.rooms[1].participants[0].stats.packetsLost == 4);

    try {
        f.rooms->detail("gamma");
        FAIL("unknown room found");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::NotFound);
    }
}

// ---- Layout library ----------------------------------------------------------

TEST_CASE("layout library: loads the shipped layouts", "[rooms]") {
    room::LayoutLibrary layouts(TESSERA_SOURCE_DIR "/data/layouts");
    const auto names = layouts.names();
    for (const char* name : {"grid", "speaker", "presentation", "pip"}) {
        CHECK(std::find(names.begin(), names.end(), name) != names.end());
    }
    REQUIRE(layouts.find("speaker"));
    CHECK(layouts.find("speaker")->name == "speaker");
    CHECK_FALSE(layouts.find("nope"));
}

TEST_CASE("layout library: the built-in grid when no file defines it", "[rooms]") {
    TempDir dir;
    dir.write("wide.json", layoutJson("wide"));
    dir.write("README.md", "not a layout");
    room::LayoutLibrary layouts(dir.path);
    CHECK(layouts.names() == std::vector<std::string>{"grid", "wide"});
    REQUIRE(layouts.find("grid"));
    CHECK(layouts.find("grid")->rest.has_value());
}

TEST_CASE("layout library: a bad file is named, with the parser's reason", "[rooms]") {
    TempDir dir;
    dir.write("good.json", layoutJson("good"));
    SECTION("not a spec") {
        dir.write("broken.json", R"({"name": "broken", "colour": "red"})");
        try {
            room::LayoutLibrary layouts(dir.path);
            FAIL("bad file accepted");
        } catch (const Error& e) {
            const std::string message = e.what();
            CHECK(message.find("broken.json") != std::string::npos);
            CHECK(message.find("colour") != std::string::npos);
        }
    }
    SECTION("name differs from the file name") {
        dir.write("other.json", layoutJson("mismatch"));
        try {
            room::LayoutLibrary layouts(dir.path);
            FAIL("mismatched name accepted");
        } catch (const Error& e) {
            const std::string message = e.what();
            CHECK(message.find("other.json") != std::string::npos);
            CHECK(message.find("mismatch") != std::string::npos);
        }
    }
    SECTION("missing directory") { CHECK_THROWS_AS(room::LayoutLibrary(dir.path / "absent"), Error); }
    SECTION("a canvas over limits.maxCanvasPixels") {
        dir.write("huge.json", R"({"name": "huge", "canvas": {"width": 3842, "height": 2160}, "rest": {}})");
        CHECK_NOTHROW(room::LayoutLibrary(dir.path));
        try {
            room::LayoutLibrary layouts(dir.path, 3840 * 2160);
            FAIL("huge canvas accepted");
        } catch (const Error& e) {
            const std::string message = e.what();
            CHECK(message.find("huge.json: canvas: 3842x2160") != std::string::npos);
            CHECK(message.find("limits.maxCanvasPixels (8294400)") != std::string::npos);
        }
    }
}

TEST_CASE("layout library: reload swaps only when every file parses", "[rooms]") {
    TempDir dir;
    dir.write("one.json", layoutJson("one"));
    room::LayoutLibrary layouts(dir.path);
    CHECK(layouts.names() == std::vector<std::string>{"grid", "one"});

    dir.write("two.json", layoutJson("two"));
    dir.write("bad.json", "{");
    CHECK_THROWS_AS(layouts.reload(), Error);
    CHECK(layouts.names() == std::vector<std::string>{"grid", "one"});

    fs::remove(dir.path / "bad.json");
    layouts.reload();
    CHECK(layouts.names() == std::vector<std::string>{"grid", "one", "two"});

    fs::remove(dir.path / "one.json");
    layouts.reload();
    CHECK(layouts.names() == std::vector<std::string>{"grid", "two"});
}

// ---- Recording -------------------------------------------------------------

namespace {

std::string readText(const fs::path& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

} // namespace

TEST_CASE("recording file names: sanitised room name and UTC time, never a path", "[rooms][recording]") {
    constexpr std::int64_t kTime = 1'767'323'045'000; // 2026-01-02T03:04:05Z
    CHECK(room::recordingStem("demo_room-1", kTime) == "demo_room-1-20260102T030405Z");
    CHECK(room::recordingStem("../../etc/passwd", kTime) == "______etc_passwd-20260102T030405Z");
    CHECK(room::recordingStem("a/b\\c d\n%s", kTime) == "a_b_c_d__s-20260102T030405Z");
    CHECK(room::recordingStem("", kTime) == "room-20260102T030405Z");
    CHECK(room::recordingStem("caf\xc3\xa9", kTime) == "caf__-20260102T030405Z");
    CHECK(room::recordingStem(std::string(200, 'x'), kTime) == std::string(64, 'x') + "-20260102T030405Z");
    for (const std::string hostile : {"..", "/", "a\0b", "\x01\x7f"}) {
        const std::string stem = room::recordingStem(hostile, kTime);
        INFO(stem);
        CHECK(stem.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
              std::string::npos);
    }
}

TEST_CASE("recording: start, conflicts, timeline and stop", "[rooms][recording]") {
    TempDir dir;
    Config config = Fixture::defaultConfig();
    config.recording.dir = (dir.path / "rec").string();
    Fixture f(config);
    FakeSink alice, bob;
    const std::string a = f.join("r1", "Alice", alice);

    CHECK_THROWS_MATCHES(f.rooms->startRecording("nope", std::nullopt), Error,
                         Catch::Predicate<Error>([](const Error& e) { return e.code() == ErrorCode::NotFound; }));
    CHECK_THROWS_MATCHES(f.rooms->stopRecording("r1", [](const media::RecordingResult&) {}), Error,
                         Catch::Predicate<Error>([](const Error& e) { return e.code() == ErrorCode::Conflict; }));
    CHECK_THROWS_MATCHES(f.rooms->startRecording("r1", std::string("avi")), Error,
                         Catch::Predicate<Error>([](const Error& e) { return e.code() == ErrorCode::BadRequest; }));

    const std::string file = f.rooms->startRecording("r1", std::string("webm"));
    CHECK(file.starts_with((dir.path / "rec").string() + "/r1-"));
    CHECK(file.ends_with(".webm"));
    CHECK(f.rooms->list().at(0).recording);
    CHECK(f.rooms->detail("r1").recordingFile == file);
    CHECK(f.rooms->metrics().rooms.at(0).recording);
    CHECK_THROWS_MATCHES(f.rooms->startRecording("r1", std::nullopt), Error,
                         Catch::Predicate<Error>([](const Error& e) { return e.code() == ErrorCode::Conflict; }));

    const std::string b = f.join("r1", "Bob", bob);
    f.rooms->leave(b);
    const fs::path metadata = fs::path(file).replace_extension(".json");
    const std::string during = readText(metadata);
    CHECK(during.find("\"state\": \"recording\"") != std::string::npos);
    CHECK(during.find("\"event\": \"present\"") != std::string::npos);
    CHECK(during.find("\"event\": \"join\"") != std::string::npos);
    CHECK(during.find("\"event\": \"leave\"") != std::string::npos);
    CHECK(during.find("\"Bob\"") != std::string::npos);

    std::optional<media::RecordingResult> stopped;
    f.rooms->stopRecording("r1", [&](const media::RecordingResult& r) { stopped = r; });
    CHECK_FALSE(stopped);                   // never answered from inside the call
    CHECK(f.rooms->detail("r1").recording); // until the file is finalised
    CHECK_THROWS_MATCHES(f.rooms->startRecording("r1", std::nullopt), Error,
                         Catch::Predicate<Error>([](const Error& e) { return e.code() == ErrorCode::Conflict; }));
    f.engine.room("r1").finishRecording(3.5);
    REQUIRE(stopped);
    CHECK(stopped->file == file);
    CHECK(stopped->duration == 3.5);
    CHECK_FALSE(f.rooms->detail("r1").recording);
    CHECK(readText(metadata).find("\"state\": \"finished\"") != std::string::npos);
    f.rooms->leave(a);
}

TEST_CASE("recording: failures are shown and counted; the room goes on", "[rooms][recording]") {
    TempDir dir;
    dir.write("file", "not a directory");
    Config config = Fixture::defaultConfig();
    config.recording.dir = (dir.path / "file" / "rec").string();
    Fixture f(config);
    FakeSink alice;
    const std::string a = f.join("r1", "Alice", alice);
    CHECK_THROWS_MATCHES(f.rooms->startRecording("r1", std::nullopt), Error,
                         Catch::Predicate<Error>([](const Error& e) { return e.code() == ErrorCode::Internal; }));
    CHECK(f.rooms->detail("r1").recordingError.find("Not a directory") != std::string::npos);
    CHECK(f.rooms->metrics().recordingErrors == 1);
    CHECK_FALSE(f.rooms->detail("r1").recording);

    f.rooms->leave(a);
}

TEST_CASE("recording: a failure while running stops only the recording", "[rooms][recording]") {
    TempDir dir;
    Config config = Fixture::defaultConfig();
    config.recording.dir = dir.path.string();
    Fixture f(config);
    FakeSink bob;
    const std::string b = f.join("r2", "Bob", bob);
    f.rooms->startRecording("r2", std::nullopt);
    // The media removed its recorder itself, then reports.
    f.engine.room("r2").recording.reset();
    f.engine.room("r2").listener.onRecordingFailed("filesink: No space left on device");
    CHECK_FALSE(f.rooms->detail("r2").recording);
    CHECK(f.rooms->detail("r2").recordingError == "filesink: No space left on device");
    CHECK(f.rooms->metrics().recordingErrors == 1);
    CHECK(f.rooms->participantCount() == 1);
    f.rooms->leave(b);
}

TEST_CASE("recording: the last one leaving finalises the file before the room goes", "[rooms][recording]") {
    TempDir dir;
    Config config = Fixture::defaultConfig();
    config.recording.dir = dir.path.string();
    config.recording.autoRecord = true;
    Fixture f(config);
    FakeSink alice;
    const std::string a = f.join("r1", "Alice", alice);
    CHECK(f.rooms->detail("r1").recording); // recording.auto
    FakeRoomMedia& media = f.engine.room("r1");
    f.rooms->leave(a);
    CHECK(f.rooms->roomCount() == 0);
    CHECK(FakeRoomMedia::alive == 1); // still draining
    media.finishRecording(1.0);
    drainMainContext();
    CHECK(FakeRoomMedia::alive == 0);
}

TEST_CASE("recording: shutdown finalises every running recording, then says so", "[rooms][recording]") {
    TempDir dir;
    Config config = Fixture::defaultConfig();
    config.recording.dir = dir.path.string();
    Fixture f(config);
    FakeSink alice, bob, carol;
    f.join("r1", "Alice", alice);
    f.join("r2", "Bob", bob);
    f.join("r3", "Carol", carol);
    f.rooms->startRecording("r1", std::nullopt);
    f.rooms->startRecording("r2", std::nullopt);
    bool done = false;
    f.rooms->stopAllRecordings([&] { done = true; });
    CHECK_FALSE(done);
    f.engine.room("r1").finishRecording(1.0);
    CHECK_FALSE(done);
    f.engine.room("r2").finishRecording(2.0);
    CHECK(done);
    bool none = false;
    f.rooms->stopAllRecordings([&] { none = true; });
    CHECK(none);
}

TEST_CASE("reload: rooms showing a changed named layout get it, the others keep theirs", "[rooms]") {
    TempDir dir;
    dir.write("grid.json", layoutJson("grid"));
    dir.write("wide.json", layoutJson("wide"));
    Config config = Fixture::defaultConfig();
    FakeEngine engine;
    room::LayoutLibrary layouts(dir.path);
    room::Rooms rooms(config, engine, layouts);
    FakeSink alice, bob, carol;
    rooms.join(joinMessage("by-name", "Alice"), alice);
    rooms.join(joinMessage("unchanged", "Bob"), bob);
    rooms.join(joinMessage("inline", "Carol"), carol);
    rooms.setLayout("by-name", api::LayoutRequest{std::string("wide"), std::nullopt});
    protocol::LayoutSpec inlineSpec;
    inlineSpec.name = "wide"; // an inline spec that happens to share a file's name
    inlineSpec.rest = protocol::FracRect{0, 0, 1, 1};
    rooms.setLayout("inline", api::LayoutRequest{std::nullopt, inlineSpec});
    const std::size_t byNameSent = alice.messages.size(), unchangedSent = bob.messages.size(),
                      inlineSent = carol.messages.size();
    const std::size_t unchangedApplied = engine.room("unchanged").layouts.size();

    // wide.json changes; grid.json does not.
    dir.write("wide.json",
              R"({"name": "wide", "rest": {"x": 0, "y": 0, "w": 1, "h": 1}, "padding": 12, "labels": true})");
    const auto names = rooms.reloadLayouts();
    CHECK(names == std::vector<std::string>{"grid", "wide"});

    const auto& applied = engine.room("by-name").layouts;
    CHECK(applied.back().name == "wide");
    CHECK(applied.back().padding == 12);
    CHECK(applied.back().labels);
    REQUIRE(alice.messages.size() == byNameSent + 1);
    CHECK(alice.last<protocol::LayoutChanged>().layout == "wide");
    // Nothing changed for the grid room, and an inline spec is not the file's.
    CHECK(engine.room("unchanged").layouts.size() == unchangedApplied);
    CHECK(bob.messages.size() == unchangedSent);
    CHECK(engine.room("inline").layouts.back().padding == 0);
    CHECK(carol.messages.size() == inlineSent);

    // Reloading again with nothing changed applies nothing.
    rooms.reloadLayouts();
    CHECK(alice.messages.size() == byNameSent + 1);

    // A bad file: an error naming it, and neither the set nor any room changes.
    dir.write("wide.json", R"({"name": "wide", "rest": {}, "padding": 12, "border": 99})");
    try {
        rooms.reloadLayouts();
        FAIL("bad file accepted");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::BadRequest);
        const std::string message = e.what();
        CHECK(message.find("wide.json") != std::string::npos);
        CHECK(message.find("border") != std::string::npos);
    }
    CHECK(layouts.find("wide")->padding == 12);
    CHECK(alice.messages.size() == byNameSent + 1);

    // A layout whose file went away stays on the rooms showing it.
    fs::remove(dir.path / "wide.json");
    CHECK(rooms.reloadLayouts() == std::vector<std::string>{"grid"});
    CHECK(rooms.detail("by-name").layout == "wide");
    CHECK(alice.messages.size() == byNameSent + 1);
}

// ---- Viewers (WHEP) ---------------------------------------------------------

namespace {

room::ViewRequest viewRequest(const std::string& room, std::optional<std::string> tier = std::nullopt) {
    return room::ViewRequest{room, "Player", std::nullopt, std::move(tier)};
}

ErrorCode codeOf(const std::function<void()>& action) {
    try {
        action();
    } catch (const Error& e) {
        return e.code();
    }
    FAIL("no error");
    return ErrorCode::Internal;
}

} // namespace

TEST_CASE("view: a viewer is no member: nobody is told, it is not counted, the API lists it apart", "[rooms][viewer]") {
    Fixture f;
    FakeSink alice, bob, player;
    const std::string a = f.join("r1", "Alice", alice);
    const std::size_t aliceMessages = alice.messages.size();
    const std::string v = f.rooms->view(viewRequest("r1", "low"), player);
    // Only its ICE servers: no layout, speaker or members.
    REQUIRE(player.messages.size() == 1);
    const auto joined = player.last<protocol::Joined>();
    CHECK(joined.id == v);
    CHECK(joined.participants.empty());
    CHECK(joined.iceServers.size() == 1);
    CHECK(alice.messages.size() == aliceMessages);
    // A receive-only peer with the tier asked for.
    const FakePeer& peer = f.engine.peer("r1", v);
    CHECK(peer.options.receiveOnly);
    CHECK(peer.options.tier == "low");

    // Members do not see it; it does not take a member's place.
    const std::string b = f.join("r1", "Bob", bob);
    CHECK(bob.last<protocol::Joined>().participants.size() == 1);
    CHECK(f.rooms->participantCount() == 2);
    CHECK(f.rooms->viewerCount() == 1);
    const api::RoomDetail detail = f.rooms->detail("r1");
    CHECK(detail.participants.size() == 2);
    REQUIRE(detail.viewers.size() == 1);
    CHECK(detail.viewers[0].id == v);
    CHECK(f.rooms->list().at(0).participants == 2);
    CHECK(f.rooms->list().at(0).viewers == 1);
    const auto snapshot = f.rooms->metrics();
    CHECK(snapshot.rooms.at(0).participants.size() == 2);
    CHECK(snapshot.rooms.at(0).viewers == 1);

    // Its offer and candidates reach its peer; it leaves unannounced.
    f.rooms->offer(v,
                   "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n");
    CHECK(f.engine.peer("r1", v).offers.size() == 1);
    f.rooms->leave(v);
    CHECK(f.rooms->viewerCount() == 0);
    CHECK(alice.count<protocol::ParticipantLeft>() == 0);
    CHECK(alice.count<protocol::ParticipantJoined>() == 1); // Bob's
    CHECK(f.rooms->detail("r1").viewers.empty());
    (void)a;
    (void)b;
}

TEST_CASE("view: refusals (no room, an unknown tier, a full room, a bad token, an offer that sends)",
          "[rooms][viewer]") {
    Config config = Fixture::defaultConfig();
    config.limits.viewersPerRoom = 2;
    config.joinToken = "s3cret";
    Fixture f(config);
    FakeSink alice, p1, p2, p3;
    protocol::Join join = joinMessage("r1", "Alice");
    join.token = "s3cret";
    // Nobody in the room: a viewer opens none.
    room::ViewRequest request = viewRequest("r1");
    request.token = "s3cret";
    CHECK(codeOf([&] { f.rooms->view(request, p1); }) == ErrorCode::NotFound);
    CHECK(f.rooms->roomCount() == 0);
    CHECK(f.engine.roomsCreated == 0);
    f.rooms->join(join, alice);

    request.token = "wrong";
    CHECK(codeOf([&] { f.rooms->view(request, p1); }) == ErrorCode::Unauthorized);
    request.token = "s3cret";
    request.tier = "ultra";
    CHECK(codeOf([&] { f.rooms->view(request, p1); }) == ErrorCode::BadRequest);
    CHECK(f.rooms->viewerCount() == 0);
    CHECK(p1.messages.empty());

    request.tier.reset();
    const std::string v1 = f.rooms->view(request, p1);
    f.rooms->view(request, p2);
    CHECK(codeOf([&] { f.rooms->view(request, p3); }) == ErrorCode::RoomFull);
    CHECK(f.rooms->viewerCount() == 2);
    // A viewer's media would get a tile: an offer that sends is refused.
    CHECK(codeOf([&] { f.rooms->offer(v1, "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendrecv\r\n"); }) ==
          ErrorCode::BadRequest);
    CHECK(f.engine.peer("r1", v1).offers.empty());
    // Viewers do not fill the members' places (maxParticipants 3).
    FakeSink bob, carol;
    join.name = "Bob";
    CHECK_NOTHROW(f.rooms->join(join, bob));
    join.name = "Carol";
    CHECK_NOTHROW(f.rooms->join(join, carol));
}

TEST_CASE("view: the room's last participant leaving removes its viewers", "[rooms][viewer]") {
    Fixture f;
    FakeSink alice, player;
    const std::string a = f.join("r1", "Alice", alice);
    const std::string v = f.rooms->view(viewRequest("r1"), player);
    f.rooms->leave(a);
    CHECK(player.disconnected);
    CHECK(f.rooms->roomCount() == 0);
    CHECK(f.rooms->viewerCount() == 0);
    CHECK(FakePeer::alive == 0);
    // Its id is gone: leaving again is harmless, an offer is refused.
    CHECK_NOTHROW(f.rooms->leave(v));
    CHECK(codeOf([&] { f.rooms->offer(v, "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\n"); }) ==
          ErrorCode::NotJoined);
}

// ---- Live streaming ----------------------------------------------------------

TEST_CASE("live: targets start, conflict, fail alone (or retry) and stop; the room's end stops them", "[rooms][live]") {
    TempDir dir;
    Config config = Fixture::defaultConfig();
    config.live.dir = (dir.path / "live").string();
    config.live.maxTargets = 3;
    Fixture f(config);
    FakeSink alice;
    const std::string a = f.join("r1", "Alice", alice);
    const auto code = [](ErrorCode c) {
        return Catch::Predicate<Error>([c](const Error& e) { return e.code() == c; });
    };
    CHECK_THROWS_MATCHES(f.rooms->startLive("nope", {true, {}, false}), Error, code(ErrorCode::NotFound));
    CHECK_THROWS_MATCHES(f.rooms->stopLive("r1", ""), Error, code(ErrorCode::Conflict));

    // Each stream gets a directory of its own, numbered on from the last;
    // of the earlier ones only the newest stays (it may still be ending its
    // stream); anything else stays.
    const fs::path r1 = dir.path / "live" / "r1";
    fs::create_directories(r1 / "3");
    fs::create_directories(r1 / "7");
    std::ofstream(r1 / "3" / "segment00007.ts") << "old";
    std::ofstream(r1 / "7" / "segment00001.ts") << "last";
    std::ofstream(r1 / "notes.txt") << "mine";
    auto targets = f.rooms->startLive("r1", {true, {"rtmp://a.example/app/secret-key"}, false});
    REQUIRE(targets.size() == 2);
    CHECK(targets[0].id == "hls");
    CHECK(targets[0].url == "/live/r1/index.m3u8");
    CHECK(targets[1].id == "rtmp-1");
    CHECK(targets[1].url == "rtmp://a.example/app/***"); // the key never shows
    CHECK(targets[1].state == "running");
    CHECK_FALSE(fs::exists(r1 / "3"));
    CHECK(fs::exists(r1 / "7" / "segment00001.ts"));
    CHECK(fs::exists(r1 / "notes.txt"));
    FakeRoomMedia& media = f.engine.room("r1");
    CHECK(media.live.size() == 2);
    CHECK(media.live.at("hls").directory == fs::canonical(r1 / "8").string());
    CHECK(media.live.at("rtmp-1").url == "rtmp://a.example/app/secret-key");
    CHECK(f.rooms->hlsDirectory("r1") == media.live.at("hls").directory);
    CHECK_FALSE(f.rooms->hlsDirectory("r2"));

    // Running targets named again conflict; the limit counts every target.
    CHECK_THROWS_MATCHES(f.rooms->startLive("r1", {true, {}, false}), Error, code(ErrorCode::Conflict));
    CHECK_THROWS_MATCHES(f.rooms->startLive("r1", {false, {"rtmp://a.example/app/secret-key"}, false}), Error,
                         code(ErrorCode::Conflict));
    CHECK_THROWS_MATCHES(f.rooms->startLive("r1", {false, {"rtmp://b/app/1", "rtmp://c/app/2"}, false}), Error,
                         code(ErrorCode::Conflict));
    CHECK(media.live.size() == 2); // a refused request starts nothing

    // A target that fails goes alone; without retry it stays failed, with its reason.
    media.live.erase("rtmp-1");
    media.listener.onLiveFailed("rtmp-1", "sink: Connection refused");
    auto detail = f.rooms->detail("r1");
    REQUIRE(detail.live.size() == 2);
    CHECK(detail.live[0].state == "running");
    CHECK(detail.live[1].state == "failed");
    CHECK(detail.live[1].reason == "sink: Connection refused");
    CHECK(detail.live[1].failures == 1);
    CHECK(f.rooms->metrics().liveFailures == 1);
    CHECK(f.rooms->metrics().rooms.at(0).live.size() == 2);

    // Named again, a failed target starts afresh; with retry a failure waits to reconnect.
    targets = f.rooms->startLive("r1", {false, {"rtmp://a.example/app/secret-key"}, true});
    CHECK(targets[1].state == "running");
    CHECK(targets[1].retry);
    media.live.erase("rtmp-1");
    media.listener.onLiveFailed("rtmp-1", "sink: Connection reset by peer");
    detail = f.rooms->detail("r1");
    CHECK(detail.live[1].state == "retrying");
    REQUIRE(detail.live[1].retryInSeconds);
    CHECK(*detail.live[1].retryInSeconds <= 1.0);
    // A failure reported for a target that is no longer running changes nothing.
    media.listener.onLiveFailed("rtmp-1", "late");
    CHECK(f.rooms->detail("r1").live[1].failures == 2);

    // A start the media refuses is a failure too; the other targets go on.
    media.failLive = true;
    targets = f.rooms->startLive("r1", {false, {"rtmps://d.example:443/live2/k"}, false});
    REQUIRE(targets.size() == 3);
    CHECK(targets[2].state == "failed");
    CHECK(targets[2].reason == "cannot start");
    media.failLive = false;

    // One target stops; then all.
    CHECK_THROWS_MATCHES(f.rooms->stopLive("r1", "rtmp-9"), Error, code(ErrorCode::NotFound));
    const std::string hlsDir = media.live.at("hls").directory;
    targets = f.rooms->stopLive("r1", "hls");
    CHECK(targets.size() == 2);
    CHECK(media.live.empty());
    // The ended stream stays served (its playlist ends it) while the room is open.
    CHECK(f.rooms->hlsDirectory("r1") == hlsDir);
    CHECK(f.rooms->stopLive("r1", "").empty());

    // Started again at once, HLS writes elsewhere than the stream that ended
    // (which may still be writing its end), and that one is served no more.
    f.rooms->startLive("r1", {true, {}, false});
    CHECK(media.live.size() == 1);
    CHECK(media.live.at("hls").directory == fs::canonical(r1 / "9").string());
    CHECK(f.rooms->hlsDirectory("r1") == media.live.at("hls").directory);
    CHECK(fs::exists(hlsDir));
    CHECK_FALSE(fs::exists(r1 / "7"));

    // The room's end stops its targets.
    f.rooms->leave(a);
    // `media` went with the room; its destructor checked that nothing was left attached.
    CHECK(FakeRoomMedia::alive == 0);
    CHECK_FALSE(f.rooms->hlsDirectory("r1"));
}
