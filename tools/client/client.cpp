// tessera-client: one webrtcbin peer driven by the docs/protocol.md signaling.
// This file: start-up, the pipeline, the bus and shutdown;
// client_impl.h says which file does the rest, and on which threads.
#include <glib-unix.h>

#include "client_impl.h"

GST_DEBUG_CATEGORY(tessera_client_debug);

namespace tessera::client {
namespace {

constexpr guint kLeaveCloseTimeoutMs = 1000;
constexpr guint kRecordingFinalizeTimeoutMs = 3000;

} // namespace

bool Client::start() {
    if (!m_options.fileOutPath.empty()) {
        m_fileOut = std::fopen(m_options.fileOutPath.c_str(), "wb");
        if (!m_fileOut) {
            g_printerr("tessera-client: cannot open %s for writing\n", m_options.fileOutPath.c_str());
            return false;
        }
    }
    if (!buildPipeline()) return false;

    // A group's sessions get commands and signals through the group.
    if (!m_group) {
        m_stdin =
            std::make_unique<StdinLines>([this](std::string_view line) { command(line); }, [this] { onStdinEnd(); });
        // Thread: main.
        const auto onSignal = [](gpointer user) noexcept -> gboolean {
            glib::guarded("signal", [self = static_cast<Client*>(user)] { self->onSignal(); });
            return G_SOURCE_CONTINUE;
        };
        m_sigint = g_unix_signal_add(SIGINT, onSignal, this);
        m_sigterm = g_unix_signal_add(SIGTERM, onSignal, this);
    }

    if (m_options.duration > 0) {
        m_durationTimer = g_timeout_add(
            static_cast<guint>(m_options.duration * 1000),
            // Thread: main.
            [](gpointer user) noexcept -> gboolean {
                auto* self = static_cast<Client*>(user);
                self->m_durationTimer = 0;
                glib::guarded("duration timer", [self] {
                    Json j = self->report();
                    j["final"] = true;
                    self->out(j);
                    self->leave();
                });
                return G_SOURCE_REMOVE;
            },
            this);
    }
    if (m_options.connectTimeout > 0) {
        m_connectTimer = g_timeout_add(
            static_cast<guint>(m_options.connectTimeout * 1000),
            // Thread: main.
            [](gpointer user) noexcept -> gboolean {
                auto* self = static_cast<Client*>(user);
                self->m_connectTimer = 0;
                glib::guarded("connect timer", [self] {
                    if (!self->m_everConnected) {
                        self->localError("not connected after " + formatDouble(self->m_options.connectTimeout) + " s");
                        self->setState(State::Failed);
                        Json j = self->report();
                        j["final"] = true;
                        self->out(j);
                        self->leave();
                    }
                });
                return G_SOURCE_REMOVE;
            },
            this);
    }
    connectSignaling();
    return true;
}

bool Client::buildPipeline() {
    m_pipeline = ElementRef::sink(gst_pipeline_new("tessera-client"));
    m_webrtc = gst_element_factory_make("webrtcbin", "webrtc");
    if (!m_webrtc) {
        g_printerr("tessera-client: the webrtcbin element is missing (gst-plugins-bad)\n");
        return false;
    }
    gst_util_set_object_arg(G_OBJECT(m_webrtc), "bundle-policy", "max-bundle");
    // Sender reports tie each stream's RTP time to when it was captured, as
    // browsers do. rtpbin's default ties it to when it was sent: audio
    // leaves later than video (opus waits for whole 20 ms frames), so the
    // reports put the sound 50-85 ms after its picture, and a receiver's
    // lip-sync (the server's, hence its recordings) moved it there.
    if (auto rtpbin = ElementRef::adopt(gst_bin_get_by_name(GST_BIN(m_webrtc), "rtpbin")))
        g_object_set(rtpbin.get(), "rtcp-sync-send-time", FALSE, nullptr);
    if (m_options.relayOnly) gst_util_set_object_arg(G_OBJECT(m_webrtc), "ice-transport-policy", "relay");
    gst_bin_add(GST_BIN(m_pipeline.get()), m_webrtc);
    if (!restrictIce()) return false;

    g_signal_connect(m_webrtc, "on-ice-candidate", G_CALLBACK(onIceCandidateCb), this);
    g_signal_connect(m_webrtc, "pad-added", G_CALLBACK(onPadAddedCb), this);
    g_signal_connect(m_webrtc, "on-data-channel", G_CALLBACK(onDataChannelCb), this);
    g_signal_connect(m_webrtc, "notify::connection-state", G_CALLBACK(onStateNotifyCb), this);
    g_signal_connect(m_webrtc, "notify::ice-connection-state", G_CALLBACK(onStateNotifyCb), this);
    g_signal_connect(m_webrtc, "notify::ice-gathering-state", G_CALLBACK(onStateNotifyCb), this);

    if (!m_options.recordPath.empty() && !addRecorder()) return false;

    const std::string videoCaps = videoCodecCaps(m_options.videoCodec);
    const std::string audioCaps = audioCodecCaps();
    if (m_options.receiveOnly) {
        if (!addReceiver(audioCaps) || (!m_options.audioOnly && !addReceiver(videoCaps))) return false;
    } else if (m_fileSource) {
        if (!addFileSenders()) return false;
    } else if (!addTestSenders()) {
        return false;
    }

    auto bus = Ref<GstBus>::adopt(gst_pipeline_get_bus(GST_PIPELINE(m_pipeline.get())));
    m_busWatch = gst_bus_add_watch(bus.get(), onBusCb, this);

    if (gst_element_set_state(m_pipeline.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        g_printerr("tessera-client: the pipeline does not start (run with GST_DEBUG=3 for details)\n");
        return false;
    }
    return true;
}

// Recording: the muxer exists from the start with one video and one audio
// pad, so it writes its header only once both streams (or EOS) have arrived.
// receive.cpp links the streams to it.
bool Client::addRecorder() {
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
    m_muxVideoPad = PadRef::adopt(gst_element_request_pad_simple(m_mux, "video_%u"));
    m_muxAudioPad = PadRef::adopt(gst_element_request_pad_simple(m_mux, "audio_%u"));
    auto sinkPad = PadRef::adopt(gst_element_get_static_pad(filesink, "sink"));
    gst_pad_add_probe(sinkPad.get(), GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, onRecordEosCb, this, nullptr);
    return true;
}

// Thread: main (bus watch).
gboolean Client::onBusCb(GstBus*, GstMessage* message, gpointer user) noexcept {
    glib::guarded("bus message", [&] { static_cast<Client*>(user)->onBusMessage(message); });
    return G_SOURCE_CONTINUE;
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

void Client::setState(State s) {
    if (s == m_state) return;
    m_state = s;
    if (s == State::Connected) {
        m_everConnected = true;
        if (m_connectTimer) {
            g_source_remove(m_connectTimer);
            m_connectTimer = 0;
        }
        event("connected");
    } else if (s == State::Failed) {
        event("failed");
    }
}

void Client::localError(const std::string& message) {
    GST_WARNING("%s", message.c_str());
    event("client-error", {{"message", message}});
}

void Client::leave() {
    if (m_leaving) return;
    m_leaving = true;
    const bool ws = m_ws && soup_websocket_connection_get_state(m_ws.get()) == SOUP_WEBSOCKET_STATE_OPEN;
    if (ws || whipResourceLive()) {
        if (ws) {
            send(proto::Leave{});
            soup_websocket_connection_close(m_ws.get(), SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
            // "closed" arrives once the server answers the close frame.
        } else {
            whipDelete(); // finishes once answered
        }
        m_closeTimer = g_timeout_add(
            kLeaveCloseTimeoutMs,
            // Thread: main.
            [](gpointer user) noexcept -> gboolean {
                auto* self = static_cast<Client*>(user);
                self->m_closeTimer = 0;
                glib::guarded("close timer", [self] { self->finish(); });
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
        const GErrorPtr owned(error);
        m_ws.reset(); // a dirty close if still open
    }
    finish();
}

void Client::finish() {
    if (m_finishing) return;
    m_finishing = true;
    if (m_group && m_group->answered) std::exchange(m_group->answered, nullptr)(); // the next may start
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
                // Thread: GStreamer's pool.
                m_mux, [](GstElement*, gpointer p) noexcept { gst_pad_send_event(GST_PAD(p), gst_event_new_eos()); },
                gst_object_ref(pad), gst_object_unref);
        }
        m_recordTimer = g_timeout_add(
            kRecordingFinalizeTimeoutMs,
            // Thread: main.
            [](gpointer user) noexcept -> gboolean {
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

// First signal: leave cleanly; next ones: stop waiting.
void Client::onSignal() {
    if (m_finishing) {
        stopLoop();
    } else if (m_leaving) {
        finish();
    } else {
        GST_INFO("signal: leaving");
        leave();
    }
}

void Client::stopLoop() {
    if (!m_group) {
        g_main_loop_quit(m_loop);
    } else if (m_group->done) {
        // The group may end the loop, and this session with it.
        std::exchange(m_group->done, nullptr)();
    }
}

void Client::event(std::string_view name, Json fields) {
    if (m_group) fields["session"] = m_group->index;
    emitEvent(name, std::move(fields));
}

void Client::out(Json j) {
    if (m_group) j["session"] = m_group->index;
    emit(j);
}

Client::~Client() {
    m_stopping = true;
    if (m_fileOutlet) m_fileSource->detach(m_fileOutlet); // before our pipeline stops
    for (guint* source : {&m_durationTimer, &m_connectTimer, &m_closeTimer, &m_recordTimer, &m_keyframeTimer, &m_sigint,
                          &m_sigterm, &m_busWatch}) {
        if (*source) g_source_remove(*source);
        *source = 0;
    }
    m_stdin.reset();
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

int run(const Options& options) {
    GST_DEBUG_CATEGORY_INIT(tessera_client_debug, "tessera-client", 0, "tessera-client");
    setEventTimestamps(options.timestamps);
    std::shared_ptr<FileSource> file;
    if (!options.sendFile.empty() && !options.receiveOnly) {
        file = FileSource::load(options.sendFile, options.audioOnly);
        if (!file) return 2;
    }
    GMainLoop* loop = g_main_loop_new(nullptr, FALSE);
    int code = 2;
    if (options.count > 1) {
        code = runGroup(options, loop, file);
    } else {
        auto client = std::make_shared<Client>(options, loop, file);
        if (client->start()) {
            g_main_loop_run(loop);
            code = client->exitCode();
        }
    }
    g_main_loop_unref(loop);
    return code;
}

} // namespace tessera::client
