#pragma once
// tessera-client's one peer (the Client class) and what its files share.
// The class is implemented by responsibility, one file each:
//   client.cpp     start-up, the pipeline, the bus, shutdown
//   signaling.cpp  the WebSocket; join, offer, answer, candidates; peer state
//   channels.cpp   the data channels (chat, file, the server's)
//   send.cpp       what is sent: test sources, stamps, --send-file
//   receive.cpp    what is received: decoding, recording, measuring, `report`
//   commands.cpp   the commands on stdin
//   janus.cpp      --janus: the Janus AudioBridge HTTP API instead of the WebSocket
//   whip.cpp       --whip: WHIP (RFC 9725) over HTTP instead of the WebSocket
//
// Threads: the GLib main context owns the WebSocket (libsoup), the signaling
// state and stdout. webrtcbin and appsink callbacks arrive on streaming
// threads; they copy their arguments and glib::post() to the main context.
// Two deliberate exceptions, both without libsoup or signaling state:
// - pad-added links the receive chain synchronously: the first RTP buffer is
//   pushed right after the signal returns, and an unlinked pad would turn it
//   into a not-linked flow error.
// - appsink callbacks write the measurements (last frame, frame count, a
//   1 s audio window) under a mutex; the main thread reads them for `report`.
//   Posting every buffer to the main context would cost more than it guards.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gio/gio.h>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#ifndef GST_USE_UNSTABLE_API
#define GST_USE_UNSTABLE_API
#endif
#include <gst/webrtc/webrtc.h>
#include <libsoup/soup.h>

#include "client.h"
#include "file_source.h"
#include "measure.h"
#include "output.h"
#include "stdin_lines.h"
#include "tessera/glib/gst_raii.h"
#include "tessera/glib/raii.h"
#include "tessera/protocol/messages.h"

GST_DEBUG_CATEGORY_EXTERN(tessera_client_debug);
#define GST_CAT_DEFAULT tessera_client_debug

namespace tessera::client {

namespace proto = tessera::protocol;
using glib::CapsPtr;
using glib::ElementRef;
using glib::GCharPtr;
using glib::GErrorPtr;
using glib::PadRef;
using glib::Ref;

constexpr int kVideoPayload = 96;
constexpr int kAudioPayload = 111;

// The RTP caps offered for each kind (send.cpp).
std::string videoCodecCaps(VideoCodec codec);
std::string audioCodecCaps();

inline bool hasProperty(gpointer object, const char* name) {
    return g_object_class_find_property(G_OBJECT_GET_CLASS(object), name) != nullptr;
}

// How a session belongs to a --count group (group.cpp): its index, printed
// as "session" on every line it writes, and whom to tell when it has got
// an answer (the next session may start) and when it is done.
struct Membership {
    int index = 0;
    std::function<void()> answered; // at most once, on the main thread
    std::function<void()> done;     // once
};

enum class State { Connecting, Connected, Failed, Closed };

// group.cpp: the --count sessions of one process on `loop`, sharing `file`
// (may be null); returns the process exit status as run() does (0 only if
// every session connected).
int runGroup(const Options& options, GMainLoop* loop, const std::shared_ptr<FileSource>& file);

class Client : public std::enable_shared_from_this<Client> {
public:
    // `file`: the --send-file source, shared by a group's sessions.
    // `group`: unset for the one session of a process, which then reads
    // stdin and handles signals itself.
    Client(Options options, GMainLoop* loop, std::shared_ptr<FileSource> file = {},
           std::optional<Membership> group = {})
        : m_options(std::move(options)), m_loop(loop), m_fileSource(std::move(file)), m_group(std::move(group)) {}
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Thread: main. False on a setup failure (already reported on stderr).
    bool start();
    int exitCode() const { return m_exitCode; }
    bool everConnected() const { return m_everConnected; }
    // What the `report`, `leave` and `quit` commands do. Thread: main.
    Json report();
    void leave();
    void quit();

private:
    // client.cpp: setup and shutdown. Thread: main.
    bool buildPipeline();
    bool addRecorder();
    void onBusMessage(GstMessage* message);
    void finish();
    void stopLoop(); // in a group: tells the group this session is done
    void onSignal();
    void setState(State s);
    void localError(const std::string& message);
    // emitEvent() and emit() (output.h), with "session" in a group.
    void event(std::string_view name, Json fields = Json::object());
    void out(Json j);
    static gboolean onBusCb(GstBus*, GstMessage* message, gpointer user) noexcept;

    // signaling.cpp. Thread: main unless marked.
    bool restrictIce();
    void connectSignaling();
    void send(const proto::ClientMessage& message);
    void onWsMessage(std::string_view text);
    void handle(const proto::Joined& m);
    void useIceServers(const std::vector<proto::IceServer>& servers);
    void setLocalDescription(const std::shared_ptr<GstWebRTCSessionDescription>& offer);
    void handle(const proto::Answer& m);
    void handle(const proto::Candidate& m);
    void handle(const proto::ParticipantJoined& m);
    void handle(const proto::ParticipantLeft& m);
    void handle(const proto::LayoutChanged& m);
    void handle(const proto::Speaker& m);
    void handle(const proto::ErrorMessage& m);
    void handle(const proto::RecordingChanged& m);
    void handle(const proto::AudioOnly& m);
    void handle(const proto::SendSize& m);
    void handle(const proto::OnScreen& m);
    void applyRemoteCandidate(const proto::IceCandidate& c);
    void onWsClosed();
    void createOffer();
    void onOfferCreated(const std::shared_ptr<GstWebRTCSessionDescription>& offer, const std::string& error);
    void onLocalDescriptionSet(const std::string& error);
    void onRemoteDescriptionSet(const std::string& error);
    void onLocalCandidate(unsigned mline, const std::string& candidate);
    void onPeerStateNotify();
    static void onIceCandidateCb(GstElement*, guint mline, gchar* candidate, gpointer user) noexcept;
    static void onStateNotifyCb(GstElement*, GParamSpec*, gpointer user) noexcept;
    static void onOfferCreatedCb(GstPromise* promise, gpointer user) noexcept;
    static void onLocalDescriptionCb(GstPromise* promise, gpointer user) noexcept;
    static void onRemoteDescriptionCb(GstPromise* promise, gpointer user) noexcept;
    static void onWsConnectedCb(GObject* source, GAsyncResult* result, gpointer user) noexcept;
    static void onWsMessageCb(SoupWebsocketConnection*, gint type, GBytes* message, gpointer user) noexcept;
    static void onWsClosedCb(SoupWebsocketConnection*, gpointer user) noexcept;
    static void onWsErrorCb(SoupWebsocketConnection*, GError* error, gpointer user) noexcept;

    // channels.cpp. Thread: main unless marked.
    void setupChannel(GstWebRTCDataChannel* channel); // Borrowed.
    void onRemoteDataChannel(Ref<GstWebRTCDataChannel> channel);
    void onChannelEvent(const std::string& label, const std::string& kind, const std::string& text, std::size_t bytes);
    void onFileData(GBytes* data); // Borrowed.
    static void onDataChannelCb(GstElement*, GstWebRTCDataChannel* channel, gpointer user) noexcept;
    static void onChannelOpenCb(GstWebRTCDataChannel* channel, gpointer user) noexcept;
    static void onChannelCloseCb(GstWebRTCDataChannel* channel, gpointer user) noexcept;
    static void onChannelErrorCb(GstWebRTCDataChannel* channel, GError* error, gpointer user) noexcept;
    static void onChannelStringCb(GstWebRTCDataChannel* channel, gchar* text, gpointer user) noexcept;
    static void onChannelDataCb(GstWebRTCDataChannel* channel, GBytes* data, gpointer user) noexcept;

    // send.cpp. Thread: main unless marked.
    bool addTestSenders();
    // `added`: where to put the bin built from `description` (borrowed);
    // `sendOnly`: its m-line is sendonly whatever --send-only says.
    bool addSender(const std::string& description, const std::string& codecCaps, GstElement** added = nullptr,
                   bool sendOnly = false);
    std::string testPicture(const analysis::Rgb& color) const;
    std::string videoEncode(const std::string& name) const;
    // The `share` command; returns why not, "" when the offer is on its way.
    std::string startShare(const analysis::Rgb& color);
    bool addFileSenders();
    double bufferWallMs(GstClockTime pts); // wall-clock time at which a buffer's PTS plays. Thread: any.
    // Rescales the test camera and caps its encoder as the server asks; stops
    // its video while not shown.
    void applySendSize(const proto::SendSize& size);
    static GstPadProbeReturn onStampVideoCb(GstPad* pad, GstPadProbeInfo* info, gpointer user) noexcept;
    static GstPadProbeReturn onStampAudioCb(GstPad* pad, GstPadProbeInfo* info, gpointer user) noexcept;

    // receive.cpp. Thread: streaming unless marked.
    bool addReceiver(const std::string& codecCaps); // Thread: main.
    void linkIncoming(GstPad* pad);
    void onVideoSample(glib::SamplePtr sample);
    void onAudioSample(glib::SamplePtr sample);
    void readStamp(GstSample* sample, double arrivedMs); // Borrows the sample.
    // Thread: streaming. Checks an armed `watch` against a decoded frame.
    void checkWatch(GstSample* sample, double arrivedMs); // Borrows the sample.
    static void onPadAddedCb(GstElement*, GstPad* pad, gpointer user) noexcept;
    static GstFlowReturn onVideoSampleCb(GstAppSink* sink, gpointer user) noexcept;
    static GstFlowReturn onAudioSampleCb(GstAppSink* sink, gpointer user) noexcept;
    static GstPadProbeReturn onRecordBufferCb(GstPad*, GstPadProbeInfo* info, gpointer user) noexcept;
    static GstPadProbeReturn onRecordEosCb(GstPad*, GstPadProbeInfo* info, gpointer user) noexcept;
    static GstPadProbeReturn onRtpCb(GstPad*, GstPadProbeInfo* info, gpointer user) noexcept;

    // commands.cpp. Thread: main unless marked.
    void onStdinEnd();
    void command(std::string_view line);
    void addLossProbes();
    void requestKeyframe();
    static GstPadProbeReturn onLossCb(GstPad*, GstPadProbeInfo*, gpointer user) noexcept;

    // signaling.cpp: one HTTP request (Janus, WHIP). `then` runs on the
    // main thread with the answered message and its body, or with a null
    // body and the transport error; not at all once the client finishes.
    using HttpReply = std::function<void(Client&, SoupMessage* message, GBytes* body, const std::string& error)>;
    void httpSend(const char* method, const std::string& url, const char* contentType, const std::string& body,
                  HttpReply then);
    static void onHttpReplyCb(GObject* source, GAsyncResult* result, gpointer user) noexcept;
    // A reply's body as text ("" for none).
    static std::string bodyText(GBytes* body);

    // janus.cpp: the Janus AudioBridge JSON API over HTTP instead of
    // Tessera's WebSocket (the benchmark's audio-MCU peer). Thread: main.
    using JanusReply = std::function<void(Client&, const Json&)>;
    void janusStart();
    void janusPost(const std::string& path, Json body, JanusReply then);
    void janusPoll();
    void onJanusEvent(const Json& event);
    void onJanusReply(GBytes* body, const std::string& error, const JanusReply& then);

    // whip.cpp: --whip, publishing through WHIP (RFC 9725), and --whep,
    // watching through WHEP (the same exchange, receive-only): the offer is
    // POSTed, the answer (with every server candidate) comes back, our
    // candidates are PATCHed to the resource, DELETE leaves. Thread: main.
    void whipPublish(const GstSDPMessage* offer, const std::string& text);
    void onWhipPublished(SoupMessage* message, GBytes* body, const std::string& error);
    void whipTrickle(unsigned mline, const std::string& candidate); // "" ends the candidates
    void whipFlush();
    void whipDelete();
    bool whipResourceLive() const { return !m_whipResource.empty(); }
    // "WHEP" when watching (--whep), else "WHIP": for messages.
    const char* whipLabel() const { return m_options.receiveOnly ? "WHEP" : "WHIP"; }

    Options m_options;
    GMainLoop* m_loop; // Borrowed; outlives this.

    // Media.
    ElementRef m_pipeline;          // Owned.
    GstElement* m_webrtc = nullptr; // Borrowed from m_pipeline.
    GstElement* m_mux = nullptr;    // Borrowed from m_pipeline.
    PadRef m_muxVideoPad;           // Owned request pad.
    PadRef m_muxAudioPad;           // Owned request pad.
    std::mutex m_recordMutex;       // Guards the two flags below (streaming threads).
    bool m_muxVideoLinked = false;
    bool m_muxAudioLinked = false;
    std::atomic<bool> m_recordStopping{false};
    bool m_recordDone = false;
    Ref<GstWebRTCDataChannel> m_chat;                        // Owned.
    Ref<GstWebRTCDataChannel> m_file;                        // Owned.
    std::vector<Ref<GstWebRTCDataChannel>> m_remoteChannels; // Owned.
    VideoMeasure m_video;
    AudioMeasure m_audio;
    std::atomic<bool> m_firstAudio{false};
    // "loss N": N % of the packets arriving from the network are dropped
    // before webrtcbin sees them, so its receiver reports tell the server.
    std::atomic<unsigned> m_lossPercent{0};
    std::atomic<unsigned> m_lossCounter{0};
    // "stall-data on": every DTLS packet arriving (the data channels' SCTP)
    // is dropped, so the server's sends to us wait, as for a receiver whose
    // link cannot take them; media still flows.
    std::atomic<bool> m_stallData{false};
    bool m_lossProbes = false;
    // "keyframe-requests on": a key-frame request (PLI) every
    // kKeyframeRequestMs on a clean link, as a misbehaving receiver sends.
    // The requests go into webrtcbin's incoming video pad, which
    // m_videoIncoming keeps (guarded by m_video.mutex).
    guint m_keyframeTimer = 0;
    PadRef m_videoIncoming;
    std::atomic<bool> m_stopping{false};
    GapMeasure m_frameGaps; // decoded frames; guarded by m_video.mutex
    RtpMeasure m_rtpVideo;
    RtpMeasure m_rtpAudio;
    LatencyMeasure m_latency;
    ColorWatch m_watch;

    // --send-file: the source that feeds our payloaders, and our place in it.
    std::shared_ptr<FileSource> m_fileSource;
    FileSource::Outlet* m_fileOutlet = nullptr; // Owned by m_fileSource until detached.
    std::optional<Membership> m_group;
    // The test camera's send size (send-size): its scaler's capsfilter, a
    // valve shut while it is not shown, the encoder whose bit rate is capped.
    GstElement* m_sendCaps = nullptr;     // Borrowed from m_pipeline.
    GstElement* m_sendValve = nullptr;    // Borrowed from m_pipeline.
    GstElement* m_videoEncoder = nullptr; // Borrowed from m_pipeline.
    bool m_sharing = false;               // the `share` command ran
    guint m_busWatch = 0;

    // Signaling.
    Ref<SoupSession> m_session;        // Owned.
    Ref<GCancellable> m_cancellable;   // Owned.
    Ref<SoupWebsocketConnection> m_ws; // Owned.
    std::string m_id;
    std::vector<proto::ParticipantInfo> m_participants;
    std::string m_speaker;
    proto::OnScreen m_onScreen; // the last `on-screen` (report: onScreen, offScreen)
    std::string m_layout;
    std::vector<std::string> m_errors;
    std::string m_audioOnly;         // the server sends us audio only, and why ("link", ...); "": video
    std::vector<std::string> m_mids; // per m-line of our offer
    bool m_offerHeld = false;        // --hold-offer: joined, waiting for the "offer" command
    bool m_offerSent = false;
    bool m_remoteSet = false;
    std::vector<proto::IceCandidate> m_pendingCandidates;
    bool m_endOfCandidatesSent = false;
    std::string m_janusPath; // "/janus/<session>/<handle>" once attached
    std::string m_janusSessionPath;
    std::uint64_t m_janusTransaction = 0;
    // --whip: the resource (absolute URL) once the POST is answered; our
    // offer's ICE credentials and m= lines for the PATCH fragments; the
    // candidate lines gathered per m-line and not yet PATCHed.
    std::string m_whipResource;
    std::shared_ptr<GstWebRTCSessionDescription> m_whipOffer; // our offer, local once the POST is answered
    std::string m_whipUfrag, m_whipPwd;
    std::vector<std::string> m_whipMLines;
    std::vector<std::vector<std::string>> m_whipPending;
    bool m_whipEnd = false;      // gathering is complete: the next PATCH says so
    bool m_whipEndSent = false;  // ... and it went
    bool m_whipPatching = false; // one PATCH at a time, so end-of-candidates comes last

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
    guint m_sigint = 0;
    guint m_sigterm = 0;
    std::unique_ptr<StdinLines> m_stdin; // the one session of a process only
};

} // namespace tessera::client
