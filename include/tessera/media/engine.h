#pragma once
// The room <-> media boundary. The room module talks to media only through
// these interfaces (unit tests use a fake); the GStreamer implementation is
// created by createGstEngine(). Every listener call arrives on the main
// context: media marshals streaming-thread signals before calling up.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tessera/protocol/config.h"
#include "tessera/protocol/error.h"
#include "tessera/protocol/layout_spec.h"
#include "tessera/protocol/messages.h"

namespace tessera::media {

// One message on a data channel ("chat", "file"), text or binary.
struct DataMessage {
    std::string label;
    bool binary = false;
    std::string data;
};

class PeerListener {
public:
    virtual ~PeerListener() = default;
    // Thread: main.
    virtual void onAnswer(const std::string& sdp) = 0;
    // nullopt once gathering is complete (end of candidates).
    virtual void onLocalCandidate(const std::optional<protocol::IceCandidate>& candidate) = 0;
    // The peer's media failed (bad offer, ICE/DTLS failure, pipeline error);
    // the room should remove it. The room and other peers go on.
    virtual void onPeerFailed(const std::string& reason) = 0;
    // A message arrived on one of the client's data channels.
    virtual void onDataMessage(const DataMessage& message) = 0;
    // The client went onto the audio-only tier (`audioOnly`, and `reason`:
    // "link", "maxBitrate" or "request") or got video back (reason empty).
    // Only changes are told; a client that always had video hears nothing.
    virtual void onAudioOnly(bool audioOnly, const std::string& reason) = 0;
};

struct PeerOptions {
    std::string name;
    bool receiveOnly = false;
    std::optional<std::int64_t> maxBitrate;
    // A quality tier's name: the peer receives that tier whatever its link
    // does (a WHEP viewer's ?tier=); nullopt or unknown: chosen by bandwidth.
    std::optional<std::string> tier;
};

struct PeerStats {
    std::uint64_t bitrateIn = 0;  // bits/s, RTP received from the client
    std::uint64_t bitrateOut = 0; // bits/s, RTP sent to the client
    std::uint64_t packetsLost = 0;
    // bits/s the link to the client carries, from its transport-wide
    // congestion control feedback (policy::BandwidthEstimator); none until
    // feedback arrives (a client that negotiated no transport-cc has none).
    std::optional<std::uint64_t> estimatedBps;
    std::string tier = "high"; // the tier it receives, or will once connected; "audio": the audio-only tier
    std::string sendCodec;     // the video codec it sends on its camera line ("vp8", "h264", "vp9"); "": none
    std::string receiveCodec;  // the video codec the composite goes to it in; "": none
    bool connected = false;    // ICE and DTLS up; until then nothing is encoded for it
    // The size its camera is decoded at (the decoder's output caps), none
    // before the first decoded frame. With `send-size` obeyed, the size asked.
    std::optional<protocol::VideoSize> decodedSize;
    // The labels of the data channels the client opened with the server, sorted.
    std::vector<std::string> dataChannels;
};

class Peer {
public:
    // Tears the peer down: its elements reach NULL, mixer pads are released.
    virtual ~Peer() = default;
    // Thread: main. Answers through PeerListener::onAnswer, or onPeerFailed.
    virtual void handleOffer(const std::string& sdp) = 0;
    // nullopt: end of candidates.
    virtual void addRemoteCandidate(const std::optional<protocol::IceCandidate>& candidate) = 0;
    // Sends on the client's data channel with that label; dropped (and
    // logged) when the client has no such open channel.
    virtual void sendData(const DataMessage& message) = 0;
    // Bytes sent on that channel that have not left for the client yet (its
    // RTCDataChannel bufferedAmount); 0 without such a channel.
    virtual std::uint64_t dataBuffered(const std::string& label) const = 0;
    virtual PeerStats stats() const = 0;
    // The client asks for audio only (true: no video is sent to it) or for
    // video again; also before its media is up.
    virtual void setAudioOnly(bool audioOnly) = 0;
};

// One quality tier's encoder in one codec (video.tiers x video.codecs),
// once built: a room builds one when a receiver first needs it.
struct TierStats {
    std::string name;
    unsigned receivers = 0;   // receivers it feeds; with none its valve is shut and it encodes nothing
    std::uint64_t frames = 0; // frames its encoder produced
    std::string codec;        // one of video.codecs
};

struct RoomStats {
    double outputFps = 0;              // composite frames/s over the last few seconds
    std::uint64_t framesOut = 0;       // composite frames produced
    std::uint64_t framesDropped = 0;   // composite frames dropped before the encoder
    std::uint64_t keyFramesForced = 0; // key frames requested from the encoder (receivers' PLI/FIR, joins)
    unsigned elements = 0;             // elements in the room pipeline (leak check)
    unsigned opusEncoders = 0;         // Opus encodes fed now: of the room's K+1, those in use; and the recorder's
    bool compositing = false;          // the compositor and tier branches run (someone sends or receives video)
    unsigned videoDecoders = 0;        // cameras and screen shares decoded now: those the layout shows
    std::vector<TierStats> tiers;      // highest first; within a tier, video.codecs' order
    struct Codec {
        std::string name;      // one of video.codecs, in their order
        unsigned encoders = 0; // its encoders encoding now: one per tier that has receivers in this codec
    };
    std::vector<Codec> codecs;
    unsigned liveTargets = 0; // live targets attached (they share one H.264 + AAC encode)
};

class RoomListener {
public:
    virtual ~RoomListener() = default;
    // Thread: main. participantId empty: nobody speaks.
    virtual void onSpeakerChanged(const std::string& participantId) = 0;
    // Thread: main. A participant started or stopped a screen share (its
    // offer added a second video m-line, or made it inactive).
    virtual void onScreenShareChanged(const std::string& participantId, bool active) {
        (void)participantId;
        (void)active;
    }
    // Thread: main. The recorder opened a new file (the first one too);
    // `offsetSeconds`: where it starts in the recording.
    virtual void onRecordingSegment(const std::string& path, double offsetSeconds) {
        (void)path;
        (void)offsetSeconds;
    }
    // Thread: main. The layout shows one of the participant's video sources at
    // a new largest size, or not at all (docs/protocol.md, `send-size`): tell
    // the participant. Never called from inside a RoomMedia call.
    virtual void onSendSize(const std::string& participantId, const protocol::SendSize& size) {
        (void)participantId;
        (void)size;
    }
    // Thread: main. Whose video the composite shows now, and whose it leaves
    // out (docs/protocol.md, `on-screen`): tell everyone. Coalesced (at most
    // one per 500 ms); never called from inside a RoomMedia call.
    virtual void onOnScreen(const protocol::OnScreen& onScreen) { (void)onScreen; }
    // Thread: main. The recorder failed (unwritable target, disk full, an
    // element error) and was removed; the room goes on. No stop follows.
    virtual void onRecordingFailed(const std::string& reason) { (void)reason; }
    // Thread: main. A live target failed (refused connection, lost network,
    // unwritable directory) and was removed; the room, the recording and the
    // other targets go on. Never called from inside a RoomMedia call.
    virtual void onLiveFailed(const std::string& id, const std::string& reason) {
        (void)id;
        (void)reason;
    }
};

// One place the room's mix is streamed to live (docs/protocol.md, "Live").
// Every target of a room shares one encode (H.264 + AAC) of its composite
// and full mix.
struct LiveTarget {
    enum class Kind { Hls, Rtmp };
    std::string id; // unique in the room
    Kind kind = Kind::Hls;
    std::string url;       // rtmp: where to push (validated: protocol::parseLiveStart)
    std::string directory; // hls: where the playlist and segments go (exists, writable, emptied)
};

// What to record: the room's composite and its full audio mix.
struct RecordingRequest {
    std::string directory; // exists and is writable (checked by the caller)
    std::string stem;      // file name without extension, safe (see recordingStem in room.h)
    std::string format;    // "mkv", "webm" or "mp4"
};

struct RecordingResult {
    std::string file;    // the first (or only) file
    double duration = 0; // seconds of media in the file(s)
    std::string error;   // non-empty: the recording did not finish cleanly
};

class RoomMedia {
public:
    virtual ~RoomMedia() = default;
    virtual std::unique_ptr<Peer> addPeer(const std::string& participantId, const PeerOptions& options,
                                          PeerListener& listener) = 0;
    // Applies within a frame period; no renegotiation.
    virtual void setLayout(const protocol::LayoutSpec& spec) = 0;
    virtual RoomStats stats() const = 0;

    // Attaches a recorder to the running room; returns the path of the first
    // file. Throws Error(Conflict) if one is attached, Error(BadRequest) for
    // an unknown format, Error(Internal) when it cannot start.
    virtual std::string startRecording(const RecordingRequest& request) {
        (void)request;
        throw Error(ErrorCode::Internal, "this media engine cannot record");
    }
    // Drains the recorder (the file is finalised: index and duration
    // written), removes it, then calls `done` on the main context. Never
    // calls `done` from inside this call, nor after this object is destroyed.
    // Throws Error(Conflict) when not recording.
    virtual void stopRecording(std::function<void(const RecordingResult&)> done) {
        (void)done;
        throw Error(ErrorCode::Conflict, "not recording");
    }

    // Attaches a live target to the running room. Throws Error(Internal) when
    // it cannot start; a target that fails later is reported through
    // RoomListener::onLiveFailed.
    virtual void startLive(const LiveTarget& target) {
        (void)target;
        throw Error(ErrorCode::Internal, "this media engine cannot stream live");
    }
    // Detaches the target (nothing if it is not attached: it failed already);
    // it ends its stream (the last HLS segment and #EXT-X-ENDLIST) on its own
    // time, within a bound.
    virtual void stopLive(const std::string& id) { (void)id; }
    // Whether stopped targets are still ending their streams: then `done`
    // runs on the main context once all have (and the live encoder is gone),
    // never from inside this call nor after this object is destroyed.
    virtual bool whenLiveStopped(std::function<void()> done) {
        (void)done;
        return false;
    }

    // Stops the room's media off the main loop (its pipeline going NULL
    // waits for streaming threads and for its last peers' teardowns), then
    // calls `stopped` on the main context, never from inside this call nor
    // after this object is destroyed; destroying it is then quick. Called
    // once nobody is in the room. False if it does not: destroying the
    // object stops the media then.
    virtual bool stop(std::function<void()> stopped) {
        (void)stopped;
        return false;
    }
};

class Engine {
public:
    virtual ~Engine() = default;
    virtual std::unique_ptr<RoomMedia> createRoom(const std::string& room, RoomListener& listener) = 0;
};

// Loads and checks the pipeline fragments; throws Error(Internal) naming the
// file and GStreamer's message when one does not parse.
std::unique_ptr<Engine> createGstEngine(const Config& config);

} // namespace tessera::media

namespace tessera::media {
// Checks one pipeline fragment file (tessera validate): throws Error(Internal)
// with "file:line: reason" when it does not parse, uses an unknown
// ${placeholder} or lacks an element the server looks up by name.
void validateFragmentFile(const std::string& path);
} // namespace tessera::media
