#pragma once
// One participant's media: a bin holding its webrtcbin, the decode branches
// of what it sends, and the send branches of what it receives (the shared
// video and its own mix-minus audio).
//
//   vtee ─► pay ──────────────────────────► webrtcbin.sink_<video>
//   the room's K+1 Opus tees ─► funnel ! pay ─► webrtcbin.sink_<audio>
//     (an AudioSwitch passes one of them, switching on packet boundaries;
//     no queue per receiver: each encode's send queue sends, peer_branches.cpp)
//   webrtcbin.src (audio) ─► decode ─► the room's mixer (the full mix and
//                                      the K speaker slots' mixes)
//   webrtcbin.src (video) ─► decode ! queue ─► room compositor
//
// PeerCore is one class in several files, one per responsibility:
//   peer.cpp             lifecycle: webrtcbin, ICE/TURN setup, signals, stop
//   peer_negotiation.cpp the offer (planned by protocol::planOffer) and the answer
//   peer_branches.cpp    send branches, and receive branches on pad-added
//   peer_stats.cpp       webrtcbin stats: bit rates and the client's loss
//   peer_tiers.cpp       moving the receiver between quality tiers
//   peer_bwe.cpp         transport-cc on the video we send; its feedback -> estimate
//   peer_probe.cpp       padding that probes a receiver's link before it steps up a tier
//   peer_data.cpp        data channels
// It sees its room only through PeerRoom (below).
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gst/webrtc/webrtc.h>

#include "gst_util.h"
#include "name_label.h"
#include "tessera/media/engine.h"
#include "tessera/policy/bandwidth.h"
#include "tessera/policy/probe.h"
#include "tessera/policy/tiers.h"
#include "tessera/protocol/offer_plan.h"
#include "tile_scaler.h"

namespace tessera::media {

class Fragments;
class PeerCore;
struct TierStep; // peer_tiers.cpp

// Work to unhook a leaving peer from elements that stay. Tee pads are
// detached when idle (a tee stops its whole stream if one branch is
// flushing); mixer pads are released once the peer's bin is NULL.
struct PadDetach {
    ElementRef element; // the tee or mixer that owns `pad`
    PadRef pad;
};
struct DetachPlan {
    std::vector<PadDetach> tees;   // detach when idle, before the bin goes NULL
    std::vector<PadDetach> mixers; // release after the bin is NULL
    // Held until the bin is NULL and out of the pipeline, and dropped last:
    // the room stops its pipeline only once every such teardown is done.
    PendingWork::Token teardown;
};

// Whether a video source's decoder is fed. A source the layout does not show
// is not decoded at all: its RTP is dropped before the depayloader (a probe
// on the decode fragment's sink), so the decoder, scaler and label cost
// nothing while it is hidden; its sender is asked to stop sending too
// (`send-size`). Opened again, the sender is asked for a key frame (PLI),
// and the depayloader (wait-for-keyframe) passes nothing before one: the
// tile shows its last frame, never a broken one, until it arrives.
class DecodeGate {
public:
    // Open (feeding) to start with: the sender's first key frame is decoded
    // while the room places the source.
    explicit DecodeGate(GstPad* decoderSink);
    // Thread: main. Opening asks the sender for a key frame.
    void setOpen(bool open);
    bool open() const { return m_open->load(); }

private:
    PadRef m_sink; // the decode fragment's sink, linked to webrtcbin's src pad
    std::shared_ptr<std::atomic<bool>> m_open = std::make_shared<std::atomic<bool>>(true); // shared with the probe
};

// A video input of the compositor: a participant's camera or screen share.
struct VideoSource {
    std::string id;
    std::string participantId;
    std::string name;
    bool screenShare = false;
    unsigned order = 0;                 // the participant's join order
    PadRef mixerPad;                    // the compositor sink pad it feeds
    std::optional<NameLabel> label;     // its name on its frames (silent unless the layout has labels)
    std::optional<TileScaler> scaler;   // the size its decode fragment scales to
    std::shared_ptr<DecodeGate> gate{}; // set once built; the room opens it while the source has a tile
};

// The room's shared elements a peer links to. Borrowed from the room, which
// outlives its peers; fixed for the room's life, so readable on any thread.
struct RoomParts {
    const Config* config = nullptr;
    const Fragments* fragments = nullptr;
    GstBin* pipeline = nullptr;
    GstElement* audioMixer = nullptr; // the full mix
    GstElement* videoMixer = nullptr; // the compositor
    std::vector<policy::Tier> ladder; // quality tiers, highest bit rate first
};

// The room as a peer sees it (mediasoup's Listener pattern): what a peer
// tells its room. RoomPipeline implements it.
class PeerRoom {
public:
    virtual const RoomParts& parts() const = 0;

    // Thread: main.
    virtual void peerStarted(GstElement* bin, std::weak_ptr<PeerCore> peer) = 0;
    // Forgets the participant (its tiles, audio links and bin); returns what to unhook.
    virtual DetachPlan peerStopped(const std::string& participantId, GstElement* bin) = 0;
    virtual void addSource(VideoSource source) = 0;
    // A participant's screen share went live or stopped (from its offers).
    virtual void setScreenShareActive(const std::string& participantId, bool active) = 0;
    // K+1 audio. Thread: streaming, before the first buffer reaches
    // `mixerPad`, the participant's input on the room's mixer (the room
    // tells it which mix leaves it out). Thread: main, `funnel` takes what
    // it hears (the room links each of its Opus encodes to it and passes
    // one at a time).
    virtual void addAudioInput(const std::string& participantId, GstPad* mixerPad) = 0;
    virtual void addAudioOutput(const std::string& participantId, GstElement* funnel) = 0;
    // The client's offer has a video m-line (it sends or receives video):
    // the room starts its compositor and tier encoders if they are not running.
    virtual void startVideo() = 0;

    // Thread: streaming (the participant's decoded audio, before any mixer
    // has it). One frame's RMS level and the running time it starts at: a
    // speaker gets its private mix before its first loud frame is mixed.
    virtual void onAudioLevel(const std::string& participantId, double levelDbfs, GstClockTime start) = 0;

    // Thread: main. One encoder per (tier, codec) in use, shared by its
    // receivers: built on first use, it encodes only while it has receivers.
    // addReceiver returns the tee its encoded video comes out of (the room's,
    // for the room's life). `codec` is one of video.codecs.
    virtual GstElement* addReceiver(std::size_t tier, const std::string& codec) = 0;
    virtual void removeReceiver(std::size_t tier, const std::string& codec) = 0;
    // Thread: any. Rate-limited per encoder (shared by its receivers). `why`
    // names the cause in the log ("peer p1 connected"): a key frame costs
    // every receiver of the encoder its size in bandwidth.
    virtual void requestKeyFrame(std::size_t tier, const std::string& codec, const std::string& why) = 0;

protected:
    ~PeerRoom() = default;
};

// A receiver's stream as its key-frame requests see it (watchKeyFrameRequests).
struct EntryWatch {
    std::string id;
    // When its first key frame (since it was linked, or since its last tier
    // switch) went in; -1: none yet. Thread: any.
    std::atomic<std::int64_t> startedUs{-1};
};

// The video stream as the receiver gets it, and the probe cluster being
// sent on it (peer_probe.cpp). Shared by the video payloader's streaming
// thread, the audio's (which sends the padding), the RTP session's (its
// feedback) and the main thread, under `mutex`.
struct VideoPadding {
    VideoPadding(int transportCcId, GstPad* video);
    ~VideoPadding();
    VideoPadding(const VideoPadding&) = delete;
    VideoPadding& operator=(const VideoPadding&) = delete;

    std::mutex mutex;
    const int twccId;  // the transport-cc extension's id on the video
    GWeakRef videoSrc; // the video payloader's src pad, where padding goes
    // What padding copies, known once the payloader sent a packet.
    bool seen = false;
    guint32 ssrc = 0, rtpTime = 0;
    guint8 pt = 0;
    // The latest sequence number sent, and how far padding moved the payloader's numbering.
    guint16 lastSeq = 0, shift = 0;
    // The cluster (monotonic us): `bps` from startUs to endUs, paced up to
    // sentUs so far, in `packets` packets of sentBytes; feedback on it is
    // wanted while `collecting`.
    std::int64_t startUs = 0, endUs = 0, sentUs = 0, bps = 0, sentBytes = 0;
    std::size_t packets = 0;
    bool collecting = false;
    // The link's queue, from the feedback on every packet (watchFeedback
    // reads it for the clusters' verdicts too).
    policy::QueueGrowth queue;
};

class PeerCore : public std::enable_shared_from_this<PeerCore> {
public:
    PeerCore(PeerRoom& room, std::string id, PeerOptions options, PeerListener& listener, unsigned order);
    ~PeerCore();

    // Thread: main.
    void start();
    void stop();
    void handleOffer(const std::string& sdp);
    void addRemoteCandidate(const std::optional<protocol::IceCandidate>& candidate);
    void fail(const std::string& reason);
    void requestStats();
    PeerStats stats() const;
    void sendData(const DataMessage& message);
    std::uint64_t dataBuffered(const std::string& label) const;
    // The client asks for audio only (true) or video again (peer_tiers.cpp).
    void setAudioOnly(bool audioOnly);
    // Transport-cc feedback on the probe cluster's padding (peer_probe.cpp).
    void onProbeFeedback(const std::vector<policy::ProbePacket>& packets);

private:
    // peer.cpp. Thread: main.
    void onConnectionState(GstWebRTCPeerConnectionState state);
    // The client restarts ICE with these credentials: start our checks over.
    void restartIce(const std::string& ufrag, const std::string& pwd);
    // True once stop() ran. Thread: any.
    bool stopped() const;

    // peer_negotiation.cpp. Thread: main.
    void applyOffer(const std::string& sdp);
    void onRemoteDescriptionSet();
    void onAnswerCreated(GstWebRTCSessionDescription* answer);
    void onLocalDescriptionSet();

    // peer_branches.cpp.
    void buildSendBranches(); // Thread: main.
    // Thread: streaming. Builds the decode branch of a new webrtcbin src pad
    // inside the bin, under m_mutex, so no buffer arrives unlinked; what it
    // tells the room is posted to the main thread.
    void onPadAdded(GstPad* pad);
    void linkAudioInput(GstPad* pad);
    void watchKeyFrameRequests(GstPad* entry);
    // Reports each decoded frame's level to the room (PeerRoom::onAudioLevel).
    void watchLevels(GstPad* decoded);
    void linkVideoInput(GstPad* pad, bool screenShare, const std::string& codec);
    // Sinks a video stream nobody shows (a stopped one's last packets): a pad
    // left unlinked answers NOT_LINKED, which a source takes as fatal.
    void dropStream(GstPad* pad, int mline);

    // peer_stats.cpp. Thread: webrtcbin's (a promise callback); only our own
    // members, under m_mutex.
    void onStats(const GstStructure* reply);

    // peer_tiers.cpp. Thread: main. Feeds the receiver's loss to its tier
    // selector and moves it to another tier when that says so.
    void updateTier(const policy::TierInput& input);
    // `next` (and m_tier) may be the audio-only tier, ladder.size().
    void switchTier(std::size_t next);
    // Once a step between video tiers has swapped: the old tier stops
    // counting it (thread: main).
    void stepped(const std::shared_ptr<TierStep>& step);
    // A step still under way when the peer stops: the old tee pad to detach
    // too, unless the new tier took over already.
    std::optional<PadDetach> cancelStep();
    // Counts the receiver on `tier`, records it, and returns a new pad on
    // that tier's tee (not linked yet); none for the audio-only tier.
    PadRef takeTier(std::size_t tier);
    // Tells the listener when the receiver went audio only (and why) or got video back.
    void tellAudioOnly();

    // peer_bwe.cpp. Thread: main. Puts the transport-cc header extension the
    // client offered (extmap id `id`, -1: none) on the payloader in `payBin`
    // and follows the session's feedback.
    void enableTransportCc(GstElement* payBin, int id);
    void onTransportFeedback(policy::TransportFeedback feedback);

    // peer_probe.cpp. Thread: main. Numbers the video sent from `videoSrc`
    // (the payloader's pad) where webrtcbin takes it (`webrtcSink`), and
    // reads the feedback that reaches the payloader; sends the padding with
    // what `audioSrc` sends; and starts a probe when the tier selector wants
    // one, then gives it the verdict.
    void watchVideoSend(GstPad* videoSrc, GstPad* webrtcSink);
    void paceProbes(GstPad* audioSrc);
    void driveProbe(std::int64_t nowMs);
    void judgeProbe(bool final);

    // peer_data.cpp: the client's channel with that label (null: none yet).
    Ref<GstWebRTCDataChannel> channel(const std::string& label) const;

    // C trampolines (noexcept, glib::guarded).
    static void padAddedThunk(GstElement*, GstPad* pad, gpointer data) noexcept;
    static void twccStatsThunk(GObject* session, GParamSpec*, gpointer data) noexcept;
    static void iceCandidateThunk(GstElement*, guint mline, gchar* candidate, gpointer data) noexcept;
    static void connectionStateThunk(GObject* webrtc, GParamSpec*, gpointer data) noexcept;
    static void gatheringStateThunk(GObject* webrtc, GParamSpec*, gpointer data) noexcept;
    static void prepareChannelThunk(GstElement*, GstWebRTCDataChannel* channel, gboolean local, gpointer data) noexcept;
    static void dataChannelThunk(GstElement*, GstWebRTCDataChannel* channel, gpointer data) noexcept;
    static void messageStringThunk(GstWebRTCDataChannel* channel, gchar* text, gpointer data) noexcept;
    static void messageDataThunk(GstWebRTCDataChannel* channel, GBytes* bytes, gpointer data) noexcept;
    // Thread: streaming (SCTP). Posts a received message to the listener.
    static void deliver(gpointer data, GstWebRTCDataChannel* channel, bool binary, std::string payload);

    PeerRoom& m_room;         // Borrowed; outlives every use (guarded by m_stopped).
    const RoomParts& m_parts; // m_room's
    const std::string m_id;
    const PeerOptions m_options;
    PeerListener& m_listener; // Borrowed; the room removes the peer before the listener.
    const unsigned m_order;
    ElementRef m_bin;    // Owned.
    ElementRef m_webrtc; // Owned by m_bin.

    // Negotiation state. Thread: main.
    protocol::OfferState m_offer;           // what the offers so far settled; written under m_mutex
    PadRef m_audioSink, m_videoSink;        // webrtcbin sink pads of the m-lines we send on
    guint m_audioSsrc = 0, m_videoSsrc = 0; // as announced in our answer
    bool m_sending = false;                 // send branches built
    bool m_negotiating = false;             // an offer is being answered
    std::optional<std::string> m_queuedOffer;
    // The answer webrtcbin is applying; sent to the client once applied.
    std::unique_ptr<GstWebRTCSessionDescription, decltype(&gst_webrtc_session_description_free)> m_pendingAnswer{
        nullptr, gst_webrtc_session_description_free};
    std::pair<std::string, std::string> m_remoteIce; // the client's ICE ufrag and pwd, from its latest offer
    std::vector<std::string> m_mids;                 // per m-line
    PadRef m_videoTeePad;
    ElementRef m_videoTee;                    // the room's tee m_videoTeePad is on: its encoder's output
    PadRef m_videoEntry;                      // where its tier's encoded video enters the bin
    std::shared_ptr<EntryWatch> m_entryWatch; // when its stream started, for key-frame requests
    std::size_t m_tier = 0; // the quality tier it receives, in m_offer.cameraCodec; ladder.size(): audio only
    std::optional<policy::TierSelector> m_tiers; // set once video is sent; indices as RoomParts::ladder
    bool m_switching = false;                    // a tier switch waits for the old tee pad or a key frame
    std::shared_ptr<TierStep> m_step;            // a step between video tiers, until it swapped
    bool m_audioOnlyRequested = false;           // the client asked for audio only
    std::optional<std::string> m_toldAudioOnly;  // the audio-only reason last told ("": video); none: nothing yet
    // The client's transport-cc extmap ids on our video and audio, -1: none.
    int m_videoTransportCcId = -1, m_audioTransportCcId = -1;
    bool m_followingFeedback = false; // the RTP session's twcc-stats are watched
    policy::BandwidthEstimator m_bwe; // of the link to the client, from its transport-cc feedback
    // Link probes: none without transport-cc on the video, an audio m-line or a tier selector.
    std::shared_ptr<VideoPadding> m_padding;
    std::optional<policy::ProbeJudge> m_probe; // the cluster (m_padding's) awaiting its verdict
    std::string m_probeFor;                    // the tier it probes for, for the log
    bool m_connected = false;

    // Shared with streaming threads.
    mutable std::mutex m_mutex;
    bool m_stopped = false;
    std::set<int> m_shareMlines;              // m-lines that carry a screen share
    std::map<int, std::string> m_videoCodecs; // video m-line -> the codec it was planned with (its decoder)
    std::vector<PadRef> m_mixerPads;          // room mixer sink pads this peer feeds
    ElementRef m_cameraScale;                 // its camera's decode fragment's name=scale (stats: the decoded size)
    PeerStats m_stats;
    std::map<std::string, Ref<GstWebRTCDataChannel>> m_channels; // by label
    std::uint64_t m_lastBytesIn = 0, m_lastBytesOut = 0;
    std::map<std::string, policy::ReportedLoss> m_remoteLoss; // per outbound stream id
    std::int64_t m_lastStatsTime = 0;
    std::atomic<std::int64_t> m_lastFeedbackUs{0}; // the last twcc-stats window used (twccStatsThunk)

    std::vector<SignalConnection> m_signals; // Last: disconnected first.
};

// The Peer handed to the room: destroying it stops the core.
class GstPeer : public Peer {
public:
    explicit GstPeer(std::shared_ptr<PeerCore> core) : m_core(std::move(core)) {}
    ~GstPeer() override { m_core->stop(); }
    void handleOffer(const std::string& sdp) override { m_core->handleOffer(sdp); }
    void addRemoteCandidate(const std::optional<protocol::IceCandidate>& c) override { m_core->addRemoteCandidate(c); }
    void sendData(const DataMessage& message) override { m_core->sendData(message); }
    std::uint64_t dataBuffered(const std::string& label) const override { return m_core->dataBuffered(label); }
    PeerStats stats() const override { return m_core->stats(); }
    void setAudioOnly(bool audioOnly) override { m_core->setAudioOnly(audioOnly); }

private:
    std::shared_ptr<PeerCore> m_core;
};

} // namespace tessera::media
