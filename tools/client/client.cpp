// tessera-client: one webrtcbin peer driven by the PROTOCOL.md signaling.
//
// Threads: the GLib main context owns the WebSocket (libsoup), the signaling
// state and stdout. webrtcbin and appsink callbacks arrive on streaming
// threads; they copy their arguments and post() to the main context. Two
// deliberate exceptions, both without libsoup or signaling state:
// - pad-added links the receive chain synchronously: the first RTP buffer is
//   pushed right after the signal returns, and an unlinked pad would turn it
//   into a not-linked flow error.
// - appsink callbacks write the measurements (last frame, frame count, a
//   1 s audio window) under a mutex; the main thread reads them for `report`.
//   Posting every buffer to the main context would cost more than it guards.
#include "client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <gio/gio.h>
#include <glib-unix.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/video/video.h>
#ifndef GST_USE_UNSTABLE_API
#define GST_USE_UNSTABLE_API
#endif
#include <gst/webrtc/webrtc.h>
#include <libsoup/soup.h>
#include <nice/agent.h>
#include <nlohmann/json.hpp>

#include "tessera/analysis/stamp.h"
#include "tessera/protocol/error.h"
#include "tessera/protocol/messages.h"

GST_DEBUG_CATEGORY_STATIC(tessera_client_debug);
#define GST_CAT_DEFAULT tessera_client_debug

namespace tessera::client {
namespace {

using Json = nlohmann::ordered_json;
namespace proto = tessera::protocol;

constexpr unsigned kAudioRate = 48000;
constexpr std::size_t kAudioWindow = kAudioRate; // 1 s, mono
constexpr guint kLeaveCloseTimeoutMs = 1000;
constexpr guint kRecordingFinalizeTimeoutMs = 3000;
constexpr int kVideoPayload = 96;
constexpr int kAudioPayload = 111;
constexpr std::size_t kMaxCommandBytes = 4 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Small ownership helpers for C objects.

template <typename T>
struct GstObjectUnref {
    void operator()(T* p) const noexcept {
        if (p) gst_object_unref(p);
    }
};
template <typename T>
using GstPtr = std::unique_ptr<T, GstObjectUnref<T>>;

template <typename T>
struct GObjectUnref {
    void operator()(T* p) const noexcept {
        if (p) g_object_unref(p);
    }
};
template <typename T>
using GObjectPtr = std::unique_ptr<T, GObjectUnref<T>>;

struct GErrorFree {
    void operator()(GError* e) const noexcept { g_error_free(e); }
};
using GErrorPtr = std::unique_ptr<GError, GErrorFree>;

struct GFree {
    void operator()(void* p) const noexcept { g_free(p); }
};
using GCharPtr = std::unique_ptr<gchar, GFree>;

struct CapsUnref {
    void operator()(GstCaps* c) const noexcept { gst_caps_unref(c); }
};
using CapsPtr = std::unique_ptr<GstCaps, CapsUnref>;

// ---------------------------------------------------------------------------
// Output: one JSON object per line on stdout. Thread: main.

void emit(const Json& j) {
    const std::string line = j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
}

bool g_eventTimestamps = false; // --timestamps; set once before the loop runs

double wallMs() { return static_cast<double>(g_get_real_time()) / 1000.0; }

void emitEvent(std::string_view name, Json fields = Json::object()) {
    Json j = Json::object();
    j["event"] = name;
    for (auto& [k, v] : fields.items()) j[k] = v;
    if (g_eventTimestamps && !j.contains("ts")) j["ts"] = std::round(wallMs() * 10.0) / 10.0;
    if (!g_eventTimestamps) j.erase("ts");
    emit(j);
}

// The p-th percentile (0..100) of `v`, nearest rank; 0 for none.
double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

double round2(double v) { return std::round(v * 100.0) / 100.0; }

std::string frequencyKey(double f) {
    if (f == std::floor(f) && f < 1e9) return std::to_string(static_cast<long long>(f));
    GCharPtr s(g_strdup_printf("%g", f));
    return s.get();
}

// "stun:host:port" -> "stun://host:port"; "turn:h:p?transport=udp" with
// credentials -> "turn://user:pass@h:p?transport=udp" (webrtcbin's form).
std::string toGstIceUrl(const std::string& url, const std::string& user, const std::string& credential) {
    const auto colon = url.find(':');
    if (colon == std::string::npos) return {};
    const std::string scheme = url.substr(0, colon);
    std::string rest = url.substr(colon + 1);
    while (rest.starts_with("/")) rest.erase(0, 1);
    if (scheme == "stun" || scheme == "stuns") return scheme + "://" + rest;
    if (scheme == "turn" || scheme == "turns") {
        GCharPtr u(g_uri_escape_string(user.c_str(), nullptr, FALSE));
        GCharPtr c(g_uri_escape_string(credential.c_str(), nullptr, FALSE));
        return scheme + "://" + u.get() + ":" + c.get() + "@" + rest;
    }
    return {};
}

std::string connectionStateName(GstWebRTCPeerConnectionState s) {
    switch (s) {
    case GST_WEBRTC_PEER_CONNECTION_STATE_NEW: return "new";
    case GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTING: return "connecting";
    case GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED: return "connected";
    case GST_WEBRTC_PEER_CONNECTION_STATE_DISCONNECTED: return "disconnected";
    case GST_WEBRTC_PEER_CONNECTION_STATE_FAILED: return "failed";
    case GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED: return "closed";
    }
    return "unknown";
}

std::string iceStateName(GstWebRTCICEConnectionState s) {
    switch (s) {
    case GST_WEBRTC_ICE_CONNECTION_STATE_NEW: return "new";
    case GST_WEBRTC_ICE_CONNECTION_STATE_CHECKING: return "checking";
    case GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED: return "connected";
    case GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED: return "completed";
    case GST_WEBRTC_ICE_CONNECTION_STATE_FAILED: return "failed";
    case GST_WEBRTC_ICE_CONNECTION_STATE_DISCONNECTED: return "disconnected";
    case GST_WEBRTC_ICE_CONNECTION_STATE_CLOSED: return "closed";
    }
    return "unknown";
}

bool hasProperty(gpointer object, const char* name) {
    return g_object_class_find_property(G_OBJECT_GET_CLASS(object), name) != nullptr;
}

// Maps the packed RGB frame of `sample` and calls fn(FrameView); false if it
// cannot be mapped.
template <typename Fn>
bool withFrame(GstSample* sample, Fn&& fn) {
    GstVideoInfo info;
    GstVideoFrame frame;
    GstCaps* caps = sample ? gst_sample_get_caps(sample) : nullptr;
    GstBuffer* buffer = sample ? gst_sample_get_buffer(sample) : nullptr;
    if (!caps || !buffer || !gst_video_info_from_caps(&info, caps) ||
        !gst_video_frame_map(&frame, &info, buffer, GST_MAP_READ))
        return false;
    const analysis::FrameView view{static_cast<const std::uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)),
                                   GST_VIDEO_FRAME_WIDTH(&frame), GST_VIDEO_FRAME_HEIGHT(&frame),
                                   static_cast<std::size_t>(GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0))};
    fn(view);
    gst_video_frame_unmap(&frame);
    return true;
}

// ---------------------------------------------------------------------------
// Measurements written by appsink callbacks (streaming threads) and read by
// the main thread.

struct VideoMeasure {
    std::mutex mutex;
    GstSample* last = nullptr; // Owned.
    std::uint64_t frames = 0;
    int width = 0;
    int height = 0;
    // Freeze detection: monotonic time of the last frame (µs, 0: none yet) and
    // the longest time between two consecutive frames since the first frame
    // or the last `reset-gap`.
    std::int64_t lastFrameUs = 0;
    std::int64_t maxGapUs = 0;
    ~VideoMeasure() {
        if (last) gst_sample_unref(last);
    }
};

struct AudioMeasure {
    std::mutex mutex;
    std::vector<float> ring = std::vector<float>(kAudioWindow, 0.0f);
    std::size_t pos = 0;    // next write
    std::size_t filled = 0; // valid samples in ring
    std::uint64_t total = 0;

    void append(const float* data, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            ring[pos] = data[i];
            pos = (pos + 1) % ring.size();
        }
        filled = std::min(ring.size(), filled + n);
        total += n;
    }
    // The window in time order. Caller holds the mutex.
    std::vector<float> window() const {
        std::vector<float> out(filled);
        const std::size_t start = (pos + ring.size() - filled) % ring.size();
        for (std::size_t i = 0; i < filled; ++i) out[i] = ring[(start + i) % ring.size()];
        return out;
    }
};

// Arrival gaps of a stream (packets or decoded frames). A gap over 1 s is a
// stall: what a person in the call would notice as a frozen picture.
struct GapMeasure {
    static constexpr gint64 kStallUs = 1000000;
    gint64 lastUs = 0; // monotonic; 0 before the first arrival
    gint64 maxGapUs = 0;
    std::uint64_t stalls = 0;

    void arrive(gint64 nowUs) {
        if (lastUs) {
            const gint64 gap = nowUs - lastUs;
            maxGapUs = std::max(maxGapUs, gap);
            if (gap > kStallUs) ++stalls;
        }
        lastUs = nowUs;
    }
    // Measures from now on (`reset-gap`); a gap still open keeps counting
    // from its start.
    void reset() {
        maxGapUs = 0;
        stalls = 0;
    }
    // The gap still open at `nowUs` counts too: a stream that stopped.
    Json toJson(gint64 nowUs) const {
        const gint64 open = lastUs ? nowUs - lastUs : 0;
        return {{"stalls", stalls + (open > kStallUs ? 1 : 0)},
                {"maxGapMs", std::round(static_cast<double>(std::max(maxGapUs, open)) / 100.0) / 10.0}};
    }
};

// Received RTP of one kind, counted on webrtcbin's source pad (after its
// jitter buffer), decoded or not.
struct RtpMeasure {
    std::mutex mutex;
    std::uint64_t packets = 0;
    std::uint64_t bytes = 0;
    std::uint64_t markers = 0; // video: frames (the marker bit ends a frame)
    GapMeasure gaps;
};

// Glass-to-glass delays read from stamps (--read-stamp), in ms.
struct LatencyMeasure {
    static constexpr std::size_t kMaxSamples = 20000; // 11 minutes of video frames
    std::mutex mutex;
    std::vector<double> video;
    std::vector<double> audio;
    int lastStamp = -1;   // the last stamp read: a repeated frame is not a new sample
    bool visible = false; // the stamp sender's tile is in the picture
    int missedFrames = 0; // consecutive frames without it
    analysis::stamp::ClickDetector clicks;

    static Json summary(const std::vector<double>& v) {
        Json all = Json::array(); // every sample, so that a caller can pick a time window
        for (double d : v) all.push_back(std::round(d * 10.0) / 10.0);
        return {{"samples", v.size()},
                {"ms", all},
                {"p50", round2(percentile(v, 50))},
                {"p95", round2(percentile(v, 95))},
                {"max", round2(v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()))}};
    }
};

// A pre-encoded track (--send-file), held in memory and sent in a loop.
struct EncodedTrack {
    CapsPtr caps;
    std::vector<GstBuffer*> buffers; // Owned.
    std::vector<bool> key;
    GstClockTime duration = 0; // per buffer
    EncodedTrack() = default;
    EncodedTrack(const EncodedTrack&) = delete;
    EncodedTrack& operator=(const EncodedTrack&) = delete;
    ~EncodedTrack() {
        for (GstBuffer* b : buffers) gst_buffer_unref(b);
    }
};

enum class State { Connecting, Connected, Failed, Closed };

std::string_view stateName(State s) {
    switch (s) {
    case State::Connecting: return "connecting";
    case State::Connected: return "connected";
    case State::Failed: return "failed";
    case State::Closed: return "closed";
    }
    return "connecting";
}

class Client;
using Task = std::function<void(Client&)>;

// Defers `task` to the default main context (an idle source, so nothing
// re-enters); dropped if the client is gone by then.
// Thread: any.
void postTo(std::weak_ptr<Client> weak, Task task);

using WeakClient = std::weak_ptr<Client>;
void deleteWeak(gpointer p) noexcept { delete static_cast<WeakClient*>(p); }

// The message of a promise reply's "error" field, or "" when there is none.
std::string promiseError(GstPromise* promise) {
    if (gst_promise_wait(promise) != GST_PROMISE_RESULT_REPLIED) return "promise interrupted or expired";
    const GstStructure* reply = gst_promise_get_reply(promise);
    if (!reply || !gst_structure_has_field(reply, "error")) return {};
    GError* error = nullptr;
    gst_structure_get(reply, "error", G_TYPE_ERROR, &error, nullptr);
    GErrorPtr owned(error);
    return error ? error->message : "unknown error";
}

// ---------------------------------------------------------------------------

class Client : public std::enable_shared_from_this<Client> {
public:
    Client(Options options, GMainLoop* loop) : m_options(std::move(options)), m_loop(loop) {}
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Thread: main. False on a setup failure (already reported on stderr).
    bool start();
    int exitCode() const { return m_exitCode; }

private:
    // Setup. Thread: main.
    bool buildPipeline();
    bool addSender(const std::string& description, const std::string& codecCaps);
    bool addReceiver(const std::string& codecCaps);
    bool addFileSenders();
    bool loadFile(); // --send-file into m_fileVideo / m_fileAudio
    void startPump();
    void pumpFile(); // Thread: its own (m_pump).
    bool restrictIce();
    void connectSignaling();

    // --janus: the Janus AudioBridge JSON API over HTTP instead of Tessera's
    // WebSocket (the benchmark's audio-MCU peer). Thread: main.
    using JanusReply = std::function<void(Client&, const Json&)>;
    void janusStart();
    void janusPost(const std::string& path, Json body, JanusReply then);
    void janusPoll();
    void onJanusEvent(const Json& event);
    static void onJanusReplyCb(GObject* source, GAsyncResult* result, gpointer user) noexcept;

    // Signaling. Thread: main.
    void send(const proto::ClientMessage& message);
    void onWsMessage(std::string_view text);
    void handle(const proto::Joined& m);
    void handle(const proto::Answer& m);
    void handle(const proto::Candidate& m);
    void handle(const proto::ParticipantJoined& m);
    void handle(const proto::ParticipantLeft& m);
    void handle(const proto::LayoutChanged& m);
    void handle(const proto::Speaker& m);
    void handle(const proto::ErrorMessage& m);
    void applyRemoteCandidate(const proto::IceCandidate& c);
    void onWsClosed();

    // Peer. Thread: main.
    void createOffer();
    void onOfferCreated(const std::shared_ptr<GstWebRTCSessionDescription>& offer, const std::string& error);
    void onLocalDescriptionSet(const std::string& error);
    void onRemoteDescriptionSet(const std::string& error);
    void onLocalCandidate(unsigned mline, const std::string& candidate);
    void onPeerStateNotify();
    void setupChannel(GstWebRTCDataChannel* channel);        // Borrowed.
    void onRemoteDataChannel(GstWebRTCDataChannel* channel); // Takes a reference.
    void onChannelEvent(const std::string& label, const std::string& kind, const std::string& text, std::size_t bytes);
    void onFileData(GBytes* data); // Takes a reference.
    void onBusMessage(GstMessage* message);

    // Receive chain. Thread: streaming.
    void linkIncoming(GstPad* pad);
    void onVideoSample(GstSample* sample);               // Takes the sample.
    void onAudioSample(GstSample* sample);               // Takes the sample.
    void readStamp(GstSample* sample, double arrivedMs); // Borrows the sample.

    // Commands on stdin. Thread: main.
    void onStdinReadable(bool eof);
    void command(std::string_view line);
    Json report();

    // Shutdown. Thread: main.
    void leave();
    void quit();
    void finish();
    void stopLoop();
    void setState(State s);
    void localError(const std::string& message);

    // C trampolines: noexcept, catch everything, post to the main context.
    static void onIceCandidateCb(GstElement*, guint mline, gchar* candidate, gpointer user) noexcept;
    static void onStateNotifyCb(GstElement*, GParamSpec*, gpointer user) noexcept;
    static void onDataChannelCb(GstElement*, GstWebRTCDataChannel* channel, gpointer user) noexcept;
    static void onPadAddedCb(GstElement*, GstPad* pad, gpointer user) noexcept;
    static void onChannelOpenCb(GstWebRTCDataChannel* channel, gpointer user) noexcept;
    static void onChannelCloseCb(GstWebRTCDataChannel* channel, gpointer user) noexcept;
    static void onChannelErrorCb(GstWebRTCDataChannel* channel, GError* error, gpointer user) noexcept;
    static void onChannelStringCb(GstWebRTCDataChannel* channel, gchar* text, gpointer user) noexcept;
    static void onChannelDataCb(GstWebRTCDataChannel* channel, GBytes* data, gpointer user) noexcept;
    static void onOfferCreatedCb(GstPromise* promise, gpointer user) noexcept;
    static void onLocalDescriptionCb(GstPromise* promise, gpointer user) noexcept;
    static void onRemoteDescriptionCb(GstPromise* promise, gpointer user) noexcept;
    static GstFlowReturn onVideoSampleCb(GstAppSink* sink, gpointer user) noexcept;
    static GstFlowReturn onAudioSampleCb(GstAppSink* sink, gpointer user) noexcept;
    static GstPadProbeReturn onRecordBufferCb(GstPad*, GstPadProbeInfo* info, gpointer user) noexcept;
    static GstPadProbeReturn onRecordEosCb(GstPad*, GstPadProbeInfo* info, gpointer user) noexcept;
    static GstPadProbeReturn onRtpCb(GstPad*, GstPadProbeInfo* info, gpointer user) noexcept;
    static GstPadProbeReturn onKeyUnitRequestCb(GstPad*, GstPadProbeInfo* info, gpointer user) noexcept;
    static GstPadProbeReturn onStampVideoCb(GstPad* pad, GstPadProbeInfo* info, gpointer user) noexcept;
    static GstPadProbeReturn onStampAudioCb(GstPad* pad, GstPadProbeInfo* info, gpointer user) noexcept;
    double bufferWallMs(GstClockTime pts); // wall-clock time at which a buffer's PTS plays. Thread: any.
    static gboolean onBusCb(GstBus*, GstMessage* message, gpointer user) noexcept;
    static void onWsConnectedCb(GObject* source, GAsyncResult* result, gpointer user) noexcept;
    static void onWsMessageCb(SoupWebsocketConnection*, gint type, GBytes* message, gpointer user) noexcept;
    static void onWsClosedCb(SoupWebsocketConnection*, gpointer user) noexcept;
    static void onWsErrorCb(SoupWebsocketConnection*, GError* error, gpointer user) noexcept;
    static gboolean onStdinCb(GIOChannel*, GIOCondition condition, gpointer user) noexcept;

    Options m_options;
    GMainLoop* m_loop; // Borrowed; outlives this.

    // Media.
    GstPtr<GstElement> m_pipeline;  // Owned.
    GstElement* m_webrtc = nullptr; // Borrowed from m_pipeline.
    GstElement* m_mux = nullptr;    // Borrowed from m_pipeline.
    GstPtr<GstPad> m_muxVideoPad;   // Owned request pad.
    GstPtr<GstPad> m_muxAudioPad;   // Owned request pad.
    std::mutex m_recordMutex;       // Guards the two flags below (streaming threads).
    bool m_muxVideoLinked = false;
    bool m_muxAudioLinked = false;
    std::atomic<bool> m_recordStopping{false};
    bool m_recordDone = false;
    GObjectPtr<GstWebRTCDataChannel> m_chat;                        // Owned.
    GObjectPtr<GstWebRTCDataChannel> m_file;                        // Owned.
    std::vector<GObjectPtr<GstWebRTCDataChannel>> m_remoteChannels; // Owned.
    VideoMeasure m_video;
    AudioMeasure m_audio;
    std::atomic<bool> m_firstAudio{false};
    // "loss N": N % of the packets arriving from the network are dropped
    // before webrtcbin sees them, so its receiver reports tell the server.
    std::atomic<unsigned> m_lossPercent{0};
    std::atomic<unsigned> m_lossCounter{0};
    bool m_lossProbes = false;
    std::atomic<bool> m_stopping{false};
    GapMeasure m_frameGaps; // decoded frames; guarded by m_video.mutex
    RtpMeasure m_rtpVideo;
    RtpMeasure m_rtpAudio;
    LatencyMeasure m_latency;

    // --send-file: the tracks and the thread that sends them in real time.
    EncodedTrack m_fileVideo;
    EncodedTrack m_fileAudio;
    GstElement* m_fileVideoSrc = nullptr; // Borrowed from m_pipeline.
    GstElement* m_fileAudioSrc = nullptr; // Borrowed from m_pipeline.
    std::atomic<bool> m_wantKeyFrame{false};
    std::mutex m_pumpMutex;
    std::condition_variable m_pumpWake;
    bool m_pumpStop = false; // guarded by m_pumpMutex
    std::thread m_pump;
    guint m_busWatch = 0;

    // Signaling.
    GObjectPtr<SoupSession> m_session;        // Owned.
    GObjectPtr<GCancellable> m_cancellable;   // Owned.
    GObjectPtr<SoupWebsocketConnection> m_ws; // Owned.
    std::string m_id;
    std::vector<proto::ParticipantInfo> m_participants;
    std::string m_speaker;
    std::string m_layout;
    std::vector<std::string> m_errors;
    std::vector<std::string> m_mids; // per m-line of our offer
    bool m_offerSent = false;
    bool m_remoteSet = false;
    std::vector<proto::IceCandidate> m_pendingCandidates;
    bool m_endOfCandidatesSent = false;
    std::string m_janusPath; // "/janus/<session>/<handle>" once attached
    std::string m_janusSessionPath;
    std::uint64_t m_janusTransaction = 0;

    // State and counters.
    State m_state = State::Connecting;
    bool m_everConnected = false;
    std::string m_iceState = "new";
    std::string m_pcState = "new";
    std::uint64_t m_chatReceived = 0;
    std::uint64_t m_fileMessages = 0;
    std::uint64_t m_fileBytes = 0;
    FILE* m_fileOut = nullptr; // Owned.

    // Shutdown.
    bool m_leaving = false;
    bool m_finishing = false;
    int m_exitCode = 1;
    guint m_durationTimer = 0;
    guint m_connectTimer = 0;
    guint m_closeTimer = 0;
    guint m_recordTimer = 0;
    guint m_stdinWatch = 0;
    guint m_sigint = 0;
    guint m_sigterm = 0;
    GIOChannel* m_stdin = nullptr; // Owned.
    std::string m_stdinBuffer;     // a partial command line
    bool m_discardingLine = false; // skipping the rest of an overlong line
};

void postTo(std::weak_ptr<Client> weak, Task task) {
    struct Posted {
        std::weak_ptr<Client> weak;
        Task task;
    };
    auto* posted = new Posted{std::move(weak), std::move(task)};
    GSource* source = g_idle_source_new();
    g_source_set_priority(source, G_PRIORITY_DEFAULT);
    g_source_set_callback(
        source,
        [](gpointer data) -> gboolean {
            auto* p = static_cast<Posted*>(data);
            try {
                if (auto client = p->weak.lock()) p->task(*client);
            } catch (const std::exception& e) { GST_ERROR("posted task failed: %s", e.what()); } catch (...) {
                GST_ERROR("posted task failed");
            }
            return G_SOURCE_REMOVE;
        },
        posted, [](gpointer data) { delete static_cast<Posted*>(data); });
    g_source_attach(source, nullptr);
    g_source_unref(source);
}

std::string channelLabel(GstWebRTCDataChannel* channel) {
    gchar* label = nullptr;
    g_object_get(channel, "label", &label, nullptr);
    GCharPtr owned(label);
    return label ? label : "";
}

// ---------------------------------------------------------------------------
// Trampolines.

// Thread: streaming (webrtcbin).
void Client::onIceCandidateCb(GstElement*, guint mline, gchar* candidate, gpointer user) noexcept {
    try {
        postTo(static_cast<Client*>(user)->weak_from_this(),
               [mline, c = std::string(candidate ? candidate : "")](Client& client) {
                   client.onLocalCandidate(mline, c);
               });
    } catch (...) {}
}

// Thread: any. The properties are read on the main thread.
void Client::onStateNotifyCb(GstElement*, GParamSpec*, gpointer user) noexcept {
    try {
        postTo(static_cast<Client*>(user)->weak_from_this(), [](Client& c) { c.onPeerStateNotify(); });
    } catch (...) {}
}

// Thread: streaming.
void Client::onDataChannelCb(GstElement*, GstWebRTCDataChannel* channel, gpointer user) noexcept {
    try {
        auto* ref = static_cast<GstWebRTCDataChannel*>(g_object_ref(channel));
        postTo(static_cast<Client*>(user)->weak_from_this(), [ref](Client& c) { c.onRemoteDataChannel(ref); });
    } catch (...) {}
}

// Thread: streaming. Links synchronously (see the file comment).
void Client::onPadAddedCb(GstElement*, GstPad* pad, gpointer user) noexcept {
    try {
        if (GST_PAD_DIRECTION(pad) == GST_PAD_SRC) static_cast<Client*>(user)->linkIncoming(pad);
    } catch (const std::exception& e) { GST_ERROR("pad-added: %s", e.what()); } catch (...) {
    }
}

// Thread: streaming (SCTP).
void Client::onChannelOpenCb(GstWebRTCDataChannel* channel, gpointer user) noexcept {
    try {
        postTo(static_cast<Client*>(user)->weak_from_this(),
               [label = channelLabel(channel)](Client& c) { c.onChannelEvent(label, "open", {}, 0); });
    } catch (...) {}
}

void Client::onChannelCloseCb(GstWebRTCDataChannel* channel, gpointer user) noexcept {
    try {
        postTo(static_cast<Client*>(user)->weak_from_this(),
               [label = channelLabel(channel)](Client& c) { c.onChannelEvent(label, "close", {}, 0); });
    } catch (...) {}
}

void Client::onChannelErrorCb(GstWebRTCDataChannel* channel, GError* error, gpointer user) noexcept {
    try {
        postTo(static_cast<Client*>(user)->weak_from_this(),
               [label = channelLabel(channel), msg = std::string(error ? error->message : "")](Client& c) {
                   c.onChannelEvent(label, "error", msg, 0);
               });
    } catch (...) {}
}

void Client::onChannelStringCb(GstWebRTCDataChannel* channel, gchar* text, gpointer user) noexcept {
    try {
        std::string s = text ? text : "";
        postTo(static_cast<Client*>(user)->weak_from_this(),
               [label = channelLabel(channel), s = std::move(s)](Client& c) {
                   c.onChannelEvent(label, "string", s, s.size());
               });
    } catch (...) {}
}

void Client::onChannelDataCb(GstWebRTCDataChannel* channel, GBytes* data, gpointer user) noexcept {
    try {
        std::string label = channelLabel(channel);
        // Shared so that the task stays copyable; unref'd with the last copy.
        std::shared_ptr<GBytes> bytes(data ? g_bytes_ref(data) : g_bytes_new(nullptr, 0), g_bytes_unref);
        postTo(static_cast<Client*>(user)->weak_from_this(), [label = std::move(label), bytes](Client& c) {
            if (label == "file")
                c.onFileData(bytes.get());
            else
                c.onChannelEvent(label, "binary", {}, g_bytes_get_size(bytes.get()));
        });
    } catch (...) {}
}

// Thread: webrtcbin's.
void Client::onOfferCreatedCb(GstPromise* promise, gpointer user) noexcept {
    try {
        std::string error = promiseError(promise);
        std::shared_ptr<GstWebRTCSessionDescription> offer;
        if (error.empty()) {
            GstWebRTCSessionDescription* desc = nullptr;
            const GstStructure* reply = gst_promise_get_reply(promise);
            if (reply) gst_structure_get(reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &desc, nullptr);
            if (desc)
                offer.reset(desc, gst_webrtc_session_description_free);
            else
                error = "create-offer replied without an offer";
        }
        gst_promise_unref(promise);
        postTo(*static_cast<WeakClient*>(user), [offer, error](Client& c) { c.onOfferCreated(offer, error); });
    } catch (...) {}
}

void Client::onLocalDescriptionCb(GstPromise* promise, gpointer user) noexcept {
    try {
        std::string error = promiseError(promise);
        gst_promise_unref(promise);
        postTo(*static_cast<WeakClient*>(user), [error](Client& c) { c.onLocalDescriptionSet(error); });
    } catch (...) {}
}

void Client::onRemoteDescriptionCb(GstPromise* promise, gpointer user) noexcept {
    try {
        std::string error = promiseError(promise);
        gst_promise_unref(promise);
        postTo(*static_cast<WeakClient*>(user), [error](Client& c) { c.onRemoteDescriptionSet(error); });
    } catch (...) {}
}

// Thread: streaming (appsink).
GstFlowReturn Client::onVideoSampleCb(GstAppSink* sink, gpointer user) noexcept {
    try {
        if (GstSample* sample = gst_app_sink_pull_sample(sink)) static_cast<Client*>(user)->onVideoSample(sample);
    } catch (...) {}
    return GST_FLOW_OK;
}

GstFlowReturn Client::onAudioSampleCb(GstAppSink* sink, gpointer user) noexcept {
    try {
        if (GstSample* sample = gst_app_sink_pull_sample(sink)) static_cast<Client*>(user)->onAudioSample(sample);
    } catch (...) {}
    return GST_FLOW_OK;
}

// Thread: streaming. On the record branch's way into the muxer: once the
// recording is being finalised, buffers are dropped so that nothing follows
// the EOS sent to the muxer pads.
GstPadProbeReturn Client::onRecordBufferCb(GstPad*, GstPadProbeInfo*, gpointer user) noexcept {
    return static_cast<Client*>(user)->m_recordStopping.load() ? GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK;
}

// Thread: streaming. EOS reached the filesink: the file is complete.
GstPadProbeReturn Client::onRecordEosCb(GstPad*, GstPadProbeInfo* info, gpointer user) noexcept {
    try {
        GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
        if (event && GST_EVENT_TYPE(event) == GST_EVENT_EOS)
            postTo(static_cast<Client*>(user)->weak_from_this(), [](Client& c) {
                c.m_recordDone = true;
                emitEvent("recording-finished", {{"file", c.m_options.recordPath}});
                if (c.m_finishing) c.stopLoop();
            });
    } catch (...) {}
    return GST_PAD_PROBE_OK;
}

// Thread: streaming (webrtcbin's source pad). Counts RTP; user is an RtpMeasure.
GstPadProbeReturn Client::onRtpCb(GstPad*, GstPadProbeInfo* info, gpointer user) noexcept {
    auto* m = static_cast<RtpMeasure*>(user);
    const gint64 now = g_get_monotonic_time();
    const auto count = [&](GstBuffer* buffer) {
        GstMapInfo map;
        bool marker = false;
        if (gst_buffer_map(buffer, &map, GST_MAP_READ)) {
            marker = map.size >= 12 && (map.data[1] & 0x80);
            gst_buffer_unmap(buffer, &map);
        }
        ++m->packets;
        m->bytes += gst_buffer_get_size(buffer);
        if (marker) ++m->markers;
        m->gaps.arrive(now);
    };
    std::lock_guard lock(m->mutex);
    if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
        count(GST_PAD_PROBE_INFO_BUFFER(info));
    } else if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
        GstBufferList* list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
        for (guint i = 0; i < gst_buffer_list_length(list); ++i) count(gst_buffer_list_get(list, i));
    }
    return GST_PAD_PROBE_OK;
}

// Thread: streaming. A key-frame request (PLI/FIR from the server) reached
// the pre-encoded video: the sender jumps to the file's next key frame.
GstPadProbeReturn Client::onKeyUnitRequestCb(GstPad*, GstPadProbeInfo* info, gpointer user) noexcept {
    GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
    if (event && gst_video_event_is_force_key_unit(event)) static_cast<Client*>(user)->m_wantKeyFrame = true;
    return GST_PAD_PROBE_OK;
}

double Client::bufferWallMs(GstClockTime pts) {
    GstPtr<GstClock> clock(gst_element_get_clock(m_pipeline.get()));
    if (!clock || !GST_CLOCK_TIME_IS_VALID(pts)) return wallMs();
    const GstClockTime at = gst_element_get_base_time(m_pipeline.get()) + pts;
    const auto ahead = static_cast<double>(GST_CLOCK_DIFF(gst_clock_get_time(clock.get()), at));
    return wallMs() + ahead / 1e6;
}

// Thread: streaming. Paints the wall-clock stamp into the raw I420 frame.
GstPadProbeReturn Client::onStampVideoCb(GstPad* pad, GstPadProbeInfo* info, gpointer user) noexcept {
    try {
        auto* self = static_cast<Client*>(user);
        GstBuffer* buffer = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
        GST_PAD_PROBE_INFO_DATA(info) = buffer;
        CapsPtr caps(gst_pad_get_current_caps(pad));
        GstVideoInfo vinfo;
        GstVideoFrame frame;
        if (!caps || !gst_video_info_from_caps(&vinfo, caps.get()) ||
            GST_VIDEO_INFO_FORMAT(&vinfo) != GST_VIDEO_FORMAT_I420 ||
            !gst_video_frame_map(&frame, &vinfo, buffer, GST_MAP_WRITE))
            return GST_PAD_PROBE_OK;
        const auto ms = static_cast<std::uint64_t>(self->bufferWallMs(GST_BUFFER_PTS(buffer)));
        analysis::stamp::paintI420(
            {static_cast<std::uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)), GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0),
             static_cast<std::uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 1)), GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 1),
             static_cast<std::uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 2)), GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 2),
             GST_VIDEO_FRAME_WIDTH(&frame), GST_VIDEO_FRAME_HEIGHT(&frame)},
            static_cast<std::uint16_t>(ms & 0xFFFF));
        gst_video_frame_unmap(&frame);
    } catch (...) {}
    return GST_PAD_PROBE_OK;
}

// Thread: streaming. Writes a click at every whole second into raw mono S16.
GstPadProbeReturn Client::onStampAudioCb(GstPad*, GstPadProbeInfo* info, gpointer user) noexcept {
    try {
        auto* self = static_cast<Client*>(user);
        GstBuffer* buffer = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
        GST_PAD_PROBE_INFO_DATA(info) = buffer;
        GstMapInfo map;
        if (gst_buffer_map(buffer, &map, GST_MAP_WRITE)) {
            analysis::stamp::paintClicks(reinterpret_cast<std::int16_t*>(map.data), map.size / sizeof(std::int16_t),
                                         self->bufferWallMs(GST_BUFFER_PTS(buffer)), static_cast<int>(kAudioRate));
            gst_buffer_unmap(buffer, &map);
        }
    } catch (...) {}
    return GST_PAD_PROBE_OK;
}

// Thread: main (bus watch).
gboolean Client::onBusCb(GstBus*, GstMessage* message, gpointer user) noexcept {
    try {
        static_cast<Client*>(user)->onBusMessage(message);
    } catch (...) {}
    return G_SOURCE_CONTINUE;
}

// Thread: main (libsoup).
void Client::onWsConnectedCb(GObject* source, GAsyncResult* result, gpointer user) noexcept {
    try {
        std::unique_ptr<WeakClient> weak(static_cast<WeakClient*>(user));
        GError* error = nullptr;
        SoupWebsocketConnection* ws = soup_session_websocket_connect_finish(SOUP_SESSION(source), result, &error);
        GErrorPtr owned(error);
        GObjectPtr<SoupWebsocketConnection> conn(ws);
        auto self = weak->lock();
        if (!self || self->m_finishing) return;
        if (!ws) {
            self->localError(std::string("cannot connect to ") + self->m_options.server + ": " +
                             (error ? error->message : "unknown error"));
            self->setState(State::Failed);
            self->finish();
            return;
        }
        self->m_ws = std::move(conn);
        g_signal_connect(ws, "message", G_CALLBACK(onWsMessageCb), self.get());
        g_signal_connect(ws, "closed", G_CALLBACK(onWsClosedCb), self.get());
        g_signal_connect(ws, "error", G_CALLBACK(onWsErrorCb), self.get());
        emitEvent("open");
        proto::Join join;
        join.room = self->m_options.room;
        join.name = self->m_options.name;
        join.token = self->m_options.token;
        join.maxBitrate = self->m_options.maxBitrate;
        join.receiveOnly = self->m_options.receiveOnly;
        self->send(join);
    } catch (const std::exception& e) { GST_ERROR("websocket connect: %s", e.what()); } catch (...) {
    }
}

void Client::onWsMessageCb(SoupWebsocketConnection*, gint type, GBytes* message, gpointer user) noexcept {
    try {
        auto* self = static_cast<Client*>(user);
        if (type != SOUP_WEBSOCKET_DATA_TEXT) {
            self->localError("unexpected binary frame from the server");
            return;
        }
        gsize size = 0;
        const auto* data = static_cast<const char*>(g_bytes_get_data(message, &size));
        self->onWsMessage(std::string_view(data ? data : "", size));
    } catch (const std::exception& e) { GST_ERROR("websocket message: %s", e.what()); } catch (...) {
    }
}

void Client::onWsClosedCb(SoupWebsocketConnection*, gpointer user) noexcept {
    try {
        static_cast<Client*>(user)->onWsClosed();
    } catch (...) {}
}

void Client::onWsErrorCb(SoupWebsocketConnection*, GError* error, gpointer user) noexcept {
    try {
        static_cast<Client*>(user)->localError(std::string("websocket: ") + (error ? error->message : "error"));
    } catch (...) {}
}

gboolean Client::onStdinCb(GIOChannel*, GIOCondition condition, gpointer user) noexcept {
    auto* self = static_cast<Client*>(user);
    try {
        self->onStdinReadable((condition & (G_IO_HUP | G_IO_ERR | G_IO_NVAL)) != 0 && (condition & G_IO_IN) == 0);
    } catch (const std::exception& e) { GST_ERROR("stdin: %s", e.what()); } catch (...) {
    }
    return self->m_stdinWatch != 0 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

// ---------------------------------------------------------------------------
// Setup.

std::string videoCodecCaps(VideoCodec codec) {
    // rtcp-fb-* fields become a=rtcp-fb lines: the server may ask for key
    // frames (PLI/FIR) and retransmissions.
    const std::string fb = ",rtcp-fb-nack=(boolean)true,rtcp-fb-nack-pli=(boolean)true,rtcp-fb-ccm-fir=(boolean)true";
    const std::string base = "application/x-rtp,media=video,clock-rate=90000,payload=" + std::to_string(kVideoPayload);
    switch (codec) {
    case VideoCodec::Vp8: return base + ",encoding-name=VP8" + fb;
    case VideoCodec::Vp9: return base + ",encoding-name=VP9" + fb;
    case VideoCodec::H264:
        // What x264enc's constrained-baseline level 3.1 stream carries (the
        // payloader derives the caps from the SPS, so they must agree);
        // 42c01f and Chrome's 42e01f both mean constrained baseline 3.1.
        // webrtcbin adds level-asymmetry-allowed=1 itself.
        return base + ",encoding-name=H264,packetization-mode=(string)1,profile-level-id=(string)42c01f" + fb;
    }
    return {};
}

std::string audioCodecCaps() {
    return "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,encoding-params=(string)2,"
           "minptime=(string)10,useinbandfec=(string)1,payload=" +
           std::to_string(kAudioPayload);
}

std::string formatDouble(double v) {
    char buffer[G_ASCII_DTOSTR_BUF_SIZE];
    return g_ascii_dtostr(buffer, sizeof buffer, v); // locale-independent
}

bool Client::start() {
    if (!m_options.fileOutPath.empty()) {
        m_fileOut = std::fopen(m_options.fileOutPath.c_str(), "wb");
        if (!m_fileOut) {
            g_printerr("tessera-client: cannot open %s for writing\n", m_options.fileOutPath.c_str());
            return false;
        }
    }
    if (!buildPipeline()) return false;

    m_stdin = g_io_channel_unix_new(0);
    g_io_channel_set_encoding(m_stdin, nullptr, nullptr);
    g_io_channel_set_flags(m_stdin, G_IO_FLAG_NONBLOCK, nullptr);
    m_stdinWatch = g_io_add_watch(m_stdin, static_cast<GIOCondition>(G_IO_IN | G_IO_HUP | G_IO_ERR), onStdinCb, this);

    const auto onSignal = [](gpointer user) -> gboolean {
        auto* self = static_cast<Client*>(user);
        // First signal: leave cleanly; next ones: stop waiting.
        if (self->m_finishing) {
            self->stopLoop();
        } else if (self->m_leaving) {
            self->finish();
        } else {
            GST_INFO("signal: leaving");
            self->leave();
        }
        return G_SOURCE_CONTINUE;
    };
    m_sigint = g_unix_signal_add(SIGINT, onSignal, this);
    m_sigterm = g_unix_signal_add(SIGTERM, onSignal, this);

    if (m_options.duration > 0) {
        m_durationTimer = g_timeout_add(
            static_cast<guint>(m_options.duration * 1000),
            [](gpointer user) -> gboolean {
                auto* self = static_cast<Client*>(user);
                self->m_durationTimer = 0;
                try {
                    Json j = self->report();
                    j["final"] = true;
                    emit(j);
                    self->leave();
                } catch (...) {}
                return G_SOURCE_REMOVE;
            },
            this);
    }
    if (m_options.connectTimeout > 0) {
        m_connectTimer = g_timeout_add(
            static_cast<guint>(m_options.connectTimeout * 1000),
            [](gpointer user) -> gboolean {
                auto* self = static_cast<Client*>(user);
                self->m_connectTimer = 0;
                try {
                    if (!self->m_everConnected) {
                        self->localError("not connected after " + formatDouble(self->m_options.connectTimeout) + " s");
                        self->setState(State::Failed);
                        Json j = self->report();
                        j["final"] = true;
                        emit(j);
                        self->leave();
                    }
                } catch (...) {}
                return G_SOURCE_REMOVE;
            },
            this);
    }
    connectSignaling();
    return true;
}

bool Client::buildPipeline() {
    m_pipeline.reset(GST_ELEMENT(gst_object_ref_sink(gst_pipeline_new("tessera-client"))));
    m_webrtc = gst_element_factory_make("webrtcbin", "webrtc");
    if (!m_webrtc) {
        g_printerr("tessera-client: the webrtcbin element is missing (gst-plugins-bad)\n");
        return false;
    }
    gst_util_set_object_arg(G_OBJECT(m_webrtc), "bundle-policy", "max-bundle");
    gst_bin_add(GST_BIN(m_pipeline.get()), m_webrtc);
    if (!restrictIce()) return false;

    g_signal_connect(m_webrtc, "on-ice-candidate", G_CALLBACK(onIceCandidateCb), this);
    g_signal_connect(m_webrtc, "pad-added", G_CALLBACK(onPadAddedCb), this);
    g_signal_connect(m_webrtc, "on-data-channel", G_CALLBACK(onDataChannelCb), this);
    g_signal_connect(m_webrtc, "notify::connection-state", G_CALLBACK(onStateNotifyCb), this);
    g_signal_connect(m_webrtc, "notify::ice-connection-state", G_CALLBACK(onStateNotifyCb), this);
    g_signal_connect(m_webrtc, "notify::ice-gathering-state", G_CALLBACK(onStateNotifyCb), this);

    // Recording: the muxer exists from the start with one video and one
    // audio pad, so it writes its header only once both streams (or EOS)
    // have arrived.
    if (!m_options.recordPath.empty()) {
        m_mux = gst_element_factory_make("matroskamux", "record-mux");
        GstElement* filesink = gst_element_factory_make("filesink", "record-sink");
        if (!m_mux || !filesink) {
            g_printerr("tessera-client: matroskamux or filesink is missing\n");
            return false;
        }
        g_object_set(filesink, "location", m_options.recordPath.c_str(), "async", FALSE, "sync", FALSE, nullptr);
        gst_bin_add_many(GST_BIN(m_pipeline.get()), m_mux, filesink, nullptr);
        if (!gst_element_link(m_mux, filesink)) {
            g_printerr("tessera-client: cannot link matroskamux to filesink\n");
            return false;
        }
        m_muxVideoPad.reset(gst_element_request_pad_simple(m_mux, "video_%u"));
        m_muxAudioPad.reset(gst_element_request_pad_simple(m_mux, "audio_%u"));
        GstPtr<GstPad> sinkPad(gst_element_get_static_pad(filesink, "sink"));
        gst_pad_add_probe(sinkPad.get(), GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, onRecordEosCb, this, nullptr);
    }

    const std::string videoCaps = videoCodecCaps(m_options.videoCodec);
    const std::string audioCaps = audioCodecCaps();
    if (m_options.receiveOnly) {
        if (!addReceiver(audioCaps) || (!m_options.audioOnly && !addReceiver(videoCaps))) return false;
    } else if (!m_options.sendFile.empty()) {
        if (!loadFile() || !addFileSenders()) return false;
    } else {
        // Numbers only, from validated options: this text is parsed as a pipeline.
        const auto& c = m_options.color;
        GCharPtr color(g_strdup_printf("0xFF%02X%02X%02X", c.r, c.g, c.b));
        std::string encoder;
        std::string payloader;
        std::string encoding;
        switch (m_options.videoCodec) {
        case VideoCodec::Vp8:
            encoder = "vp8enc deadline=1 cpu-used=8 threads=1 keyframe-max-dist=60 target-bitrate=600000";
            payloader = "rtpvp8pay picture-id-mode=15-bit";
            encoding = "VP8";
            break;
        case VideoCodec::Vp9:
            encoder = "vp9enc deadline=1 cpu-used=8 threads=1 keyframe-max-dist=60 target-bitrate=600000";
            payloader = "rtpvp9pay picture-id-mode=15-bit";
            encoding = "VP9";
            break;
        case VideoCodec::H264:
            encoder = "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 threads=1 bitrate=600 ! "
                      "video/x-h264,profile=constrained-baseline,level=(string)3.1";
            payloader = "rtph264pay config-interval=-1 aggregate-mode=zero-latency";
            encoding = "H264";
            break;
        }
        // --stamp: silence and a magenta picture, with stamps painted by pad
        // probes on the identities (onStampAudioCb, onStampVideoCb).
        const bool stamped = m_options.stamp;
        const std::string audio =
            "audiotestsrc is-live=true " +
            (m_options.toneHz > 0 && !stamped ? "wave=sine freq=" + formatDouble(m_options.toneHz)
                                              : std::string("wave=silence")) +
            (stamped ? " samplesperbuffer=480 ! audio/x-raw,format=S16LE,rate=48000,channels=1 ! "
                       "identity name=stamp-audio"
                     : " volume=" + formatDouble(m_options.toneVolume) + " ! audio/x-raw,rate=48000,channels=1") +
            " ! audioconvert ! audioresample ! "
            "queue max-size-time=200000000 leaky=downstream ! opusenc ! rtpopuspay pt=" +
            std::to_string(kAudioPayload) +
            " ! capsfilter caps=\"application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=" +
            std::to_string(kAudioPayload) + "\"";
        const std::string video =
            "videotestsrc is-live=true pattern=solid-color foreground-color=" + std::string(color.get()) +
            " ! video/x-raw," + (stamped ? "format=I420," : "") + "width=" + std::to_string(m_options.width) +
            ",height=" + std::to_string(m_options.height) + ",framerate=" + std::to_string(m_options.fps) + "/1 ! " +
            (stamped ? "identity name=stamp-video ! " : "") +
            "videoconvert ! queue max-size-buffers=3 leaky=downstream ! " + encoder + " ! " + payloader +
            " pt=" + std::to_string(kVideoPayload) +
            " ! capsfilter caps=\"application/x-rtp,media=video,encoding-name=" + encoding +
            ",clock-rate=90000,payload=" + std::to_string(kVideoPayload) + "\"";
        if (!addSender(audio, audioCaps) || (!m_options.audioOnly && !addSender(video, videoCaps))) return false;
        if (stamped) {
            for (auto [name, cb] : {std::pair{"stamp-audio", &Client::onStampAudioCb},
                                    std::pair{"stamp-video", &Client::onStampVideoCb}}) {
                GstPtr<GstElement> identity(gst_bin_get_by_name(GST_BIN(m_pipeline.get()), name));
                GstPtr<GstPad> src(identity ? gst_element_get_static_pad(identity.get(), "src") : nullptr);
                if (!src) return false;
                gst_pad_add_probe(src.get(), GST_PAD_PROBE_TYPE_BUFFER, cb, this, nullptr);
            }
        }
    }

    GstPtr<GstBus> bus(gst_pipeline_get_bus(GST_PIPELINE(m_pipeline.get())));
    m_busWatch = gst_bus_add_watch(bus.get(), onBusCb, this);

    if (gst_element_set_state(m_pipeline.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        g_printerr("tessera-client: the pipeline does not start (run with GST_DEBUG=3 for details)\n");
        return false;
    }
    if (m_fileAudioSrc) startPump();
    return true;
}

// Reads the whole --send-file into memory: demuxed, still encoded. The
// queues are unbounded: one sink is drained to its end before the other.
bool Client::loadFile() {
    GError* error = nullptr;
    GstPtr<GstElement> reader(GST_ELEMENT(gst_object_ref_sink(gst_parse_launch(
        "filesrc name=src ! matroskademux name=demux "
        "demux.video_0 ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! appsink name=video sync=false "
        "demux.audio_0 ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! appsink name=audio sync=false",
        &error))));
    GErrorPtr owned(error);
    if (!reader || error) {
        g_printerr("tessera-client: cannot build the file reader: %s\n", error ? error->message : "?");
        return false;
    }
    GstPtr<GstElement> src(gst_bin_get_by_name(GST_BIN(reader.get()), "src"));
    g_object_set(src.get(), "location", m_options.sendFile.c_str(), nullptr); // a property, not parsed text
    gst_element_set_state(reader.get(), GST_STATE_PLAYING);
    bool ok = true;
    for (auto [name, track] : {std::pair{"video", &m_fileVideo}, std::pair{"audio", &m_fileAudio}}) {
        GstPtr<GstElement> sink(gst_bin_get_by_name(GST_BIN(reader.get()), name));
        while (GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink.get()), 10 * GST_SECOND)) {
            if (!track->caps) track->caps.reset(gst_caps_copy(gst_sample_get_caps(sample)));
            GstBuffer* buffer = gst_sample_get_buffer(sample);
            track->buffers.push_back(gst_buffer_ref(buffer));
            track->key.push_back(!GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT));
            if (!track->duration && GST_BUFFER_DURATION_IS_VALID(buffer)) track->duration = GST_BUFFER_DURATION(buffer);
            gst_sample_unref(sample);
        }
        if (track == &m_fileVideo && m_options.audioOnly) continue;
        if (track->buffers.empty() || !track->key.front()) {
            g_printerr("tessera-client: %s has no %s track starting with a key frame (VP8 + Opus Matroska)\n",
                       m_options.sendFile.c_str(), name);
            ok = false;
        }
    }
    gst_element_set_state(reader.get(), GST_STATE_NULL);
    if (!ok) return false;
    if (!m_fileVideo.duration && m_fileVideo.caps) {
        const GstStructure* s = gst_caps_get_structure(m_fileVideo.caps.get(), 0);
        gint num = 0, den = 1;
        m_fileVideo.duration =
            gst_structure_get_fraction(s, "framerate", &num, &den) && num > 0
                ? gst_util_uint64_scale(GST_SECOND, static_cast<guint64>(den), static_cast<guint64>(num))
                : GST_SECOND / 30;
    }
    if (!m_fileAudio.duration) m_fileAudio.duration = 20 * GST_MSECOND;
    return true;
}

// appsrc ! payloader for each track; pumpFile() feeds them in real time.
bool Client::addFileSenders() {
    const std::string video = "appsrc name=file-video is-live=true format=time do-timestamp=false ! "
                              "rtpvp8pay picture-id-mode=15-bit pt=" +
                              std::to_string(kVideoPayload) +
                              " ! capsfilter caps=\"application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,"
                              "payload=" +
                              std::to_string(kVideoPayload) + "\"";
    const std::string audio = "appsrc name=file-audio is-live=true format=time do-timestamp=false ! "
                              "rtpopuspay pt=" +
                              std::to_string(kAudioPayload) +
                              " ! capsfilter caps=\"application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,"
                              "payload=" +
                              std::to_string(kAudioPayload) + "\"";
    if (!addSender(audio, audioCodecCaps())) return false;
    GstPtr<GstElement> a(gst_bin_get_by_name(GST_BIN(m_pipeline.get()), "file-audio"));
    if (!a) return false;
    m_fileAudioSrc = a.get();
    g_object_set(m_fileAudioSrc, "caps", m_fileAudio.caps.get(), nullptr);
    if (m_options.audioOnly) return true;
    if (!addSender(video, videoCodecCaps(VideoCodec::Vp8))) return false;
    GstPtr<GstElement> v(gst_bin_get_by_name(GST_BIN(m_pipeline.get()), "file-video"));
    if (!v) return false;
    m_fileVideoSrc = v.get();
    g_object_set(m_fileVideoSrc, "caps", m_fileVideo.caps.get(), nullptr);
    GstPtr<GstPad> pad(gst_element_get_static_pad(m_fileVideoSrc, "src"));
    gst_pad_add_probe(pad.get(), GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, onKeyUnitRequestCb, this, nullptr);
    return true;
}

void Client::startPump() {
    m_pump = std::thread([this] {
        try {
            pumpFile();
        } catch (...) {}
    });
}

// Pushes the tracks' buffers at their real-time pace, looped, timestamped on
// an ideal schedule from the running time of the first push: the payloaders
// then write steady RTP timestamps whatever this thread's wake-up jitter.
void Client::pumpFile() {
    using namespace std::chrono;
    std::size_t vi = 0, ai = 0;
    std::uint64_t vn = 0, an = 0; // buffers pushed
    GstClockTime start = GST_CLOCK_TIME_NONE;
    steady_clock::time_point origin;
    const auto at = [&](std::uint64_t n, GstClockTime d) {
        return origin + nanoseconds(static_cast<std::int64_t>(n * d));
    };
    std::unique_lock lock(m_pumpMutex);
    while (!m_pumpStop) {
        if (!GST_CLOCK_TIME_IS_VALID(start)) {
            GstPtr<GstClock> clock(gst_element_get_clock(m_pipeline.get()));
            if (!clock) {
                m_pumpWake.wait_for(lock, milliseconds(10));
                continue;
            }
            start = gst_clock_get_time(clock.get()) - gst_element_get_base_time(m_pipeline.get());
            origin = steady_clock::now();
        }
        const auto vDue = m_fileVideoSrc ? at(vn, m_fileVideo.duration) : steady_clock::time_point::max();
        const auto aDue = at(an, m_fileAudio.duration);
        if (m_pumpWake.wait_until(lock, std::min(vDue, aDue), [this] { return m_pumpStop; })) break;
        const auto now = steady_clock::now();
        if (m_fileVideoSrc && vDue <= now) {
            if (m_wantKeyFrame.exchange(false)) {
                std::size_t k = vi;
                while (!m_fileVideo.key[k]) k = (k + 1) % m_fileVideo.buffers.size();
                vi = k;
            }
            GstBuffer* b = gst_buffer_copy(m_fileVideo.buffers[vi]);
            GST_BUFFER_PTS(b) = GST_BUFFER_DTS(b) = start + vn * m_fileVideo.duration;
            GST_BUFFER_DURATION(b) = m_fileVideo.duration;
            gst_app_src_push_buffer(GST_APP_SRC(m_fileVideoSrc), b);
            vi = (vi + 1) % m_fileVideo.buffers.size();
            ++vn;
        }
        if (aDue <= now) {
            GstBuffer* b = gst_buffer_copy(m_fileAudio.buffers[ai]);
            GST_BUFFER_PTS(b) = GST_BUFFER_DTS(b) = start + an * m_fileAudio.duration;
            GST_BUFFER_DURATION(b) = m_fileAudio.duration;
            GST_BUFFER_FLAG_UNSET(b, GST_BUFFER_FLAG_DISCONT);
            gst_app_src_push_buffer(GST_APP_SRC(m_fileAudioSrc), b);
            ai = (ai + 1) % m_fileAudio.buffers.size();
            ++an;
        }
    }
}

// A live source bin, payloaded, linked to a new sendrecv transceiver.
bool Client::addSender(const std::string& description, const std::string& codecCaps) {
    GError* error = nullptr;
    GstElement* bin = gst_parse_bin_from_description(description.c_str(), TRUE, &error);
    GErrorPtr owned(error);
    if (!bin) {
        g_printerr("tessera-client: cannot build \"%s\": %s\n", description.c_str(),
                   error ? error->message : "unknown error");
        return false;
    }
    gst_bin_add(GST_BIN(m_pipeline.get()), bin);
    GstPtr<GstPad> sinkPad(gst_element_request_pad_simple(m_webrtc, "sink_%u"));
    GstWebRTCRTPTransceiver* transceiver = nullptr;
    g_object_get(sinkPad.get(), "transceiver", &transceiver, nullptr);
    GstPtr<GstWebRTCRTPTransceiver> transceiverRef(transceiver);
    if (!transceiver) {
        g_printerr("tessera-client: webrtcbin gave a pad without a transceiver\n");
        return false;
    }
    CapsPtr caps(gst_caps_from_string(codecCaps.c_str()));
    g_object_set(transceiver, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDRECV, "codec-preferences",
                 caps.get(), nullptr);
    GstPtr<GstPad> srcPad(gst_element_get_static_pad(bin, "src"));
    if (!srcPad || gst_pad_link(srcPad.get(), sinkPad.get()) != GST_PAD_LINK_OK) {
        g_printerr("tessera-client: cannot link \"%s\" to webrtcbin\n", description.c_str());
        return false;
    }
    return true;
}

bool Client::addReceiver(const std::string& codecCaps) {
    CapsPtr caps(gst_caps_from_string(codecCaps.c_str()));
    GstWebRTCRTPTransceiver* transceiver = nullptr;
    g_signal_emit_by_name(m_webrtc, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps.get(),
                          &transceiver);
    if (!transceiver) {
        g_printerr("tessera-client: webrtcbin refused a recvonly transceiver\n");
        return false;
    }
    gst_object_unref(transceiver);
    return true;
}

// Only the given addresses are used for host candidates (libnice gathers on
// every interface otherwise). Must run before gathering starts.
bool Client::restrictIce() {
    if (m_options.iceAddresses.empty()) return true;
    GstWebRTCICE* ice = nullptr;
    g_object_get(m_webrtc, "ice-agent", &ice, nullptr);
    GstPtr<GstWebRTCICE> iceRef(ice);
    if (!ice || !hasProperty(ice, "agent")) {
        g_printerr("tessera-client: webrtcbin's ICE agent is not libnice; cannot restrict addresses\n");
        return false;
    }
    NiceAgent* agent = nullptr;
    g_object_get(ice, "agent", &agent, nullptr);
    GObjectPtr<NiceAgent> agentRef(agent);
    if (!agent) return false;
    for (const auto& address : m_options.iceAddresses) {
        NiceAddress a;
        nice_address_init(&a);
        if (!nice_address_set_from_string(&a, address.c_str())) {
            g_printerr("tessera-client: bad --ice-address %s\n", address.c_str());
            return false;
        }
        if (!nice_agent_add_local_address(agent, &a)) {
            g_printerr("tessera-client: libnice refused local address %s\n", address.c_str());
            return false;
        }
    }
    return true;
}

void Client::connectSignaling() {
    m_session.reset(soup_session_new());
    m_cancellable.reset(g_cancellable_new());
    if (!m_options.janus.empty()) {
        janusStart();
        return;
    }
    GError* error = nullptr;
    GUri* uri = g_uri_parse(m_options.server.c_str(), static_cast<GUriFlags>(SOUP_HTTP_URI_FLAGS), &error);
    GErrorPtr owned(error);
    SoupMessage* message = uri ? soup_message_new_from_uri("GET", uri) : nullptr;
    if (uri) g_uri_unref(uri);
    if (!message) {
        localError("bad --server URL " + m_options.server + (error ? std::string(": ") + error->message : ""));
        setState(State::Failed);
        postTo(weak_from_this(), [](Client& c) { c.finish(); });
        return;
    }
    soup_session_websocket_connect_async(m_session.get(), message, nullptr, nullptr, G_PRIORITY_DEFAULT,
                                         m_cancellable.get(), onWsConnectedCb, new WeakClient(weak_from_this()));
    g_object_unref(message);
}

// ---------------------------------------------------------------------------
// Janus AudioBridge signaling (--janus). Thread: main.

namespace {
struct JanusCall {
    std::weak_ptr<Client> client;
    std::function<void(Client&, const Json&)> then;
};
} // namespace

// session -> attach the AudioBridge plugin -> create the room (an "already
// exists" error is fine: another client made it) -> "joined" -> offer.
void Client::janusStart() {
    janusPost("", {{"janus", "create"}}, [](Client& c, const Json& r) {
        c.m_janusSessionPath = "/" + std::to_string(r.at("data").at("id").get<std::uint64_t>());
        c.janusPost(c.m_janusSessionPath, {{"janus", "attach"}, {"plugin", "janus.plugin.audiobridge"}},
                    [](Client& c, const Json& r) {
                        const auto handle = r.at("data").at("id").get<std::uint64_t>();
                        c.m_janusPath = c.m_janusSessionPath + "/" + std::to_string(handle);
                        c.janusPoll();
                        emitEvent("open");
                        Json create = {{"janus", "message"},
                                       {"body",
                                        {{"request", "create"},
                                         {"room", c.m_options.janusRoom},
                                         {"sampling_rate", 48000},
                                         {"permanent", false}}}};
                        c.janusPost(c.m_janusPath, std::move(create), [handle](Client& c, const Json&) {
                            c.m_id = std::to_string(handle);
                            emitEvent("joined", {{"id", c.m_id},
                                                 {"room", std::to_string(c.m_options.janusRoom)},
                                                 {"participants", Json::array()}});
                            c.createOffer();
                        });
                    });
    });
}

void Client::janusPost(const std::string& path, Json body, JanusReply then) {
    body["transaction"] = "t" + std::to_string(++m_janusTransaction);
    const std::string text = body.dump();
    GST_DEBUG("janus -> %s %s", path.c_str(), text.c_str());
    SoupMessage* message = soup_message_new("POST", (m_options.janus + path).c_str());
    if (!message) {
        localError("bad --janus URL " + m_options.janus);
        return;
    }
    GBytes* bytes = g_bytes_new(text.data(), text.size());
    soup_message_set_request_body_from_bytes(message, "application/json", bytes);
    g_bytes_unref(bytes);
    soup_session_send_and_read_async(m_session.get(), message, G_PRIORITY_DEFAULT, m_cancellable.get(), onJanusReplyCb,
                                     new JanusCall{weak_from_this(), std::move(then)});
    g_object_unref(message);
}

// Long poll for the plugin's events (the join's answer); it also keeps the
// Janus session alive.
void Client::janusPoll() {
    if (m_finishing || m_janusSessionPath.empty()) return;
    SoupMessage* message = soup_message_new("GET", (m_options.janus + m_janusSessionPath + "?maxev=10").c_str());
    if (!message) return;
    soup_session_send_and_read_async(m_session.get(), message, G_PRIORITY_DEFAULT, m_cancellable.get(), onJanusReplyCb,
                                     new JanusCall{weak_from_this(), [](Client& c, const Json& r) {
                                                       if (r.is_array())
                                                           for (const auto& e : r) c.onJanusEvent(e);
                                                       else
                                                           c.onJanusEvent(r);
                                                       c.janusPoll();
                                                   }});
    g_object_unref(message);
}

void Client::onJanusEvent(const Json& event) {
    GST_DEBUG("janus <- %s", event.dump().c_str());
    const std::string kind = event.value("janus", "");
    if (event.contains("jsep") && event["jsep"].value("type", "") == "answer") {
        handle(proto::Answer{event["jsep"].value("sdp", "")});
    } else if (kind == "hangup" || kind == "detached") {
        localError("janus: " + kind);
    } else if (event.contains("plugindata")) {
        const Json& data = event["plugindata"].value("data", Json::object());
        if (data.contains("error")) m_errors.push_back(data.value("error", ""));
    }
}

// Thread: main (libsoup).
void Client::onJanusReplyCb(GObject* source, GAsyncResult* result, gpointer user) noexcept {
    std::unique_ptr<JanusCall> call(static_cast<JanusCall*>(user));
    try {
        GError* error = nullptr;
        GBytes* bytes = soup_session_send_and_read_finish(SOUP_SESSION(source), result, &error);
        GErrorPtr owned(error);
        auto self = call->client.lock();
        if (!self || self->m_finishing) {
            if (bytes) g_bytes_unref(bytes);
            return;
        }
        if (!bytes) {
            self->localError(std::string("janus: ") + (error ? error->message : "request failed"));
            return;
        }
        gsize size = 0;
        const auto* data = static_cast<const char*>(g_bytes_get_data(bytes, &size));
        const Json reply = Json::parse(std::string_view(data ? data : "", size), nullptr, false);
        g_bytes_unref(bytes);
        if (reply.is_object() && reply.value("janus", "") == "error") {
            self->localError("janus: " + reply.dump());
            return;
        }
        call->then(*self, reply);
    } catch (const std::exception& e) { GST_ERROR("janus reply: %s", e.what()); } catch (...) {
    }
}

// ---------------------------------------------------------------------------
// Signaling. Thread: main.

void Client::send(const proto::ClientMessage& message) {
    if (!m_ws || soup_websocket_connection_get_state(m_ws.get()) != SOUP_WEBSOCKET_STATE_OPEN) {
        GST_WARNING("not sending: the WebSocket is not open");
        return;
    }
    const std::string text = proto::serialize(message);
    GST_DEBUG("-> %s", text.c_str());
    soup_websocket_connection_send_text(m_ws.get(), text.c_str());
}

void Client::onWsMessage(std::string_view text) {
    GST_DEBUG("<- %.*s", static_cast<int>(std::min<std::size_t>(text.size(), 2000)), text.data());
    proto::ServerMessage message;
    try {
        message = proto::parseServerMessage(text);
    } catch (const std::exception& e) {
        localError(std::string("bad message from the server: ") + e.what());
        return;
    }
    std::visit([this](const auto& m) { handle(m); }, message);
}

void Client::handle(const proto::Joined& m) {
    if (m_offerSent) {
        localError("second 'joined' ignored");
        return;
    }
    m_id = m.id;
    m_participants = m.participants;
    Json others = Json::array();
    for (const auto& p : m.participants) others.push_back({{"id", p.id}, {"name", p.name}});
    emitEvent("joined", {{"id", m.id}, {"room", m.room}, {"participants", others}});

    bool haveStun = false;
    for (const auto& server : m.iceServers) {
        for (const auto& url : server.urls) {
            const std::string gstUrl = toGstIceUrl(url, server.username, server.credential);
            if (gstUrl.starts_with("stun")) {
                if (!haveStun) g_object_set(m_webrtc, "stun-server", gstUrl.c_str(), nullptr);
                haveStun = true;
            } else if (gstUrl.starts_with("turn")) {
                gboolean ok = FALSE;
                g_signal_emit_by_name(m_webrtc, "add-turn-server", gstUrl.c_str(), &ok);
                if (!ok) localError("webrtcbin refused TURN server " + url);
            } else {
                localError("ignored ICE server URL " + url);
            }
        }
    }
    createOffer();
}

void Client::handle(const proto::Answer& m) {
    if (!m_offerSent) {
        localError("'answer' before our offer ignored");
        return;
    }
    GstSDPMessage* sdp = nullptr;
    if (gst_sdp_message_new_from_text(m.sdp.c_str(), &sdp) != GST_SDP_OK || !sdp) {
        localError("the answer's SDP does not parse");
        return;
    }
    GstWebRTCSessionDescription* desc = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
    GstPromise* promise =
        gst_promise_new_with_change_func(onRemoteDescriptionCb, new WeakClient(weak_from_this()), deleteWeak);
    g_signal_emit_by_name(m_webrtc, "set-remote-description", desc, promise);
    gst_webrtc_session_description_free(desc);
}

void Client::handle(const proto::Candidate& m) {
    if (!m.candidate) {
        GST_INFO("the server's end of candidates");
        return;
    }
    if (!m_remoteSet)
        m_pendingCandidates.push_back(*m.candidate);
    else
        applyRemoteCandidate(*m.candidate);
}

void Client::applyRemoteCandidate(const proto::IceCandidate& c) {
    if (c.candidate.empty()) return; // the browser-style end of candidates
    std::optional<unsigned> mline = c.sdpMLineIndex;
    if (!mline && c.sdpMid) {
        const auto it = std::find(m_mids.begin(), m_mids.end(), *c.sdpMid);
        if (it != m_mids.end()) mline = static_cast<unsigned>(it - m_mids.begin());
    }
    if (!mline) {
        localError("remote candidate with an unknown m-line ignored");
        return;
    }
    g_signal_emit_by_name(m_webrtc, "add-ice-candidate", *mline, c.candidate.c_str());
}

void Client::handle(const proto::ParticipantJoined& m) {
    const bool known = std::any_of(m_participants.begin(), m_participants.end(),
                                   [&](const proto::ParticipantInfo& p) { return p.id == m.id; });
    if (!known) m_participants.push_back({m.id, m.name});
    emitEvent("participant-joined", {{"id", m.id}, {"name", m.name}});
}

void Client::handle(const proto::ParticipantLeft& m) {
    std::erase_if(m_participants, [&](const proto::ParticipantInfo& p) { return p.id == m.id; });
    emitEvent("participant-left", {{"id", m.id}});
}

void Client::handle(const proto::LayoutChanged& m) {
    m_layout = m.layout;
    emitEvent("layout", {{"layout", m.layout}});
}

void Client::handle(const proto::Speaker& m) {
    m_speaker = m.id;
    emitEvent("speaker", {{"id", m.id}});
}

void Client::handle(const proto::ErrorMessage& m) {
    m_errors.push_back(m.message);
    emitEvent("error", {{"code", std::string(toString(m.code))}, {"message", m.message}});
}

void Client::onWsClosed() {
    const int code = m_ws ? soup_websocket_connection_get_close_code(m_ws.get()) : 0;
    const char* reason = m_ws ? soup_websocket_connection_get_close_data(m_ws.get()) : nullptr;
    if (m_leaving) {
        finish();
        return;
    }
    // The server closed (kick, shutdown, flood): report and exit.
    emitEvent("closed", {{"code", code}, {"reason", reason ? reason : ""}});
    setState(State::Closed);
    Json j = report();
    j["final"] = true;
    emit(j);
    m_leaving = true;
    finish();
}

// ---------------------------------------------------------------------------
// Peer. Thread: main.

void Client::createOffer() {
    // Channels before the offer, so that it has an m=application section.
    // Ordered and reliable are the defaults.
    for (auto [label, slot] : {std::pair{"chat", &m_chat}, std::pair{"file", &m_file}}) {
        if (*slot || !m_options.janus.empty()) continue; // AudioBridge has no data channels
        GstWebRTCDataChannel* channel = nullptr;
        g_signal_emit_by_name(m_webrtc, "create-data-channel", label, nullptr, &channel);
        if (!channel) {
            localError(std::string("cannot create data channel ") + label);
            continue;
        }
        slot->reset(channel);
        setupChannel(channel);
    }
    GstPromise* promise =
        gst_promise_new_with_change_func(onOfferCreatedCb, new WeakClient(weak_from_this()), deleteWeak);
    g_signal_emit_by_name(m_webrtc, "create-offer", nullptr, promise);
}

void Client::onOfferCreated(const std::shared_ptr<GstWebRTCSessionDescription>& offer, const std::string& error) {
    if (!error.empty() || !offer) {
        localError("create-offer failed: " + error);
        setState(State::Failed);
        return;
    }
    m_mids.clear();
    for (guint i = 0; i < gst_sdp_message_medias_len(offer->sdp); ++i) {
        const char* mid = gst_sdp_media_get_attribute_val(gst_sdp_message_get_media(offer->sdp, i), "mid");
        m_mids.emplace_back(mid ? mid : "");
    }
    GstPromise* promise =
        gst_promise_new_with_change_func(onLocalDescriptionCb, new WeakClient(weak_from_this()), deleteWeak);
    g_signal_emit_by_name(m_webrtc, "set-local-description", offer.get(), promise);
    GCharPtr text(gst_sdp_message_as_text(offer->sdp));
    if (!m_options.janus.empty()) {
        Json join = {{"janus", "message"},
                     {"body", {{"request", "join"}, {"room", m_options.janusRoom}, {"display", m_options.name}}},
                     {"jsep", {{"type", "offer"}, {"sdp", text.get()}}}};
        janusPost(m_janusPath, std::move(join), [](Client&, const Json&) {}); // the answer comes as an event
    } else {
        send(proto::Offer{text.get()});
    }
    m_offerSent = true;
    emitEvent("offer", {{"sdp", text.get()}});
}

void Client::onLocalDescriptionSet(const std::string& error) {
    if (!error.empty()) {
        localError("set-local-description failed: " + error);
        setState(State::Failed);
    }
}

void Client::onRemoteDescriptionSet(const std::string& error) {
    if (!error.empty()) {
        localError("set-remote-description failed: " + error);
        setState(State::Failed);
        return;
    }
    m_remoteSet = true;
    emitEvent("answer");
    auto pending = std::move(m_pendingCandidates);
    m_pendingCandidates.clear();
    for (const auto& c : pending) applyRemoteCandidate(c);
}

void Client::onLocalCandidate(unsigned mline, const std::string& candidate) {
    if (candidate.empty()) return;
    proto::IceCandidate c;
    c.candidate = candidate;
    if (mline < m_mids.size() && !m_mids[mline].empty()) c.sdpMid = m_mids[mline];
    c.sdpMLineIndex = mline;
    if (!m_options.janus.empty())
        janusPost(m_janusPath,
                  {{"janus", "trickle"}, {"candidate", {{"candidate", candidate}, {"sdpMLineIndex", mline}}}},
                  [](Client&, const Json&) {});
    else
        send(proto::Candidate{c});
}

void Client::onPeerStateNotify() {
    if (!m_webrtc || m_finishing) return;
    GstWebRTCPeerConnectionState pc = GST_WEBRTC_PEER_CONNECTION_STATE_NEW;
    GstWebRTCICEConnectionState ice = GST_WEBRTC_ICE_CONNECTION_STATE_NEW;
    GstWebRTCICEGatheringState gathering = GST_WEBRTC_ICE_GATHERING_STATE_NEW;
    g_object_get(m_webrtc, "connection-state", &pc, "ice-connection-state", &ice, "ice-gathering-state", &gathering,
                 nullptr);
    const std::string pcName = connectionStateName(pc);
    const std::string iceName = iceStateName(ice);
    if (iceName != m_iceState) {
        m_iceState = iceName;
        emitEvent("ice-state", {{"state", iceName}});
    }
    if (pcName != m_pcState) {
        m_pcState = pcName;
        emitEvent("peer-state", {{"state", pcName}});
    }
    if (pc == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED)
        setState(State::Connected);
    else if (pc == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED || ice == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED)
        setState(State::Failed);
    else if (pc == GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED)
        setState(State::Closed);
    else if (pc == GST_WEBRTC_PEER_CONNECTION_STATE_DISCONNECTED && m_state == State::Connected)
        setState(State::Connecting);

    if (gathering == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE && m_offerSent && !m_endOfCandidatesSent) {
        m_endOfCandidatesSent = true;
        if (!m_options.janus.empty())
            janusPost(m_janusPath, {{"janus", "trickle"}, {"candidate", {{"completed", true}}}},
                      [](Client&, const Json&) {});
        else
            send(proto::Candidate{std::nullopt});
    }
}

void Client::setupChannel(GstWebRTCDataChannel* channel) {
    g_signal_connect(channel, "on-open", G_CALLBACK(onChannelOpenCb), this);
    g_signal_connect(channel, "on-close", G_CALLBACK(onChannelCloseCb), this);
    g_signal_connect(channel, "on-error", G_CALLBACK(onChannelErrorCb), this);
    g_signal_connect(channel, "on-message-string", G_CALLBACK(onChannelStringCb), this);
    g_signal_connect(channel, "on-message-data", G_CALLBACK(onChannelDataCb), this);
}

void Client::onRemoteDataChannel(GstWebRTCDataChannel* channel) {
    GObjectPtr<GstWebRTCDataChannel> owned(channel);
    const std::string label = channelLabel(channel);
    emitEvent("channel", {{"label", label}, {"remote", true}});
    if (m_finishing) return;
    setupChannel(channel);
    // A channel the server opened is already open when announced.
    onChannelEvent(label, "open", {}, 0);
    m_remoteChannels.push_back(std::move(owned));
}

void Client::onChannelEvent(const std::string& label, const std::string& kind, const std::string& text,
                            std::size_t bytes) {
    if (kind == "open" || kind == "close") {
        emitEvent(std::string("channel-") + kind, {{"label", label}});
    } else if (kind == "error") {
        emitEvent("channel-error", {{"label", label}, {"message", text}});
    } else if (kind == "binary") {
        emitEvent("channel-data", {{"label", label}, {"bytes", bytes}});
    } else if (label == "chat") {
        ++m_chatReceived;
        Json event = {{"event", "chat"}};
        const Json parsed = Json::parse(text, nullptr, false);
        if (parsed.is_object()) {
            for (const auto& [k, v] : parsed.items())
                if (k != "event") event[k] = v;
        } else {
            event["raw"] = text;
        }
        emit(event);
    } else if (label == "file") {
        ++m_fileMessages;
        emitEvent("file-message", {{"text", text}});
    } else {
        emitEvent("channel-message", {{"label", label}, {"text", text}});
    }
}

void Client::onFileData(GBytes* data) {
    gsize size = 0;
    const void* bytes = g_bytes_get_data(data, &size);
    ++m_fileMessages;
    m_fileBytes += size;
    if (m_fileOut && size > 0) {
        std::fwrite(bytes, 1, size, m_fileOut);
        std::fflush(m_fileOut);
    }
    emitEvent("file-data", {{"bytes", size}, {"total", m_fileBytes}});
}

void Client::onBusMessage(GstMessage* message) {
    switch (GST_MESSAGE_TYPE(message)) {
    case GST_MESSAGE_ERROR: {
        GError* error = nullptr;
        gchar* debug = nullptr;
        gst_message_parse_error(message, &error, &debug);
        GErrorPtr ownedError(error);
        GCharPtr ownedDebug(debug);
        GST_ERROR_OBJECT(GST_MESSAGE_SRC(message), "%s (%s)", error ? error->message : "?", debug ? debug : "");
        GST_DEBUG_BIN_TO_DOT_FILE_WITH_TS(GST_BIN(m_pipeline.get()), GST_DEBUG_GRAPH_SHOW_ALL, "tessera-client-error");
        localError(std::string("pipeline error from ") + GST_OBJECT_NAME(GST_MESSAGE_SRC(message)) + ": " +
                   (error ? error->message : "unknown"));
        break;
    }
    case GST_MESSAGE_WARNING: {
        GError* error = nullptr;
        gchar* debug = nullptr;
        gst_message_parse_warning(message, &error, &debug);
        GErrorPtr ownedError(error);
        GCharPtr ownedDebug(debug);
        GST_WARNING_OBJECT(GST_MESSAGE_SRC(message), "%s (%s)", error ? error->message : "?", debug ? debug : "");
        break;
    }
    default: break;
    }
}

// ---------------------------------------------------------------------------
// Receive chain. Thread: streaming.

void Client::linkIncoming(GstPad* pad) {
    if (m_stopping) return;
    CapsPtr caps(gst_pad_get_current_caps(pad));
    if (!caps) caps.reset(gst_pad_query_caps(pad, nullptr));
    const GstStructure* s = caps && !gst_caps_is_empty(caps.get()) ? gst_caps_get_structure(caps.get(), 0) : nullptr;
    const char* mediaField = s ? gst_structure_get_string(s, "media") : nullptr;
    const char* encodingField = s ? gst_structure_get_string(s, "encoding-name") : nullptr;
    const std::string media = mediaField ? mediaField : "";
    std::string encoding = encodingField ? encodingField : "";
    std::transform(encoding.begin(), encoding.end(), encoding.begin(),
                   [](unsigned char c) { return static_cast<char>(g_ascii_toupper(c)); });

    // Fixed descriptions, chosen by the negotiated encoding: nothing from the
    // peer goes into the parsed text.
    const std::string videoTail =
        " ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false async=false max-buffers=2 drop=true";
    std::string description;
    bool video = false;
    bool audio = false;
    if (encoding == "VP8") {
        description = "rtpvp8depay name=depay ! tee name=t t. ! queue ! vp8dec" + videoTail;
        video = true;
    } else if (encoding == "VP9") {
        description = "rtpvp9depay name=depay ! tee name=t t. ! queue ! vp9dec" + videoTail;
        video = true;
    } else if (encoding == "H264") {
        description = "rtph264depay name=depay ! h264parse ! tee name=t t. ! queue ! avdec_h264" + videoTail;
        video = true;
    } else if (encoding == "OPUS") {
        description = "rtpopusdepay name=depay ! tee name=t t. ! queue ! opusdec ! audioconvert ! audioresample ! "
                      "audio/x-raw,format=F32LE,layout=interleaved,channels=1,rate=" +
                      std::to_string(kAudioRate) + " ! appsink name=sink sync=false async=false";
        audio = true;
    } else {
        description = "fakesink sync=false async=false";
    }
    // Every RTP packet is counted, decoded or not (--no-decode skips decoding
    // unless the stream is recorded).
    if (video || audio)
        gst_pad_add_probe(pad, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                          onRtpCb, video ? &m_rtpVideo : &m_rtpAudio, nullptr);
    if (m_options.noDecode && m_options.recordPath.empty() && (video || audio))
        description = "fakesink sync=false async=false";

    GstPad* muxPad = nullptr; // Borrowed from m_muxVideoPad / m_muxAudioPad.
    if (m_mux && (video || audio)) {
        std::lock_guard lock(m_recordMutex);
        bool& linked = video ? m_muxVideoLinked : m_muxAudioLinked;
        if (!linked) {
            linked = true;
            muxPad = video ? m_muxVideoPad.get() : m_muxAudioPad.get();
            description += " t. ! queue leaky=downstream max-size-buffers=0 max-size-bytes=0 "
                           "max-size-time=2000000000";
        }
    }

    GError* error = nullptr;
    GstElement* bin = gst_parse_bin_from_description(description.c_str(), TRUE, &error);
    GErrorPtr owned(error);
    if (!bin) {
        GST_ERROR("cannot build the receive chain for %s: %s", encoding.c_str(), error ? error->message : "?");
        return;
    }
    if (GstPtr<GstElement> depay{gst_bin_get_by_name(GST_BIN(bin), "depay")}) {
        // Ask for a key frame after loss rather than decode garbage.
        if (hasProperty(depay.get(), "request-keyframe")) g_object_set(depay.get(), "request-keyframe", TRUE, nullptr);
        if (hasProperty(depay.get(), "wait-for-keyframe"))
            g_object_set(depay.get(), "wait-for-keyframe", TRUE, nullptr);
    }
    if (GstPtr<GstElement> sink{gst_bin_get_by_name(GST_BIN(bin), "sink")}) {
        GstAppSinkCallbacks callbacks{};
        callbacks.new_sample = video ? onVideoSampleCb : onAudioSampleCb;
        gst_app_sink_set_callbacks(GST_APP_SINK(sink.get()), &callbacks, this, nullptr);
    }
    gst_bin_add(GST_BIN(m_pipeline.get()), bin);
    if (muxPad) {
        GstPtr<GstPad> recordSrc(gst_element_get_static_pad(bin, "src"));
        if (recordSrc) {
            gst_pad_add_probe(recordSrc.get(),
                              static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                              onRecordBufferCb, this, nullptr);
            if (gst_pad_link(recordSrc.get(), muxPad) != GST_PAD_LINK_OK)
                GST_ERROR("cannot link the %s stream to the recorder", encoding.c_str());
        }
    }
    gst_element_sync_state_with_parent(bin);
    GstPtr<GstPad> sinkPad(gst_element_get_static_pad(bin, "sink"));
    const GstPadLinkReturn linked = sinkPad ? gst_pad_link(pad, sinkPad.get()) : GST_PAD_LINK_REFUSED;
    if (linked != GST_PAD_LINK_OK) GST_ERROR("cannot link incoming %s stream", encoding.c_str());
    GST_INFO("incoming %s stream %s linked", media.c_str(), encoding.c_str());
    postTo(weak_from_this(), [media, encoding](Client&) {
        emitEvent("track", {{"kind", media}, {"encoding", encoding}});
    });
}

void Client::onVideoSample(GstSample* sample) {
    GstVideoInfo info;
    GstCaps* caps = gst_sample_get_caps(sample);
    if (!caps || !gst_video_info_from_caps(&info, caps)) {
        gst_sample_unref(sample);
        return;
    }
    const int width = GST_VIDEO_INFO_WIDTH(&info);
    const int height = GST_VIDEO_INFO_HEIGHT(&info);
    const double arrivedMs = wallMs();
    if (m_options.readStamp) readStamp(sample, arrivedMs);
    bool first = false;
    bool resized = false;
    {
        std::lock_guard lock(m_video.mutex);
        m_frameGaps.arrive(g_get_monotonic_time());
        if (m_video.last) gst_sample_unref(m_video.last);
        m_video.last = sample;
        first = m_video.frames == 0;
        resized = !first && (width != m_video.width || height != m_video.height);
        const std::int64_t now = g_get_monotonic_time();
        if (m_video.lastFrameUs != 0) m_video.maxGapUs = std::max(m_video.maxGapUs, now - m_video.lastFrameUs);
        m_video.lastFrameUs = now;
        ++m_video.frames;
        m_video.width = width;
        m_video.height = height;
    }
    if (first || resized) {
        const char* name = first ? "first-frame" : "resolution";
        postTo(weak_from_this(), [name, width, height, arrivedMs](Client& c) {
            Json fields = {{"width", width}, {"height", height}, {"ts", std::round(arrivedMs * 10.0) / 10.0}};
            if (std::string_view(name) == "first-frame") {
                // The colour of the first frame: handy to check a tile at once.
                std::lock_guard lock(c.m_video.mutex);
                withFrame(c.m_video.last, [&](const analysis::FrameView& view) {
                    if (auto avg = analysis::averageColor(view)) fields["average"] = analysis::toString(*avg);
                });
            }
            emitEvent(name, fields);
        });
    }
}

// Thread: streaming. Reads the stamp sender's tile, if any: one latency
// sample per new stamp, and events when the tile appears or goes.
void Client::readStamp(GstSample* sample, double arrivedMs) {
    std::optional<std::uint16_t> value;
    withFrame(sample, [&](const analysis::FrameView& view) { value = analysis::stamp::readRgb(view); });
    std::lock_guard lock(m_latency.mutex);
    if (value) {
        m_latency.missedFrames = 0;
        if (*value != m_latency.lastStamp && m_latency.video.size() < LatencyMeasure::kMaxSamples)
            m_latency.video.push_back(analysis::stamp::elapsedMs(*value, arrivedMs));
        m_latency.lastStamp = *value;
    } else {
        ++m_latency.missedFrames;
    }
    // Gone after 15 frames (~0.5 s) without it: a decode hiccup is not a leave.
    const bool visible = value ? true : (m_latency.visible && m_latency.missedFrames < 15);
    if (visible != m_latency.visible) {
        m_latency.visible = visible;
        postTo(weak_from_this(), [visible, ts = std::round(arrivedMs * 10.0) / 10.0](Client&) {
            emitEvent(visible ? "stamp-visible" : "stamp-hidden", {{"ts", ts}});
        });
    }
}

void Client::onAudioSample(GstSample* sample) {
    GstBuffer* buffer = gst_sample_get_buffer(sample);
    GstMapInfo map;
    if (buffer && gst_buffer_map(buffer, &map, GST_MAP_READ)) {
        const auto* samples = reinterpret_cast<const float*>(map.data);
        const std::size_t count = map.size / sizeof(float);
        if (m_options.readStamp) {
            // The buffer's last sample arrived now.
            const double nowMs = wallMs();
            std::lock_guard lock(m_latency.mutex);
            for (std::size_t onset : m_latency.clicks.feed(samples, count)) {
                const double onsetMs = nowMs - 1000.0 * static_cast<double>(count - onset) / kAudioRate;
                if (m_latency.audio.size() < LatencyMeasure::kMaxSamples)
                    m_latency.audio.push_back(analysis::stamp::clickLatencyMs(onsetMs));
            }
        }
        std::lock_guard lock(m_audio.mutex);
        m_audio.append(samples, count);
        gst_buffer_unmap(buffer, &map);
    }
    gst_sample_unref(sample);
    if (!m_firstAudio.exchange(true)) postTo(weak_from_this(), [](Client&) { emitEvent("first-audio"); });
}

// ---------------------------------------------------------------------------
// Commands. Thread: main.

void Client::onStdinReadable(bool eof) {
    // One read per wake-up, so that an endless input cannot starve the loop;
    // lines longer than kMaxCommandBytes are dropped with an error reply.
    if (!eof) {
        char chunk[64 * 1024];
        gsize got = 0;
        GError* error = nullptr;
        const GIOStatus status = g_io_channel_read_chars(m_stdin, chunk, sizeof chunk, &got, &error);
        GErrorPtr ownedError(error);
        if (status == G_IO_STATUS_NORMAL || status == G_IO_STATUS_AGAIN) {
            m_stdinBuffer.append(chunk, got);
            std::size_t newline;
            while (!m_leaving && (newline = m_stdinBuffer.find('\n')) != std::string::npos) {
                const std::string line = m_stdinBuffer.substr(0, newline);
                m_stdinBuffer.erase(0, newline + 1);
                if (m_discardingLine) {
                    m_discardingLine = false;
                    continue;
                }
                command(line);
            }
            if (m_stdinBuffer.size() > kMaxCommandBytes) {
                m_stdinBuffer.clear();
                if (!m_discardingLine) emit({{"reply", "error"}, {"ok", false}, {"error", "command line too long"}});
                m_discardingLine = true;
            }
            return;
        }
        eof = true; // EOF or a read error
    }
    // A last line without a newline still counts.
    if (!m_stdinBuffer.empty() && !m_discardingLine && !m_leaving) command(m_stdinBuffer);
    m_stdinBuffer.clear();
    // Input ended: with --duration the run goes on to its end; otherwise
    // the controlling process is gone, so leave.
    m_stdinWatch = 0;
    if (m_options.duration <= 0 && !m_leaving) {
        GST_INFO("stdin closed: leaving");
        leave();
    }
}

void Client::command(std::string_view line) {
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (line.empty()) return;
    const auto space = line.find(' ');
    const std::string_view verb = line.substr(0, space);
    const std::string_view rest = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
    const auto reply = [&](bool ok, const std::string& error = {}) {
        Json j = {{"reply", std::string(verb)}, {"ok", ok}};
        if (!error.empty()) j["error"] = error;
        emit(j);
    };

    if (verb == "report") {
        emit(report());
    } else if (verb == "reset-gap") {
        {
            std::lock_guard lock(m_video.mutex);
            m_video.maxGapUs = 0;
            m_frameGaps.reset();
        }
        for (RtpMeasure* m : {&m_rtpVideo, &m_rtpAudio}) {
            std::lock_guard lock(m->mutex);
            m->gaps.reset();
        }
        reply(true);
    } else if (verb == "send") {
        if (!m_ws || soup_websocket_connection_get_state(m_ws.get()) != SOUP_WEBSOCKET_STATE_OPEN) {
            reply(false, "the WebSocket is not open");
            return;
        }
        // As-is, even if it is not JSON or not UTF-8: tests send garbage.
        GBytes* bytes = g_bytes_new(rest.data(), rest.size());
        soup_websocket_connection_send_message(m_ws.get(), SOUP_WEBSOCKET_DATA_TEXT, bytes);
        g_bytes_unref(bytes);
        reply(true);
    } else if (verb == "chat") {
        GstWebRTCDataChannelState state = GST_WEBRTC_DATA_CHANNEL_STATE_CLOSED;
        if (m_chat) g_object_get(m_chat.get(), "ready-state", &state, nullptr);
        if (state != GST_WEBRTC_DATA_CHANNEL_STATE_OPEN) {
            reply(false, "the chat channel is not open");
            return;
        }
        const std::string message =
            Json{{"text", std::string(rest)}}.dump(-1, ' ', false, Json::error_handler_t::replace);
        GError* error = nullptr;
        const bool ok = gst_webrtc_data_channel_send_string_full(m_chat.get(), message.c_str(), &error);
        GErrorPtr owned(error);
        reply(ok, ok ? std::string() : std::string(error ? error->message : "send failed"));
    } else if (verb == "file-text" || verb == "file-data") {
        // Framing-agnostic: the caller speaks the "file" channel's framing.
        GstWebRTCDataChannelState state = GST_WEBRTC_DATA_CHANNEL_STATE_CLOSED;
        if (m_file) g_object_get(m_file.get(), "ready-state", &state, nullptr);
        if (state != GST_WEBRTC_DATA_CHANNEL_STATE_OPEN) {
            reply(false, "the file channel is not open");
            return;
        }
        GError* error = nullptr;
        bool ok = false;
        if (verb == "file-text") {
            ok = gst_webrtc_data_channel_send_string_full(m_file.get(), std::string(rest).c_str(), &error);
        } else {
            auto bytes = analysis::fromHex(rest);
            if (!bytes) {
                reply(false, "file-data takes hex");
                return;
            }
            GBytes* data = g_bytes_new(bytes->data(), bytes->size());
            ok = gst_webrtc_data_channel_send_data_full(m_file.get(), data, &error);
            g_bytes_unref(data);
        }
        GErrorPtr owned(error);
        reply(ok, ok ? std::string() : std::string(error ? error->message : "send failed"));
    } else if (verb == "loss") {
        const std::string text(rest);
        char* end = nullptr;
        const unsigned long percent = std::strtoul(text.c_str(), &end, 10);
        if (text.empty() || *end != '\0' || percent > 100) {
            reply(false, "loss takes a percentage, 0 to 100");
            return;
        }
        m_lossPercent = static_cast<unsigned>(percent);
        if (!m_lossProbes && m_webrtc) {
            m_lossProbes = true;
            GstIterator* it = gst_bin_iterate_recurse(GST_BIN(m_webrtc));
            GValue item = G_VALUE_INIT;
            while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
                auto* element = GST_ELEMENT(g_value_get_object(&item));
                GstElementFactory* factory = gst_element_get_factory(element);
                if (factory && g_str_equal(GST_OBJECT_NAME(factory), "nicesrc")) {
                    GstPad* src = gst_element_get_static_pad(element, "src");
                    gst_pad_add_probe(
                        src, GST_PAD_PROBE_TYPE_BUFFER,
                        [](GstPad*, GstPadProbeInfo*, gpointer user) noexcept {
                            auto* self = static_cast<Client*>(user);
                            // Spread evenly: the first N of every 100 packets.
                            return self->m_lossCounter++ % 100 < self->m_lossPercent.load() ? GST_PAD_PROBE_DROP
                                                                                            : GST_PAD_PROBE_OK;
                        },
                        this, nullptr);
                    gst_object_unref(src);
                }
                g_value_reset(&item);
            }
            g_value_unset(&item);
            gst_iterator_free(it);
        }
        reply(true);
    } else if (verb == "leave") {
        reply(true);
        leave();
    } else if (verb == "quit") {
        reply(true);
        quit();
    } else {
        reply(false, "unknown command; use report, reset-gap, send RAW, chat TEXT, file-text TEXT, file-data HEX, "
                     "loss PERCENT, leave or quit");
    }
}

Json Client::report() {
    Json j = Json::object();
    j["reply"] = "report";
    j["state"] = stateName(m_state);
    j["id"] = m_id;
    j["room"] = m_options.room;
    j["name"] = m_options.name;

    GstSample* last = nullptr;
    {
        std::lock_guard lock(m_video.mutex);
        j["frames"] = m_video.frames;
        j["width"] = m_video.width;
        j["height"] = m_video.height;
        // A gap still open counts too: a frozen stream must show while frozen.
        std::int64_t gap = m_video.maxGapUs;
        if (m_video.lastFrameUs != 0) gap = std::max(gap, g_get_monotonic_time() - m_video.lastFrameUs);
        j["maxFrameGapMs"] = gap / 1000;
        if (m_video.last) last = gst_sample_ref(m_video.last);
    }
    std::vector<float> window;
    std::uint64_t audioTotal = 0;
    {
        std::lock_guard lock(m_audio.mutex);
        window = m_audio.window();
        audioTotal = m_audio.total;
    }
    j["audioRms"] = round2(analysis::rmsDbfs(window));
    j["audioSeconds"] = round2(static_cast<double>(audioTotal) / kAudioRate);
    Json tones = Json::object();
    const auto levels = analysis::toneLevelsDbfs(window, 1, kAudioRate, m_options.detect);
    for (std::size_t i = 0; i < levels.size(); ++i) tones[frequencyKey(m_options.detect[i])] = round2(levels[i]);
    j["tones"] = tones;

    j["thumb"] = nullptr;
    j["average"] = nullptr;
    if (last) {
        withFrame(last, [&](const analysis::FrameView& view) {
            const auto thumb = analysis::makeThumbnail(view);
            j["thumb"] = {{"w", thumb.width}, {"h", thumb.height}, {"rgb", analysis::toHex(thumb.rgb)}};
            if (auto avg = analysis::averageColor(view)) j["average"] = analysis::toString(*avg);
        });
        gst_sample_unref(last);
    }

    Json ids = Json::array();
    Json peers = Json::array();
    for (const auto& p : m_participants) {
        ids.push_back(p.id);
        peers.push_back({{"id", p.id}, {"name", p.name}});
    }
    j["participants"] = ids;
    j["peers"] = peers;
    j["speaker"] = m_speaker;
    j["layout"] = m_layout;
    j["errors"] = m_errors;
    j["ice"] = m_iceState;
    j["chatReceived"] = m_chatReceived;
    j["fileMessages"] = m_fileMessages;
    j["fileBytes"] = m_fileBytes;

    // Benchmark measurements (bench/README.md).
    const gint64 now = g_get_monotonic_time();
    Json rtp = Json::object();
    for (auto [kind, m] : {std::pair{"video", &m_rtpVideo}, std::pair{"audio", &m_rtpAudio}}) {
        std::lock_guard lock(m->mutex);
        Json r = {{"packets", m->packets}, {"bytes", m->bytes}};
        if (m == &m_rtpVideo) r["frames"] = m->markers;
        r.update(m->gaps.toJson(now));
        rtp[kind] = r;
    }
    j["rtp"] = rtp;
    {
        std::lock_guard lock(m_video.mutex);
        j["frameStalls"] = m_frameGaps.toJson(now); // decoded frames; zeros with --no-decode
    }
    if (m_options.readStamp) {
        std::lock_guard lock(m_latency.mutex);
        j["latency"] = {{"video", LatencyMeasure::summary(m_latency.video)},
                        {"audio", LatencyMeasure::summary(m_latency.audio)}};
    }
    return j;
}

// ---------------------------------------------------------------------------
// Shutdown. Thread: main.

void Client::setState(State s) {
    if (s == m_state) return;
    m_state = s;
    if (s == State::Connected) {
        m_everConnected = true;
        if (m_connectTimer) {
            g_source_remove(m_connectTimer);
            m_connectTimer = 0;
        }
        emitEvent("connected");
    } else if (s == State::Failed) {
        emitEvent("failed");
    }
}

void Client::localError(const std::string& message) {
    GST_WARNING("%s", message.c_str());
    emitEvent("client-error", {{"message", message}});
}

void Client::leave() {
    if (m_leaving) return;
    m_leaving = true;
    if (m_ws && soup_websocket_connection_get_state(m_ws.get()) == SOUP_WEBSOCKET_STATE_OPEN) {
        send(proto::Leave{});
        soup_websocket_connection_close(m_ws.get(), SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
        // "closed" arrives once the server answers the close frame.
        m_closeTimer = g_timeout_add(
            kLeaveCloseTimeoutMs,
            [](gpointer user) -> gboolean {
                auto* self = static_cast<Client*>(user);
                self->m_closeTimer = 0;
                self->finish();
                return G_SOURCE_REMOVE;
            },
            this);
    } else {
        finish();
    }
}

// Drops the signaling connection without a leave or a close frame.
void Client::quit() {
    m_leaving = true;
    if (m_ws) {
        g_signal_handlers_disconnect_by_data(m_ws.get(), this);
        GIOStream* stream = soup_websocket_connection_get_io_stream(m_ws.get());
        GError* error = nullptr;
        if (stream && !g_io_stream_close(stream, nullptr, &error))
            GST_INFO("closing the WebSocket stream: %s", error ? error->message : "?");
        if (error) g_error_free(error);
        m_ws.reset(); // a dirty close if still open
    }
    finish();
}

void Client::finish() {
    if (m_finishing) return;
    m_finishing = true;
    m_exitCode = m_everConnected ? 0 : 1;
    for (guint* timer : {&m_durationTimer, &m_connectTimer}) {
        if (*timer) g_source_remove(*timer);
        *timer = 0;
    }
    if (m_mux && !m_recordDone) {
        // Finalise the file: stop feeding the muxer, then EOS on each of its
        // pads. One async call per pad: the muxer holds a pad's stream lock
        // while it waits for the other pad, so sending both from one thread
        // could block.
        m_recordStopping = true;
        for (GstPad* pad : {m_muxVideoPad.get(), m_muxAudioPad.get()}) {
            if (!pad) continue;
            gst_element_call_async(
                m_mux, [](GstElement*, gpointer p) { gst_pad_send_event(GST_PAD(p), gst_event_new_eos()); },
                gst_object_ref(pad), gst_object_unref);
        }
        m_recordTimer = g_timeout_add(
            kRecordingFinalizeTimeoutMs,
            [](gpointer user) -> gboolean {
                auto* self = static_cast<Client*>(user);
                self->m_recordTimer = 0;
                GST_WARNING("the recording did not finish in time");
                self->stopLoop();
                return G_SOURCE_REMOVE;
            },
            this);
        return;
    }
    stopLoop();
}

void Client::stopLoop() { g_main_loop_quit(m_loop); }

Client::~Client() {
    m_stopping = true;
    if (m_pump.joinable()) {
        {
            std::lock_guard lock(m_pumpMutex);
            m_pumpStop = true;
        }
        m_pumpWake.notify_all();
        m_pump.join();
    }
    for (guint* source : {&m_durationTimer, &m_connectTimer, &m_closeTimer, &m_recordTimer, &m_stdinWatch, &m_sigint,
                          &m_sigterm, &m_busWatch}) {
        if (*source) g_source_remove(*source);
        *source = 0;
    }
    if (m_stdin) {
        // stdin's file description may be shared (a terminal): leave it blocking.
        g_io_channel_set_flags(m_stdin, static_cast<GIOFlags>(0), nullptr);
        g_io_channel_unref(m_stdin);
    }
    if (m_cancellable) g_cancellable_cancel(m_cancellable.get());
    if (m_ws) {
        g_signal_handlers_disconnect_by_data(m_ws.get(), this);
        m_ws.reset();
    }
    // Disconnect signals, then NULL, then drop references.
    if (m_webrtc) g_signal_handlers_disconnect_by_data(m_webrtc, this);
    for (auto* channel : {m_chat.get(), m_file.get()})
        if (channel) g_signal_handlers_disconnect_by_data(channel, this);
    for (auto& channel : m_remoteChannels) g_signal_handlers_disconnect_by_data(channel.get(), this);
    if (m_pipeline) gst_element_set_state(m_pipeline.get(), GST_STATE_NULL);
    m_chat.reset();
    m_file.reset();
    m_remoteChannels.clear();
    if (m_mux) {
        if (m_muxVideoPad) gst_element_release_request_pad(m_mux, m_muxVideoPad.get());
        if (m_muxAudioPad) gst_element_release_request_pad(m_mux, m_muxAudioPad.get());
    }
    m_muxVideoPad.reset();
    m_muxAudioPad.reset();
    m_pipeline.reset();
    if (m_fileOut) std::fclose(m_fileOut);
}

} // namespace

int run(const Options& options) {
    GST_DEBUG_CATEGORY_INIT(tessera_client_debug, "tessera-client", 0, "tessera-client");
    g_eventTimestamps = options.timestamps;
    GMainLoop* loop = g_main_loop_new(nullptr, FALSE);
    int code = 2;
    {
        auto client = std::make_shared<Client>(options, loop);
        if (client->start()) {
            g_main_loop_run(loop);
            code = client->exitCode();
        }
    }
    g_main_loop_unref(loop);
    return code;
}

} // namespace tessera::client
