#pragma once
// One participant's media: a bin holding its webrtcbin, the decode branches
// of what it sends, and the send branches of what it receives (the shared
// video and its own mix-minus audio).
//
//   vtee ─► queue ! pay ──────────────────────────► webrtcbin.sink_<video>
//   silence ─► queue ─► minusmix ! audio-send ─────► webrtcbin.sink_<audio>
//   every other participant's audio tee ─┘
//   webrtcbin.src (audio) ─► decode ! tee ─► queue ─► room audiomixer (full mix)
//                                         └─► every other participant's minusmix
//   webrtcbin.src (video) ─► decode ! queue ─► room compositor
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>

#include "gst_util.h"
#include "tessera/media/engine.h"
#include "tessera/policy/speaker.h"
#include "tessera/policy/tiers.h"

namespace tessera::media {

class RoomPipeline;

class PeerCore : public std::enable_shared_from_this<PeerCore> {
public:
    PeerCore(RoomPipeline& room, std::string id, PeerOptions options, PeerListener& listener, unsigned order);
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
    GstElement* bin() const { return m_bin.get(); }
    PeerListener& listener() const { return m_listener; }

private:
    struct Offer {
        std::string sdp;
        std::vector<GstWebRTCRTPTransceiverDirection> directions; // ours, per m-line
    };
    // Thread: main.
    void applyOffer(const std::string& sdp);
    void onRemoteDescriptionSet();
    void onAnswerCreated(GstWebRTCSessionDescription* answer);
    void buildSendBranches();
    void onConnectionState(GstWebRTCPeerConnectionState state);
    void negotiationDone();
    // Thread: streaming.
    void onPadAdded(GstPad* pad);
    void linkAudioInput(GstPad* pad);
    void linkVideoInput(GstPad* pad, bool screenShare);
    void onStats(const GstStructure* reply);
    // Thread: main. Feeds the receiver's loss to its tier selector and moves
    // it to another tier when that says so.
    void updateTier(const policy::TierInput& input);
    void switchTier(std::size_t next);
    // Counts the receiver on `tier`, records it, and returns a new pad on
    // that tier's tee (not linked yet).
    PadRef takeTier(std::size_t tier);

    static void padAddedThunk(GstElement*, GstPad* pad, gpointer data) noexcept;
    static void iceCandidateThunk(GstElement*, guint mline, gchar* candidate, gpointer data) noexcept;
    static void connectionStateThunk(GObject* webrtc, GParamSpec*, gpointer data) noexcept;
    static void prepareChannelThunk(GstElement*, GstWebRTCDataChannel* channel, gboolean local, gpointer data) noexcept;
    static void dataChannelThunk(GstElement*, GstWebRTCDataChannel* channel, gpointer data) noexcept;
    static void messageStringThunk(GstWebRTCDataChannel* channel, gchar* text, gpointer data) noexcept;
    static void messageDataThunk(GstWebRTCDataChannel* channel, GBytes* bytes, gpointer data) noexcept;

    RoomPipeline& m_room; // Borrowed; outlives every use (guarded by m_stopped).
    const std::string m_id;
    const PeerOptions m_options;
    PeerListener& m_listener; // Borrowed; the room removes the peer before the listener.
    const unsigned m_order;
    ElementRef m_bin;    // Owned.
    ElementRef m_webrtc; // Owned by m_bin.

    // Negotiation state. Thread: main.
    int m_cameraMline = -1;          // the first video m-line; later ones are screen shares
    int m_audioMline = -1;           // where we send the mix-minus audio
    int m_videoMline = -1;           // where we send the composite
    PadRef m_audioSink, m_videoSink; // webrtcbin sink pads of those m-lines
    int m_audioPt = -1;
    guint m_audioSsrc = 0, m_videoSsrc = 0; // as announced in our answer
    int m_videoPt = -1;
    bool m_sending = false;     // send branches built
    bool m_negotiating = false; // an offer is being answered
    std::optional<std::string> m_queuedOffer;
    std::vector<std::string> m_mids; // per m-line
    unsigned m_mlines = 0;           // m-lines known to webrtcbin
    PadRef m_videoTeePad, m_audioTeePad;
    PadRef m_videoEntry;                         // where its tier's encoded video enters the bin
    std::size_t m_tier = 0;                      // the quality tier it receives (RoomPipeline::tierTee)
    std::optional<policy::TierSelector> m_tiers; // set once video is sent; indices as RoomPipeline::ladder()
    bool m_switching = false;                    // a tier switch waits for the old tee pad to be idle
    bool m_connected = false;

    // Shared with streaming threads.
    mutable std::mutex m_mutex;
    bool m_stopped = false;
    std::set<int> m_shareMlines;     // m-lines that carry a screen share
    std::vector<PadRef> m_mixerPads; // room mixer sink pads this peer feeds
    PeerStats m_stats;
    std::map<std::string, Ref<GstWebRTCDataChannel>> m_channels; // by label
    std::uint64_t m_lastBytesIn = 0, m_lastBytesOut = 0;
    struct LossCount {
        std::uint64_t lost = 0, sent = 0; // at the client's latest report that changed `lost`
    };
    std::map<std::string, LossCount> m_remoteLoss; // per outbound stream id
    std::int64_t m_lastStatsTime = 0;

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
    PeerStats stats() const override { return m_core->stats(); }

private:
    std::shared_ptr<PeerCore> m_core;
};

} // namespace tessera::media
