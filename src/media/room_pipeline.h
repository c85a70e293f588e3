#pragma once
// One GstPipeline per room: the compositor and the full audio mix, the shared
// video encoder, and a bin per participant (see peer.h).
#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gst/video/video.h>

#include "audio_switch.h"
#include "fragments.h"
#include "gst_util.h"
#include "peer.h"
#include "tessera/layout/geometry.h"
#include "tessera/media/engine.h"
#include "tessera/policy/coalescer.h"
#include "tessera/policy/send_size.h"
#include "tessera/policy/speaker.h"
#include "tessera/policy/speaker_set.h"
#include "tessera/policy/tiers.h"

namespace tessera::media {

class Recorder;
class LiveStream;

// The fragment key of a (tier, codec) encoder (pipelines/encode-<codec>.pipeline
// loaded with the tier's size and bit rate).
inline std::string tierEncoder(const std::string& codec, const policy::Tier& tier) {
    return "encode-" + codec + ":" + tier.name;
}

// Sets what every mixer (the compositor, the full audio mix, each
// mix-minus) shares. Its minimum upstream latency is the jitter buffer plus
// kMixerSlackMs: an input's buffers reach the mixer that long after they
// leave its jitter buffer at the latest (decode, scale, convert on a busy
// machine), and a joiner, whose jitter buffer the mixer must also wait for,
// never raises the pipeline's latency mid-call (DESIGN.md, "facts that
// bite"). Measured with GST_TRACERS=latency at N = 4 on 2 cores at load 11:
// the decode chain's per-element p99s add up to ~58 ms for video (p95s to
// ~15) and ~30 ms for audio (docs/architecture.md, "Latency").
inline constexpr unsigned kMixerSlackMs = 50;
void configureMixer(GstElement* mixer, const Config& config);

// One composite frame's geometry: applied on the compositor's thread just
// before it draws a frame (its samples-selected signal), so every frame's
// pictures and the borders painted on it always belong to the same layout.
struct CompositePlan {
    struct Placement {
        PadRef pad;
        std::optional<layout::Tile> tile; // nullopt: hidden
    };
    std::vector<Placement> pads;
    std::vector<layout::Rect> borders; // painted over the composite
    std::array<guint8, 3> borderYuv{};
};

class RoomPipeline : public RoomMedia, public PeerRoom {
public:
    RoomPipeline(std::string room, const Config& config, const Fragments& fragments, RoomListener& listener);
    ~RoomPipeline() override;

    std::unique_ptr<Peer> addPeer(const std::string& participantId, const PeerOptions& options,
                                  PeerListener& listener) override;
    void setLayout(const protocol::LayoutSpec& spec) override;
    RoomStats stats() const override;
    std::string startRecording(const RecordingRequest& request) override;
    void stopRecording(std::function<void(const RecordingResult&)> done) override;
    void startLive(const LiveTarget& target) override;
    void stopLive(const std::string& id) override;
    bool whenLiveStopped(std::function<void()> done) override;
    bool stop(std::function<void()> stopped) override;

    // Immutable after construction: any thread.
    GstBin* pipeline() const { return GST_BIN(m_pipeline.get()); }
    GstElement* videoMixer() const { return m_videoMixer.get(); }
    GstElement* audioMixer() const { return m_audioMixer.get(); }
    GstElement* rawVideoTee() const { return m_rawTee.get(); } // the composite before the encoder
    GstElement* fullMixTee() const { return m_fullMix.get(); } // everyone's audio
    const Fragments& fragments() const { return m_fragments; }
    const Config& config() const { return m_config; }
    const std::string& name() const { return m_room; }

    // PeerRoom.
    const RoomParts& parts() const override { return m_parts; }
    void peerStarted(GstElement* bin, std::weak_ptr<PeerCore> peer) override;
    DetachPlan peerStopped(const std::string& participantId, GstElement* bin) override;
    void addSource(VideoSource source) override;
    void setScreenShareActive(const std::string& participantId, bool active) override;
    // K+1 audio (docs/architecture.md, "Audio"): every participant's audio
    // goes into the room's one mixer, which also makes each speaker slot's
    // mix without the slot's owner; each receiver takes the full mix's
    // encode or, while it owns a slot, that slot's.
    void addAudioInput(const std::string& participantId, GstPad* mixerPad) override;
    void addAudioOutput(const std::string& participantId, GstElement* funnel) override;
    void onAudioLevel(const std::string& participantId, double levelDbfs, GstClockTime start) override;
    void startVideo() override;
    GstElement* addReceiver(std::size_t tier, const std::string& codec) override;
    void removeReceiver(std::size_t tier, const std::string& codec) override;
    void requestKeyFrame(std::size_t tier, const std::string& codec, const std::string& why) override;

private:
    // One (tier, codec) encoder. Every pair is allocated with the room (its
    // counters are read from streaming threads); its elements are built on
    // first use (buildTier), those of video.codecs' first codec with the room.
    struct EncoderTier {
        std::size_t tier = 0; // in m_parts.ladder
        std::string codec;    // one of video.codecs
        // Empty until built; set on the main thread before a receiver links to
        // `tee`, so the streaming threads that reach the encoder see them set.
        ElementRef valve, encoder, tee;
        std::atomic<int> receivers{0};
        std::atomic<std::int64_t> lastKeyFrameRequest{0};
        std::atomic<std::int64_t> lastKeyFrameOut{0}; // when the encoder last produced one, forced or periodic
        std::atomic<bool> keyFramePending{false};
        std::atomic<std::uint64_t> frames{0}; // encoded: shows that a tier without receivers costs nothing
        // The encoder's timeline without the time its valve was closed
        // (cutIdleTime): set on the main thread when a first receiver
        // reopens it; the rest is the encoder's streaming thread's.
        std::atomic<bool> resumed{false};
        std::atomic<GstClockTime> idleCut{0};
        GstClockTime nextPts = GST_CLOCK_TIME_NONE;
    };
    // Thread: main. Cuts the time `t`'s valve is closed out of its encoder's
    // input timeline and puts it back on its output.
    static void cutIdleTime(EncoderTier& t);
    // Thread: main. Adds the encoder's elements to the pipeline (playing or not) and links them to the composite.
    void buildTier(std::size_t index);
    // Thread: any. The index in m_tiers of (tier, codec); throws for a codec not in video.codecs.
    std::size_t encoderIndex(std::size_t tier, const std::string& codec) const;
    void requestKeyFrame(EncoderTier& t, const char* why);
    // Thread: streaming (a receiver's, upstream). A receiver's PLI/FIR.
    void onReceiverKeyFrameRequest(std::size_t index);
    // Thread: streaming (the tier encoder's). Every encoded frame on its way to the receivers.
    void onEncodedFrame(std::size_t index, bool keyFrame);
    void relayout();
    // Thread: main. What each shown-or-hidden source is asked to send after
    // a relayout (docs/protocol.md, `send-size`); told to the room, throttled.
    void updateSendSizes(const std::vector<const VideoSource*>& candidates, const std::vector<layout::Tile>& tiles,
                         unsigned canvasWidth, unsigned canvasHeight);
    // Thread: main. The room's notices to clients, coalesced (send sizes
    // and on-screen): one timeout for the earliest due, sent from it.
    void scheduleNotices();
    void sendDueNotices();
    // Thread: main. Forgets the participant's audio links; returns what to unhook.
    DetachPlan removeAudio(const std::string& participantId);
    // Thread: main. Drops the participant's tiles, and its speaker and share state.
    void removeSources(const std::string& participantId);
    // Thread: main. Links one of the room's encode tees to the receiver
    // `to`'s funnel (in its bin); `prepare` gets the funnel's sink pad
    // before the link (no buffer yet).
    void linkAudio(GstElement* tee, const std::string& to, GstElement* funnel,
                   const std::function<void(GstPad*)>& prepare);
    // Thread: main. The full mix's encode and the K slots (room_audio.cpp).
    void buildAudioEncodes();
    // Under m_speakersMutex: mutes the slot's new owner and switches the
    // receivers of the new and the old owner.
    void applySlotChange(const policy::SpeakerSet::Change& change, GstClockTime onset);
    // Thread: the compositor's. Applies a pending plan to the pads.
    void onSamplesSelected();
    // Thread: the compositor's. Paints the current plan's borders on a frame.
    void paintBorders(GstPadProbeInfo* info);
    void onBusMessage(GstMessage* message);
    // Thread: main. A bus message from inside the recorder's bin: its errors
    // stop only the recorder.
    void onRecorderMessage(GstMessage* message);
    // Thread: main. Detaches and removes the recorder, then answers a pending
    // stop or, without one, reports `error` as a failure.
    void removeRecorder(const std::string& error);
    // Thread: main. Closes the live encoder once it has no target left.
    void closeLiveIfIdle();
    void onTick();
    // Thread: main. Recalculates the pipeline latency once, shortly (LATENCY
    // messages come in bursts), on the thread pool.
    void scheduleLatencyUpdate();
    void recalculateLatency();
    // Thread: the background's, at its first frame. Shifts the background so
    // that its next frame starts the compositor on the decoders' frame grid;
    // true when that first frame is to be dropped.
    bool alignBackground(GstPad* pad, GstBuffer* first);
    // Thread: main. Takes a new speaker decision, if any, into m_speaker;
    // true when the speaker changed (the caller relayouts and tells the room).
    bool adoptSpeaker(bool changed);
    // Thread: main. Applies a new speaker decision, if any.
    void speakerMaybeChanged(bool changed);

    std::string m_room;
    const Config& m_config;                // Borrowed; outlives this.
    const Fragments& m_fragments;          // Borrowed; outlives this.
    RoomListener& m_listener;              // Borrowed; outlives this.
    ElementRef m_pipeline;                 // Owned.
    ElementRef m_videoMixer, m_audioMixer; // m_audioMixer: a tesseramixminus (mix_minus.h)
    // Every (tier, codec): video.codecs' order, then m_parts.ladder's (encoderIndex). Fixed after construction.
    std::vector<std::unique_ptr<EncoderTier>> m_tiers;
    ElementRef m_rawTee, m_fullMix; // the recorder's sources
    RoomParts m_parts;              // what peers link to; complete after construction
    protocol::LayoutSpec m_layout;
    GstVideoInfo m_canvasInfo;                 // the composite's format as configured; immutable after construction
    ElementRef m_canvasCaps, m_backgroundCaps; // the composite's size, and its background's
    unsigned m_canvasWidth = 0, m_canvasHeight = 0; // current composite size. Thread: main.
    GstVideoInfo m_frameInfo;                       // the composite's current format. Thread: the compositor's.
    std::mutex m_planMutex;
    std::optional<CompositePlan> m_pendingPlan; // guarded by m_planMutex
    // Thread: the compositor's only (its samples-selected signal and src pad probe).
    std::vector<layout::Rect> m_borders;
    std::array<guint8, 3> m_borderYuv{};
    std::vector<VideoSource> m_sources;
    std::set<std::string> m_sharing;                        // participants whose screen share is live
    std::map<GstElement*, std::weak_ptr<PeerCore>> m_peers; // peer bin -> peer
    PendingWork m_peerTeardowns;                            // stopped peers not yet out of the pipeline

    struct AudioLink {
        std::string to;    // the receiver
        PadDetach teeSide; // on the room's encode tee
    };
    // Thread: main.
    std::vector<AudioLink> m_audioLinks;
    // K+1 audio. Fixed after construction: the encodes' tees, source 0 the
    // full mix's, 1 + k slot k's.
    std::vector<ElementRef> m_encodeTees;
    std::shared_ptr<EncodeDemand> m_encodeDemand; // which of them receivers use: the others are not fed
    ElementRef m_encoder;                         // the full mix's opusenc (all K+1 are alike): its look-ahead
    // Taken on participants' decode threads (onAudioLevel) and the main thread.
    std::mutex m_speakersMutex;
    policy::SpeakerSet m_speakerSet; // who owns which slot
    // Every participant, from addPeer() to peerStopped(): its pad on the
    // mixer (none until its audio arrives), whose `slot` says which mix
    // leaves it out.
    std::map<std::string, PadRef> m_slotPads;
    std::map<std::string, std::shared_ptr<AudioSwitch>> m_audioReceivers; // participant -> what it hears
    // The compositor, its background and the tier branches: locked in NULL
    // until startVideo() (an audio-only room never composites). Thread: main.
    std::vector<ElementRef> m_videoElements; // sinks first
    bool m_videoStarted = false;
    unsigned m_joinCounter = 0;

    // Counted on streaming threads.
    std::atomic<std::uint64_t> m_framesOut{0};
    std::atomic<std::uint64_t> m_framesDropped{0};
    std::atomic<std::uint64_t> m_keyFramesForced{0};   // over every tier's encoder
    std::atomic<std::int64_t> m_pendingBackground{-1}; // ARGB to apply, or -1
    bool m_backgroundAligned = false;                  // Thread: the background's.
    // Frame rate over the last tick.
    std::uint64_t m_lastFrames = 0;
    std::int64_t m_lastTickTime = 0;
    double m_fps = 0;
    unsigned m_ticks = 0;
    std::string m_speaker;            // participant id of the active speaker
    layout::SpeakerRecency m_recency; // who spoke last, for a "recent" rest grid. Thread: main.
    policy::SpeakerDetector m_speakers;

    guint m_busWatch = 0;
    guint m_tickSource = 0;
    guint m_latencyTimer = 0; // a latency recalculation due (scheduleLatencyUpdate)
    // The recalculation running on the pool, if any, and whether another is
    // due after it: at most one at a time.
    struct LatencyRun {
        std::mutex mutex;
        bool running = false;
        bool again = false;
    };
    std::shared_ptr<LatencyRun> m_latencyRun = std::make_shared<LatencyRun>();
    PendingWork m_latencyWork; // the pipeline stops only after it
    // Send sizes, by source id. Thread: main.
    policy::SendSizeThrottle m_sendSizes;
    // Who is in the composite (docs/protocol.md, `on-screen`), one key (""):
    // a speaker change relayouts, and speakers may change often. Thread: main.
    policy::Coalescer<protocol::OnScreen> m_onScreen;
    guint m_noticeTimer = 0; // the next due notice's timeout, 0: none

    // Recording. Thread: main.
    std::unique_ptr<Recorder> m_recorder;                   // Owned; in m_pipeline while attached.
    std::function<void(const RecordingResult&)> m_stopDone; // a pending stopRecording()
    bool m_removingRecorder = false;
    guint m_stopTimeout = 0;
    // Live streaming. Thread: main.
    std::unique_ptr<LiveStream> m_live;                           // Owned; in m_pipeline while it has targets.
    std::vector<std::unique_ptr<LiveStream>> m_closingLive;       // encoders on their way out
    std::vector<std::function<void()>> m_liveStopped;             // whenLiveStopped(), until m_closingLive empties
    std::shared_ptr<bool> m_alive = std::make_shared<bool>(true); // for posted work

    // Stopping (stop()). Thread: main.
    // No timer or bus watch of the room's fires again, nothing posted runs,
    // and the recorder's and live encoders' bins stop apart from the pipeline.
    void detachFromMainLoop();
    bool m_stopping = false;
    PendingWork m_stopWork;                                           // stop()'s job on the pool
    std::shared_ptr<bool> m_stopAlive = std::make_shared<bool>(true); // for stop()'s `stopped`
};

} // namespace tessera::media
