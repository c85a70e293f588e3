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

#include "fragments.h"
#include "gst_util.h"
#include "tessera/layout/geometry.h"
#include "tessera/media/engine.h"
#include "tessera/policy/speaker.h"
#include "tessera/policy/tiers.h"

namespace tessera::media {

class PeerCore;
class Recorder;

// The fragment key of a tier's encoder (pipelines/encode-<codec>.pipeline
// loaded with the tier's size and bit rate).
inline std::string tierEncoder(const Config& config, const VideoTier& tier) {
    return "encode-" + config.video.codec + ":" + tier.name;
}
// The configured tiers, highest bit rate first.
std::vector<VideoTier> sortedTiers(const VideoConfig& video);

// Work to unhook a leaving peer from elements that stay. Tee pads are
// detached when idle (a tee stops its whole stream if one branch is
// flushing); mixer pads are released once the peer's bin is NULL.
struct PadDetach {
    ElementRef element; // the tee or mixer that owns `pad`
    PadRef pad;
    ElementRef ghostOwner; // a bin that stays and carries a ghost pad for the link (may be empty)
    PadRef ghost;
};
struct DetachPlan {
    std::vector<PadDetach> tees;   // detach when idle, before the bin goes NULL
    std::vector<PadDetach> mixers; // release after the bin is NULL
};

// A video input of the compositor: a participant's camera or screen share.
struct VideoSource {
    std::string id;
    std::string participantId;
    std::string name;
    bool screenShare = false;
    unsigned order = 0; // the participant's join order
    PadRef mixerPad;    // the compositor sink pad it feeds
    ElementRef label;   // the textoverlay drawing its name (silent unless the layout has labels)
};

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

class RoomPipeline : public RoomMedia {
public:
    RoomPipeline(std::string room, const Config& config, const Fragments& fragments, RoomListener& listener);
    ~RoomPipeline() override;

    std::unique_ptr<Peer> addPeer(const std::string& participantId, const PeerOptions& options,
                                  PeerListener& listener) override;
    void setLayout(const protocol::LayoutSpec& spec) override;
    RoomStats stats() const override;
    std::string startRecording(const RecordingRequest& request) override;
    void stopRecording(std::function<void(const RecordingResult&)> done) override;

    // Immutable after construction: any thread.
    GstBin* pipeline() const { return GST_BIN(m_pipeline.get()); }
    GstElement* audioTee() const { return m_audioTee.get(); }
    GstElement* videoMixer() const { return m_videoMixer.get(); }
    GstElement* audioMixer() const { return m_audioMixer.get(); }
    GstElement* rawVideoTee() const { return m_rawTee.get(); } // the composite before the encoder
    GstElement* fullMixTee() const { return m_fullMix.get(); } // everyone's audio
    const Fragments& fragments() const { return m_fragments; }
    const Config& config() const { return m_config; }
    const std::string& name() const { return m_room; }

    // Quality tiers, highest bit rate first: tier i's encoded video comes out
    // of tierTee(i). A tier encodes only while it has receivers. Thread: any.
    const VideoTier& tier(std::size_t i) const { return m_tiers.at(i)->spec; }
    // The tiers as the policy sees them, in the same order.
    const std::vector<policy::Tier>& ladder() const { return m_ladder; }
    GstElement* tierTee(std::size_t i) const { return m_tiers.at(i)->tee.get(); }
    void addReceiver(std::size_t tier);
    void removeReceiver(std::size_t tier);
    // Rate-limited per tier encoder (shared by its receivers).
    void requestKeyFrame(std::size_t tier);

    // Thread: main.
    void addSource(VideoSource source);
    void removeSources(const std::string& participantId);
    // A participant's screen share went live or stopped (from its offers);
    // tells the room, and shows or hides the share's tile.
    void setScreenShareActive(const std::string& participantId, bool active);
    void registerPeer(GstElement* bin, std::weak_ptr<PeerCore> peer);
    void unregisterPeer(GstElement* bin);

    // Mix-minus: each receiver's mixer sums every other participant's decoded
    // audio directly, so its own voice is never in it (no cancellation to
    // keep sample-exact). Thread: any.
    void addAudioInput(const std::string& participantId, GstElement* tee);
    void addAudioOutput(const std::string& participantId, GstElement* mixer);
    // Forgets the participant's audio links; returns what to unhook.
    DetachPlan removeAudio(const std::string& participantId);

private:
    struct EncoderTier {
        VideoTier spec;
        ElementRef valve, encoder, tee;
        std::atomic<int> receivers{0};
        std::atomic<std::int64_t> lastKeyFrameRequest{0};
        std::atomic<bool> keyFramePending{false};
    };
    std::unique_ptr<EncoderTier> buildTier(const VideoTier& spec, GstElement* rawTee);
    void relayout();
    // Thread: any, with m_audioMutex held.
    void linkAudio(const std::string& from, GstElement* tee, const std::string& to, GstElement* mixer);
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
    void onTick();
    // Thread: main. Takes a new speaker decision, if any, into m_speaker;
    // true when the speaker changed (the caller relayouts and tells the room).
    bool adoptSpeaker(bool changed);
    // Thread: main. Applies a new speaker decision, if any.
    void speakerMaybeChanged(bool changed);

    std::string m_room;
    const Config& m_config;       // Borrowed; outlives this.
    const Fragments& m_fragments; // Borrowed; outlives this.
    RoomListener& m_listener;     // Borrowed; outlives this.
    ElementRef m_pipeline;        // Owned.
    ElementRef m_videoMixer, m_audioMixer, m_audioTee;
    std::vector<std::unique_ptr<EncoderTier>> m_tiers; // highest bit rate first; fixed after construction
    std::vector<policy::Tier> m_ladder;                // m_tiers' specs, for the tier policy
    ElementRef m_rawTee, m_fullMix;                    // the recorder's sources
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

    struct AudioLink {
        std::string from, to;
        PadDetach teeSide;   // in `from`'s bin
        PadDetach mixerSide; // in `to`'s bin
    };
    std::mutex m_audioMutex;
    std::map<std::string, ElementRef> m_audioInputs;  // participant -> its decoded-audio tee
    std::map<std::string, ElementRef> m_audioOutputs; // participant -> its mix-minus mixer
    std::vector<AudioLink> m_audioLinks;
    unsigned m_joinCounter = 0;

    // Counted on streaming threads.
    std::atomic<std::uint64_t> m_framesOut{0};
    std::atomic<std::uint64_t> m_framesDropped{0};
    std::atomic<std::uint64_t> m_keyFramesForced{0};   // over every tier's encoder
    std::atomic<std::int64_t> m_pendingBackground{-1}; // ARGB to apply, or -1
    // Frame rate over the last tick.
    std::uint64_t m_lastFrames = 0;
    std::int64_t m_lastTickTime = 0;
    double m_fps = 0;
    unsigned m_ticks = 0;
    std::string m_speaker; // participant id of the active speaker
    policy::SpeakerDetector m_speakers;

    guint m_busWatch = 0;
    guint m_tickSource = 0;

    // Recording. Thread: main.
    std::unique_ptr<Recorder> m_recorder;                   // Owned; in m_pipeline while attached.
    std::function<void(const RecordingResult&)> m_stopDone; // a pending stopRecording()
    bool m_removingRecorder = false;
    guint m_stopTimeout = 0;
    std::shared_ptr<bool> m_alive = std::make_shared<bool>(true); // for posted work
};

} // namespace tessera::media
