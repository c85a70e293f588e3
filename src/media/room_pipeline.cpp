#include "room_pipeline.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <utility>

#include <gst/video/video.h>

#include "live.h"
#include "peer.h"
#include "recorder.h"
#include "tessera/policy/frame_grid.h"
#include "tessera/protocol/error.h"

#define GST_CAT_DEFAULT tessera_media_debug

namespace tessera::media {

void configureMixer(GstElement* mixer, const Config& config) {
    g_object_set(mixer, "min-upstream-latency",
                 static_cast<guint64>(config.jitterLatencyMs + kMixerSlackMs) * GST_MSECOND, "ignore-inactive-pads",
                 TRUE, "start-time-selection", 1 /* first */, nullptr);
}
namespace {

constexpr std::int64_t kKeyFrameIntervalUs = 500 * 1000; // at most 2 forced key frames/s per encoder
// A receiver's key-frame request that arrives this soon after a key frame left
// the encoder was sent before that key frame reached it, and is answered by
// it. A receiver without a picture (joining mid-GOP, or after loss) asks at
// every frame it cannot decode, and its RTCP sends the request when its timing
// allows: 200-400 ms after the key frame arrived were seen on a loaded machine.
// Forcing another key frame then shows nothing new, costs every receiver of the
// tier a bit-rate spike, and a held request forced it up to 500 ms later still.
// A receiver that really lost the key frame asks again.
constexpr std::int64_t kKeyFrameAnswersUs = 500 * 1000;
constexpr guint kStatsEveryTicks = 2;
constexpr guint kRecorderDrainSeconds = 15;
// A peer's bin goes NULL in well under a second; this much means it is stuck.
constexpr std::chrono::seconds kPeerTeardownBound{5};
// LATENCY messages within this much of the first share one recalculation.
constexpr guint kLatencyUpdateDelayMs = 250;

// An error message as "element: message", and its debug text.
std::pair<std::string, std::string> describeError(GstMessage* message) {
    GError* raw = nullptr;
    gchar* debug = nullptr;
    gst_message_parse_error(message, &raw, &debug);
    GErrorPtr err(raw);
    GCharPtr dbg(debug);
    return {std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(message))) + ": " + (err ? err->message : "error"),
            dbg ? dbg.get() : ""};
}

guint32 argb(const std::string& hex) {
    unsigned rgb = 0;
    if (hex.size() == 7 && hex[0] == '#') std::sscanf(hex.c_str() + 1, "%6x", &rgb);
    return 0xff000000u | rgb;
}

// "#rrggbb" as the composite's Y, U, V (its matrix and range, so a border
// colour reads back as the colour given).
std::array<guint8, 3> yuvOf(const std::string& hex, const GstVideoInfo& info) {
    const guint32 rgb = argb(hex);
    const double r = ((rgb >> 16) & 0xff) / 255.0, g = ((rgb >> 8) & 0xff) / 255.0, b = (rgb & 0xff) / 255.0;
    gdouble kr = 0.2126, kb = 0.0722; // BT.709 unless the caps say otherwise
    gst_video_color_matrix_get_Kr_Kb(GST_VIDEO_INFO_COLORIMETRY(&info).matrix, &kr, &kb);
    const double y = kr * r + (1 - kr - kb) * g + kb * b;
    const double cb = (b - y) / (2 * (1 - kb)), cr = (r - y) / (2 * (1 - kr));
    const bool full = GST_VIDEO_INFO_COLORIMETRY(&info).range == GST_VIDEO_COLOR_RANGE_0_255;
    auto clamp8 = [](double v) { return static_cast<guint8>(std::clamp(std::lround(v), 0L, 255L)); };
    return {clamp8(full ? 255 * y : 16 + 219 * y), clamp8(128 + (full ? 255 : 224) * cb),
            clamp8(128 + (full ? 255 : 224) * cr)};
}

} // namespace

RoomPipeline::RoomPipeline(std::string room, const Config& config, const Fragments& fragments, RoomListener& listener)
    : m_room(std::move(room)), m_config(config), m_fragments(fragments), m_listener(listener),
      m_layout(layout::defaultGridSpec()) {
    const auto& v = config.video;
    const std::string rawVideo = "video/x-raw,format=I420,width=" + std::to_string(v.width) +
                                 ",height=" + std::to_string(v.height) + ",framerate=" + std::to_string(v.framerate) +
                                 "/1,pixel-aspect-ratio=1/1";
    const std::string rawAudio = "audio/x-raw,format=F32LE,rate=48000,channels=2,layout=interleaved";
    // Built from validated configuration only; live background sources keep
    // both mixers ticking with no participant or a stalled one.
    // The two canvas capsfilters are resized when a layout names its own
    // canvas; every consumer of the composite scales to its own fixed size.
    const std::string description =
        "videotestsrc name=background is-live=true pattern=solid-color foreground-color=0xff000000 ! "
        "capsfilter name=bgcaps caps=\"" +
        rawVideo +
        "\" ! compositor name=vmix background=black ! "
        "capsfilter name=canvascaps caps=\"" +
        rawVideo +
        "\" ! tee name=rawtee allow-not-linked=true "
        "audiotestsrc name=silence is-live=true wave=silence samplesperbuffer=960 ! " +
        rawAudio + " ! tesseramixminus name=amix slots=" + std::to_string(config.audio.mixMinusSpeakers) + " ! " +
        rawAudio + " ! tee name=fullmix allow-not-linked=true";
    GError* raw = nullptr;
    GstElement* bin = gst_parse_launch_full(description.c_str(), nullptr, GST_PARSE_FLAG_FATAL_ERRORS, &raw);
    GErrorPtr err(raw);
    if (!bin || err) {
        if (bin) gst_object_unref(gst_object_ref_sink(bin));
        throw Error(ErrorCode::Internal, std::string("room pipeline: ") + (err ? err->message : "parse failed"));
    }
    m_pipeline = ElementRef::sink(bin);
    gst_element_set_name(bin, ("room-" + m_room).c_str());
    GstBin* pipe = pipeline();
    m_videoMixer = requireByName(pipe, "vmix");
    m_audioMixer = requireByName(pipe, "amix");
    ElementRef background = requireByName(pipe, "background");
    {
        GstCaps* caps = gst_caps_from_string(rawVideo.c_str());
        const bool ok = caps && gst_video_info_from_caps(&m_canvasInfo, caps);
        if (caps) gst_caps_unref(caps);
        if (!ok) throw Error(ErrorCode::Internal, "room pipeline: bad composite caps " + rawVideo);
    }
    m_canvasCaps = requireByName(pipe, "canvascaps");
    m_backgroundCaps = requireByName(pipe, "bgcaps");
    m_canvasWidth = v.width;
    m_canvasHeight = v.height;
    m_frameInfo = m_canvasInfo;
    m_rawTee = requireByName(pipe, "rawtee");
    m_fullMix = requireByName(pipe, "fullmix");
    {
        // Every consumer of the composite scales it to its own size.
        GstCaps* anySize = gst_caps_from_string("video/x-raw,format=I420");
        answerCapsAt(m_rawTee.get(), anySize);
        gst_caps_unref(anySize);
    }
    for (GstElement* mixer : {m_videoMixer.get(), m_audioMixer.get()}) configureMixer(mixer, config);

    m_parts = {&m_config,          &m_fragments,       pipeline(),
               m_audioMixer.get(), m_videoMixer.get(), effectiveTiers(config.video)};
    for (const std::string& codec : v.codecs) {
        for (std::size_t tier = 0; tier < m_parts.ladder.size(); ++tier) {
            m_tiers.push_back(std::make_unique<EncoderTier>());
            m_tiers.back()->tier = tier;
            m_tiers.back()->codec = codec;
        }
    }
    // The most preferred codec's ladder exists from the start, as a room of
    // one codec always had it; another codec's encoders are built when a
    // receiver first needs them (addReceiver).
    for (std::size_t tier = 0; tier < m_parts.ladder.size(); ++tier) buildTier(encoderIndex(tier, v.codecs.front()));
    // After the first ladder (buildTier puts its elements first: startVideo()
    // starts sinks first, so nothing pushes into an element not running yet).
    for (const char* name : {"rawtee", "canvascaps", "vmix", "bgcaps", "background"})
        m_videoElements.push_back(requireByName(pipe, name));
    for (const ElementRef& e : m_videoElements) gst_element_set_locked_state(e.get(), TRUE);
    m_speakerSet = policy::SpeakerSet({config.audio.mixMinusSpeakers});
    buildAudioEncodes();

    // videotestsrc 1.22 fills frames from a cached one on its streaming
    // thread, and setting foreground-color swaps that cache: from any other
    // thread that raced into a SIGSEGV in gst_video_frame_copy. A new colour
    // is therefore applied on the source's own thread, between two frames.
    //
    // The background's first frame also sets where the compositor's frame
    // grid starts (start-time-selection=first, the only input then), and it
    // comes at whatever running time its thread got to run: that frame is
    // dropped and the background shifted later (a pad offset: under 200 ms
    // at 15 frames/s) so that the next one starts the compositor on the
    // decoders' frame grid, to the nanosecond (policy/frame_grid.h;
    // docs/recording.md, "Synchronisation").
    GstPad* backgroundOut = gst_element_get_static_pad(background.get(), "src");
    gst_pad_add_probe(
        backgroundOut, GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad* pad, GstPadProbeInfo* info, gpointer self) noexcept {
            // Thread: streaming (the background's).
            GstPadProbeReturn result = GST_PAD_PROBE_OK;
            glib::guarded("background probe", [&] {
                auto* room = static_cast<RoomPipeline*>(self);
                const std::int64_t colour = room->m_pendingBackground.exchange(-1);
                if (colour >= 0)
                    g_object_set(GST_PAD_PARENT(pad), "foreground-color", static_cast<guint>(colour), nullptr);
                if (!room->m_backgroundAligned) {
                    room->m_backgroundAligned = true;
                    if (room->alignBackground(pad, GST_PAD_PROBE_INFO_BUFFER(info))) result = GST_PAD_PROBE_DROP;
                }
            });
            return result;
        },
        this, nullptr);
    gst_object_unref(backgroundOut);

    // Layout changes reach the compositor on its own thread, right before it
    // draws a frame, together with the borders painted on that frame.
    g_object_set(m_videoMixer.get(), "emit-signals", TRUE, nullptr);
    g_signal_connect(
        m_videoMixer.get(), "samples-selected",
        G_CALLBACK(+[](GstElement*, GstSegment*, guint64, guint64, guint64, GstStructure*, gpointer self) noexcept {
            // Thread: streaming (the compositor's).
            glib::guarded("samples-selected", [&] { static_cast<RoomPipeline*>(self)->onSamplesSelected(); });
        }),
        this);
    // Frames out of the compositor (borders painted on them), and the ones
    // the encoder could not keep up with.
    GstPad* mixOut = gst_element_get_static_pad(m_videoMixer.get(), "src");
    gst_pad_add_probe(
        mixOut, GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad*, GstPadProbeInfo* info, gpointer self) noexcept {
            // Thread: streaming (the compositor's).
            glib::guarded("composite probe", [&] {
                auto* room = static_cast<RoomPipeline*>(self);
                ++room->m_framesOut;
                room->paintBorders(info);
            });
            return GST_PAD_PROBE_OK;
        },
        this, nullptr);
    // The frame size borders are painted at follows the canvas (same thread).
    gst_pad_add_probe(
        mixOut, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
        [](GstPad*, GstPadProbeInfo* info, gpointer self) noexcept {
            // Thread: streaming (the compositor's). Copies a struct: cannot throw.
            GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
            if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS) {
                GstCaps* caps = nullptr;
                gst_event_parse_caps(event, &caps);
                GstVideoInfo info2;
                if (caps && gst_video_info_from_caps(&info2, caps))
                    static_cast<RoomPipeline*>(self)->m_frameInfo = info2;
            }
            return GST_PAD_PROBE_OK;
        },
        this, nullptr);
    gst_object_unref(mixOut);
    GstBus* bus = gst_element_get_bus(m_pipeline.get());
    // Only what onBusMessage reads is queued for the main loop. Every state
    // change and stream status of every element of every peer was queued
    // too: the bus queue is lock-free, and a writer spins until the one
    // before it has finished its slot, so thirty peer bins going NULL at
    // once on thirty pool threads (a room of 30 closing) spun for minutes
    // on two cores, the main loop blocked behind one of them (its latency
    // update waits for a bin's state lock): seen in gdb, the [large] test.
    gst_bus_set_sync_handler(
        bus,
        [](GstBus*, GstMessage* message, gpointer) noexcept {
            // Thread: any (whoever posts).
            switch (GST_MESSAGE_TYPE(message)) {
            case GST_MESSAGE_ERROR:
            case GST_MESSAGE_WARNING:
            case GST_MESSAGE_ELEMENT:
            case GST_MESSAGE_EOS:
            case GST_MESSAGE_LATENCY: return GST_BUS_PASS;
            default: return GST_BUS_DROP;
            }
        },
        nullptr, nullptr);
    m_busWatch = gst_bus_add_watch(
        bus,
        [](GstBus*, GstMessage* message, gpointer self) noexcept -> gboolean {
            // Thread: main.
            glib::guarded("bus watch", [&] { static_cast<RoomPipeline*>(self)->onBusMessage(message); });
            return G_SOURCE_CONTINUE;
        },
        this);
    gst_object_unref(bus);
    m_tickSource = g_timeout_add_seconds(
        1,
        [](gpointer self) noexcept -> gboolean {
            // Thread: main.
            glib::guarded("room tick", [&] { static_cast<RoomPipeline*>(self)->onTick(); });
            return G_SOURCE_CONTINUE;
        },
        this);
    m_lastTickTime = g_get_monotonic_time();

    if (gst_element_set_state(m_pipeline.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
        throw Error(ErrorCode::Internal, "room pipeline could not start (see the GStreamer log)");
    GST_CAT_INFO(tessera_media_debug, "room %s: pipeline playing", m_room.c_str());
}

namespace {

// Stopping a room's pipeline, after its timers and bus watch are gone: it
// waits for streaming threads (and for the last peers' teardowns on the
// pool), so RoomPipeline::stop() runs it on the pool. Holds its own
// references; touches nothing of the RoomPipeline.
void stopPipeline(GstElement* pipeline, PendingWork latencyWork, PendingWork peerTeardowns, const std::string& room) {
    // A latency recalculation on the thread pool queries and configures
    // every element: not of a pipeline going NULL under it.
    if (!latencyWork.waitIdle(kPeerTeardownBound))
        GST_CAT_ERROR(tessera_media_debug, "room %s: a latency recalculation did not finish within %lld s",
                      room.c_str(), static_cast<long long>(kPeerTeardownBound.count()));
    // Peers that left last may still be going NULL and out of the pipeline on
    // the thread pool, without the main loop (their tee pads detach in
    // streaming threads). Stopping the pipeline under them raced their bin
    // removal and mixer pad release, and at shutdown the process exited with
    // that still running: the server hung on SIGTERM.
    if (!peerTeardowns.waitIdle(kPeerTeardownBound)) {
        GST_CAT_ERROR(tessera_media_debug,
                      "room %s: a peer's teardown did not finish within %lld s; stopping the room under it",
                      room.c_str(), static_cast<long long>(kPeerTeardownBound.count()));
    }
    // Flush first: a live aggregator whose output already stopped (a peer's
    // webrtcbin going NULL) would otherwise keep an upstream queue blocked in
    // its chain function, and the NULL transition waits for that queue's
    // stream lock forever (seen at shutdown with peers still in the room).
    gst_element_send_event(pipeline, gst_event_new_flush_start());
    gst_element_set_state(pipeline, GST_STATE_NULL);
    GST_CAT_INFO(tessera_media_debug, "room %s: pipeline stopped", room.c_str());
}

} // namespace

void RoomPipeline::detachFromMainLoop() {
    *m_alive = false;
    if (m_stopTimeout) g_source_remove(m_stopTimeout);
    if (m_tickSource) g_source_remove(m_tickSource);
    if (m_latencyTimer) g_source_remove(m_latencyTimer);
    if (m_noticeTimer) g_source_remove(m_noticeTimer);
    if (m_busWatch) g_source_remove(m_busWatch);
    m_stopTimeout = m_tickSource = m_latencyTimer = m_noticeTimer = m_busWatch = 0;
    // A recorder still here was not finalised (the room stopped without
    // stopRecording()). Its bin stops apart: its writes may hang.
    if (m_recorder) m_recorder->isolate();
    if (m_live) m_live->isolate();
    for (const auto& live : m_closingLive) live->isolate();
}

bool RoomPipeline::stop(std::function<void()> stopped) {
    if (m_stopping) return false;
    m_stopping = true;
    detachFromMainLoop();
    runAsync([pipeline = ElementRef::borrow(m_pipeline.get()), latencyWork = m_latencyWork,
              peerTeardowns = m_peerTeardowns, room = m_room, token = m_stopWork.hold(),
              alive = std::weak_ptr<bool>(m_stopAlive), stopped = std::move(stopped)]() mutable {
        // Thread: the pool.
        stopPipeline(pipeline.get(), latencyWork, peerTeardowns, room);
        pipeline.reset();
        token.reset();
        post(alive, std::move(stopped));
    });
    return true;
}

RoomPipeline::~RoomPipeline() {
    if (m_stopping) {
        // Rooms destroys a room it stopped once stop() said so; only at
        // shutdown may the pool still be stopping it.
        if (!m_stopWork.waitIdle(3 * kPeerTeardownBound))
            GST_CAT_ERROR(tessera_media_debug, "room %s: its pipeline did not stop within %lld s", m_room.c_str(),
                          static_cast<long long>(3 * kPeerTeardownBound.count()));
    } else {
        detachFromMainLoop();
        stopPipeline(m_pipeline.get(), m_latencyWork, m_peerTeardowns, m_room);
    }
    m_recorder.reset();
    m_live.reset();
    m_closingLive.clear();
}

std::string RoomPipeline::startRecording(const RecordingRequest& request) {
    if (m_recorder) throw Error(ErrorCode::Conflict, "room '" + m_room + "' is already recording");
    startVideo();
    m_recorder = std::make_unique<Recorder>(*this, request);
    return m_recorder->file();
}

void RoomPipeline::stopRecording(std::function<void(const RecordingResult&)> done) {
    if (!m_recorder || m_recorder->stopping() || m_removingRecorder)
        throw Error(ErrorCode::Conflict, "room '" + m_room + "' is not recording");
    m_stopDone = std::move(done);
    if (!m_recorder->wroteVideo()) {
        // Stopped before the first key frame reached the muxer: there is
        // nothing to finalise (splitmuxsink would wait for video forever).
        post([this, alive = std::weak_ptr<bool>(m_alive)] {
            if (alive.lock()) removeRecorder("");
        });
        return;
    }
    m_recorder->stop();
    // The EOS drains through the recorder's encoders and muxer; should it
    // never come out, the file is closed as it is (still playable).
    m_stopTimeout = g_timeout_add_seconds(
        kRecorderDrainSeconds,
        [](gpointer self) noexcept -> gboolean {
            // Thread: main.
            auto* room = static_cast<RoomPipeline*>(self);
            room->m_stopTimeout = 0;
            glib::guarded("recorder drain timeout", [&] {
                room->removeRecorder("the recording did not finish within " + std::to_string(kRecorderDrainSeconds) +
                                     " s; the file was closed unfinalised");
            });
            return G_SOURCE_REMOVE;
        },
        this);
}

void RoomPipeline::startLive(const LiveTarget& target) {
    startVideo();
    if (!m_live) m_live = std::make_unique<LiveStream>(*this);
    try {
        m_live->add(target);
    } catch (...) {
        closeLiveIfIdle();
        throw;
    }
}

void RoomPipeline::stopLive(const std::string& id) {
    if (m_live && m_live->remove(id)) closeLiveIfIdle();
}

void RoomPipeline::closeLiveIfIdle() {
    if (!m_live || m_live->size() > 0) return;
    LiveStream* live = m_live.get();
    m_closingLive.push_back(std::move(m_live));
    live->close([this, live] {
        // Thread: main; not once the stream is gone (Branch::remove), which this outlives.
        std::erase_if(m_closingLive, [live](const auto& l) { return l.get() == live; });
        if (!m_closingLive.empty()) return;
        for (const auto& done : std::exchange(m_liveStopped, {})) done();
    });
}

bool RoomPipeline::whenLiveStopped(std::function<void()> done) {
    if (m_closingLive.empty()) return false;
    m_liveStopped.push_back(std::move(done));
    return true;
}

void RoomPipeline::removeRecorder(const std::string& error) {
    if (!m_recorder || m_removingRecorder) return;
    m_removingRecorder = true;
    if (m_stopTimeout) {
        g_source_remove(m_stopTimeout);
        m_stopTimeout = 0;
    }
    RecordingResult result{m_recorder->file(), m_recorder->duration(), error};
    m_recorder->remove([this, alive = std::weak_ptr<bool>(m_alive), result] {
        if (!alive.lock()) return;
        m_recorder.reset();
        m_removingRecorder = false;
        if (auto done = std::move(m_stopDone)) {
            m_stopDone = nullptr;
            done(result);
        } else {
            m_listener.onRecordingFailed(result.error);
        }
    });
}

void RoomPipeline::onRecorderMessage(GstMessage* message) {
    switch (GST_MESSAGE_TYPE(message)) {
    case GST_MESSAGE_ERROR: {
        const auto [what, debug] = describeError(message);
        GST_CAT_ERROR(tessera_media_debug, "room %s: recorder failed: %s (%s)", m_room.c_str(), what.c_str(),
                      debug.c_str());
        dumpDot(pipeline(), "tessera-recorder-error-" + m_room);
        removeRecorder("recording failed: " + what); // only the recorder, never the room
        break;
    }
    case GST_MESSAGE_ELEMENT: {
        if (m_recorder->stopping() && m_recorder->eosReached(message)) {
            GST_CAT_INFO(tessera_media_debug, "room %s: recording finalised (%s)", m_room.c_str(),
                         m_recorder->file().c_str());
            removeRecorder("");
            break;
        }
        const GstStructure* s = gst_message_get_structure(message);
        if (!gst_structure_has_name(s, "splitmuxsink-fragment-opened")) break;
        const char* location = gst_structure_get_string(s, "location");
        GstClockTime at = GST_CLOCK_TIME_NONE;
        gst_structure_get_uint64(s, "running-time", &at);
        const double offset = m_recorder->offsetOf(at);
        if (location) m_listener.onRecordingSegment(location, offset);
        break;
    }
    default: break;
    }
}

std::unique_ptr<Peer> RoomPipeline::addPeer(const std::string& participantId, const PeerOptions& options,
                                            PeerListener& listener) {
    {
        // Known to the speaker set from now: its first loud frame gets it a
        // slot even before its pad on the mixer exists (addAudioInput).
        std::lock_guard lock(m_speakersMutex);
        m_slotPads[participantId] = {};
    }
    try {
        auto core = std::make_shared<PeerCore>(*this, participantId, options, listener, m_joinCounter++);
        core->start();
        return std::make_unique<GstPeer>(std::move(core));
    } catch (...) {
        std::lock_guard lock(m_speakersMutex);
        m_slotPads.erase(participantId);
        throw;
    }
}

void RoomPipeline::setLayout(const protocol::LayoutSpec& spec) {
    if (spec.background != m_layout.background)
        m_pendingBackground = argb(spec.background); // applied by the background's probe
    m_layout = spec;
    relayout();
}

RoomStats RoomPipeline::stats() const {
    RoomStats s;
    s.outputFps = m_fps;
    s.framesOut = m_framesOut.load();
    s.framesDropped = m_framesDropped.load();
    s.keyFramesForced = m_keyFramesForced.load();
    s.elements = countElements(pipeline());
    // The room's encodes fed now, and the recorder's (any other opusenc).
    const auto roomEncodes = static_cast<unsigned>(m_encodeTees.size());
    s.opusEncoders = countElements(pipeline(), "opusenc") - roomEncodes;
    for (unsigned source = 0; source < roomEncodes; ++source) s.opusEncoders += m_encodeDemand->fed(source) ? 1 : 0;
    s.compositing = m_videoStarted;
    s.videoDecoders = static_cast<unsigned>(std::count_if(
        m_sources.begin(), m_sources.end(), [](const VideoSource& v) { return v.gate && v.gate->open(); }));
    s.liveTargets = m_live ? static_cast<unsigned>(m_live->size()) : 0;
    // Highest tier first, each tier's codecs in preference order; only the built encoders.
    for (const std::string& codec : m_config.video.codecs) s.codecs.push_back({codec, 0});
    for (std::size_t tier = 0; tier < m_parts.ladder.size(); ++tier) {
        for (auto& codec : s.codecs) {
            const EncoderTier& t = *m_tiers.at(encoderIndex(tier, codec.name));
            if (!t.tee) continue;
            const auto receivers = static_cast<unsigned>(t.receivers.load());
            s.tiers.push_back({m_parts.ladder.at(tier).name, receivers, t.frames.load(), codec.name});
            if (receivers > 0) ++codec.encoders;
        }
    }
    return s;
}

std::size_t RoomPipeline::encoderIndex(std::size_t tier, const std::string& codec) const {
    const auto& codecs = m_config.video.codecs;
    const auto found = std::find(codecs.begin(), codecs.end(), codec);
    if (found == codecs.end() || tier >= m_parts.ladder.size())
        throw Error(ErrorCode::Internal, "no encoder for tier " + std::to_string(tier) + " in '" + codec + "'");
    return static_cast<std::size_t>(found - codecs.begin()) * m_parts.ladder.size() + tier;
}

void RoomPipeline::requestKeyFrame(std::size_t tier, const std::string& codec, const std::string& why) {
    requestKeyFrame(*m_tiers.at(encoderIndex(tier, codec)), why.c_str());
}

void RoomPipeline::requestKeyFrame(EncoderTier& t, const char* why) {
    if (!t.encoder) return; // not built: nobody receives it
    const std::int64_t now = g_get_monotonic_time();
    std::int64_t last = t.lastKeyFrameRequest.load();
    if (now - last < kKeyFrameIntervalUs) {
        GST_CAT_DEBUG(tessera_media_debug, "room %s: tier %zu (%s) key frame held back by the rate limit: %s",
                      m_room.c_str(), t.tier, t.codec.c_str(), why);
        t.keyFramePending = true; // sent by the next frame after the interval
        return;
    }
    if (!t.lastKeyFrameRequest.compare_exchange_strong(last, now)) return; // another thread sent it just now
    t.keyFramePending = false;
    ++m_keyFramesForced;
    GST_CAT_INFO(tessera_media_debug, "room %s: tier %zu (%s) key frame forced: %s", m_room.c_str(), t.tier,
                 t.codec.c_str(), why);
    GstPad* out = gst_element_get_static_pad(t.encoder.get(), "src");
    if (out) {
        gst_pad_send_event(out, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
        gst_object_unref(out);
    }
}

void RoomPipeline::onReceiverKeyFrameRequest(std::size_t index) {
    EncoderTier& t = *m_tiers.at(index);
    if (g_get_monotonic_time() - t.lastKeyFrameOut.load() < kKeyFrameAnswersUs) {
        GST_CAT_DEBUG(tessera_media_debug, "room %s: tier %zu (%s) key-frame request answered by the last key frame",
                      m_room.c_str(), t.tier, t.codec.c_str());
        return;
    }
    requestKeyFrame(t, "a receiver's PLI or FIR");
}

void RoomPipeline::onEncodedFrame(std::size_t index, bool keyFrame) {
    EncoderTier& t = *m_tiers.at(index);
    ++t.frames;
    if (keyFrame) {
        // Every request so far reaches the receivers' branches after this one.
        t.lastKeyFrameOut = g_get_monotonic_time();
        t.keyFramePending = false;
    } else if (t.keyFramePending.load()) {
        requestKeyFrame(t, "a request held back by the rate limit");
    }
}

void RoomPipeline::buildTier(std::size_t index) {
    EncoderTier& tier = *m_tiers.at(index);
    const policy::Tier& spec = m_parts.ladder.at(tier.tier);
    GstBin* pipe = pipeline();
    // The valve keeps a tier nobody receives from costing an encode.
    tier.valve = ElementRef::borrow(make("valve"));
    g_object_set(tier.valve.get(), "drop", TRUE, nullptr);
    GstElement* queue = leakyQueue(2);
    GstElement* scale = make("videoscale");
    GstElement* caps = make("capsfilter");
    GstCaps* size = gst_caps_new_simple(
        "video/x-raw", "format", G_TYPE_STRING, "I420", "width", G_TYPE_INT, static_cast<int>(spec.width), "height",
        G_TYPE_INT, static_cast<int>(spec.height), "pixel-aspect-ratio", GST_TYPE_FRACTION, 1, 1, nullptr);
    g_object_set(caps, "caps", size, nullptr);
    gst_caps_unref(size);
    tier.encoder = m_fragments.makeBin(tierEncoder(tier.codec, spec));
    // The receivers' payloaders hang off the tee with no queue of their own
    // (peer_branches.cpp): this one thread sends to all of them, and waits
    // for each frame's time, so the encoder does not. It waits in the
    // clocksync in front of the tee, until the time webrtcbin's own
    // clocksync holds the frame to, so that one finds it on time. It used to
    // wait inside its first receiver's webrtcbin, holding that receiver's
    // video pad, and the probe padding pushed into the same pad from the
    // audio's thread (peer_probe.cpp) waited behind each frame: a 30 ms
    // cluster left over 0-194 ms, now 20-40 (the audio's 20 ms pace).
    // The send queue is not leaky, and short: dropping an encoded frame
    // would break every receiver's picture until the next key frame, and a
    // long backlog is latency; when sending falls behind, the encoder waits
    // and the leaky queue in front of it drops raw frames instead.
    GstElement* send = make("queue");
    g_object_set(send, "max-size-buffers", 3, "max-size-bytes", 0, "max-size-time", G_GUINT64_CONSTANT(0), nullptr);
    GstElement* sync = make("clocksync");
    tier.tee = ElementRef::borrow(make("tee"));
    g_object_set(tier.tee.get(), "allow-not-linked", TRUE, nullptr);
    gst_bin_add_many(pipe, tier.valve.get(), queue, scale, caps, tier.encoder.get(), send, sync, tier.tee.get(),
                     nullptr);
    if (!gst_element_link_many(tier.valve.get(), queue, scale, caps, tier.encoder.get(), send, sync, tier.tee.get(),
                               nullptr))
        throw Error(ErrorCode::Internal, "pipelines/encode-" + tier.codec +
                                             ".pipeline: cannot link raw video in and encoded video out (does it take "
                                             "video/x-raw and produce one stream?)");
    // Frames the encoder could not keep up with.
    g_signal_connect(queue, "overrun", G_CALLBACK(+[](GstElement*, gpointer self) noexcept {
                         // Thread: streaming. An atomic increment: cannot throw.
                         ++static_cast<RoomPipeline*>(self)->m_framesDropped;
                     }),
                     this);

    // Receivers' key-frame requests (PLI/FIR arrive as upstream force-key-unit
    // events through the tee) are coalesced: the encoder is shared.
    struct ProbeData {
        RoomPipeline* room;
        std::size_t index;
    };
    GstPad* teeIn = gst_element_get_static_pad(tier.tee.get(), "sink");
    gst_pad_add_probe(
        teeIn, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM,
        [](GstPad*, GstPadProbeInfo* info, gpointer data) noexcept {
            // Thread: streaming (a receiver's, upstream).
            if (!gst_video_event_is_force_key_unit(GST_PAD_PROBE_INFO_EVENT(info))) return GST_PAD_PROBE_OK;
            auto* d = static_cast<ProbeData*>(data);
            glib::guarded("key frame request", [&] { d->room->onReceiverKeyFrameRequest(d->index); });
            return GST_PAD_PROBE_DROP;
        },
        new ProbeData{this, index}, [](gpointer d) noexcept { delete static_cast<ProbeData*>(d); });
    gst_pad_add_probe(
        teeIn, GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad*, GstPadProbeInfo* info, gpointer data) noexcept {
            // Thread: streaming (the tier encoder's).
            auto* d = static_cast<ProbeData*>(data);
            const bool key = !GST_BUFFER_FLAG_IS_SET(GST_PAD_PROBE_INFO_BUFFER(info), GST_BUFFER_FLAG_DELTA_UNIT);
            glib::guarded("encoded frame", [&] { d->room->onEncodedFrame(d->index, key); });
            return GST_PAD_PROBE_OK;
        },
        new ProbeData{this, index}, [](gpointer d) noexcept { delete static_cast<ProbeData*>(d); });
    gst_object_unref(teeIn);
    cutIdleTime(tier);
    // In a room whose video runs, the new elements start downstream first and
    // are fed last, so the composite never pushes into an element still in
    // NULL (the valve drops it all anyway until a receiver opens it). Before
    // that, they wait in NULL with the compositor, ahead of it (startVideo()).
    const std::initializer_list<GstElement*> sinksFirst = {tier.tee.get(), sync,  send,  tier.encoder.get(),
                                                           caps,           scale, queue, tier.valve.get()};
    if (m_videoStarted) {
        for (GstElement* e : sinksFirst) gst_element_sync_state_with_parent(e);
    } else {
        for (GstElement* e : sinksFirst) gst_element_set_locked_state(e, TRUE);
        std::vector<ElementRef> built;
        for (GstElement* e : sinksFirst) built.push_back(ElementRef::borrow(e));
        m_videoElements.insert(m_videoElements.begin(), std::make_move_iterator(built.begin()),
                               std::make_move_iterator(built.end()));
    }
    if (!gst_element_link(m_rawTee.get(), tier.valve.get()))
        throw Error(ErrorCode::Internal, "room pipeline: cannot link the composite to a " + tier.codec + " encoder");
}

// A rate-controlled encoder reads the time between two frames as time it
// had to send in: after its valve was closed for a while, libvpx took the
// gap as a frame rate near zero and filled its whole 1 s buffer, then spent
// it. Reopened for a joiner behind 300 kbit/s, the low tier sent twice its
// bit rate for a second, and tbf's queue dropped its first frames (1.8 s
// without a picture in the [bottleneck] test). Its timeline without the
// gaps has it go on where it stopped.
void RoomPipeline::cutIdleTime(EncoderTier& t) {
    GstPad* in = gst_element_get_static_pad(t.encoder.get(), "sink");
    GstPad* out = gst_element_get_static_pad(t.encoder.get(), "src");
    gst_pad_add_probe(
        in, GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad*, GstPadProbeInfo* info, gpointer data) noexcept {
            // Thread: streaming (the tier encoder's).
            auto& t = *static_cast<EncoderTier*>(data);
            GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
            const GstClockTime pts = GST_BUFFER_PTS(buffer);
            if (!GST_CLOCK_TIME_IS_VALID(pts)) return GST_PAD_PROBE_OK;
            if (t.resumed.exchange(false) && GST_CLOCK_TIME_IS_VALID(t.nextPts) && pts > t.nextPts)
                t.idleCut += pts - t.nextPts;
            const GstClockTime duration = GST_BUFFER_DURATION(buffer);
            t.nextPts = pts + (GST_CLOCK_TIME_IS_VALID(duration) ? duration : 0);
            const GstClockTime cut = t.idleCut.load();
            if (cut == 0 || pts < cut) return GST_PAD_PROBE_OK;
            buffer = gst_buffer_make_writable(buffer);
            GST_BUFFER_PTS(buffer) = pts - cut;
            if (GST_BUFFER_DTS_IS_VALID(buffer) && GST_BUFFER_DTS(buffer) >= cut) GST_BUFFER_DTS(buffer) -= cut;
            GST_PAD_PROBE_INFO_DATA(info) = buffer;
            return GST_PAD_PROBE_OK;
        },
        &t, nullptr);
    gst_pad_add_probe(
        out, GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad*, GstPadProbeInfo* info, gpointer data) noexcept {
            // Thread: streaming (the tier encoder's; it encodes as each frame comes, lag-in-frames=0).
            const GstClockTime cut = static_cast<EncoderTier*>(data)->idleCut.load();
            if (cut == 0) return GST_PAD_PROBE_OK;
            GstBuffer* buffer = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
            if (GST_BUFFER_PTS_IS_VALID(buffer)) GST_BUFFER_PTS(buffer) += cut;
            if (GST_BUFFER_DTS_IS_VALID(buffer)) GST_BUFFER_DTS(buffer) += cut;
            GST_PAD_PROBE_INFO_DATA(info) = buffer;
            return GST_PAD_PROBE_OK;
        },
        &t, nullptr);
    gst_object_unref(in);
    gst_object_unref(out);
}

GstElement* RoomPipeline::addReceiver(std::size_t tier, const std::string& codec) {
    const std::size_t index = encoderIndex(tier, codec);
    EncoderTier& t = *m_tiers.at(index);
    if (!t.tee) {
        GST_CAT_INFO(tessera_media_debug, "room %s: first %s receiver of tier %s: building its encoder", m_room.c_str(),
                     codec.c_str(), m_parts.ladder.at(tier).name.c_str());
        buildTier(index);
    }
    if (t.receivers++ == 0) {
        t.resumed = true;
        g_object_set(t.valve.get(), "drop", FALSE, nullptr);
        // The tier's clocksync holds each frame until running time plus the
        // upstream latency it learnt from the last latency query through it,
        // and none comes while no sink is linked behind it: with a stale
        // latency its frames left early (120 ms), and then waited that long
        // in each receiver's webrtcbin, at the step from another tier a
        // picture that stopped.
        GstQuery* latency = gst_query_new_latency();
        gst_pad_peer_query(PadRef::adopt(gst_element_get_static_pad(t.tee.get(), "sink")).get(), latency);
        gst_query_unref(latency);
    }
    return t.tee.get();
}

void RoomPipeline::removeReceiver(std::size_t tier, const std::string& codec) {
    EncoderTier& t = *m_tiers.at(encoderIndex(tier, codec));
    if (--t.receivers == 0) g_object_set(t.valve.get(), "drop", TRUE, nullptr);
}

void RoomPipeline::addSource(VideoSource source) {
    // A screen shared again comes on a new pad: the new stream takes the
    // source's place, and the old one, which nothing feeds now, is hidden
    // (two of one id would share the tile, the old frozen frame over the new).
    auto same =
        std::find_if(m_sources.begin(), m_sources.end(), [&](const VideoSource& s) { return s.id == source.id; });
    if (same == m_sources.end()) {
        m_sources.push_back(std::move(source));
    } else {
        g_object_set(same->mixerPad.get(), "alpha", 0.0, nullptr);
        if (same->gate) same->gate->setOpen(false);
        *same = std::move(source);
    }
    relayout();
}

void RoomPipeline::removeSources(const std::string& participantId) {
    std::erase_if(m_sources, [&](const VideoSource& s) {
        if (s.participantId != participantId) return false;
        g_object_set(s.mixerPad.get(), "alpha", 0.0, nullptr); // its last frame must not linger
        m_sendSizes.forget(s.id);
        return true;
    });
    // One relayout for everything the leaver changes (its tiles, the speaker,
    // its share); the room hears of the changes afterwards.
    const bool speakerChanged = adoptSpeaker(m_speakers.remove(participantId));
    const bool wasSharing = m_sharing.erase(participantId) > 0;
    m_recency.forget(participantId);
    relayout();
    if (speakerChanged) m_listener.onSpeakerChanged(m_speaker);
    if (wasSharing) m_listener.onScreenShareChanged(participantId, false);
}

void RoomPipeline::setScreenShareActive(const std::string& participantId, bool active) {
    if (active)
        m_sharing.insert(participantId);
    else
        m_sharing.erase(participantId);
    relayout();
    m_listener.onScreenShareChanged(participantId, active);
}

void RoomPipeline::addAudioInput(const std::string& participantId, GstPad* mixerPad) {
    std::lock_guard lock(m_speakersMutex);
    // Gone already (its bin is going down): nothing to register.
    auto it = m_slotPads.find(participantId);
    if (it == m_slotPads.end()) return;
    // Before its first buffer: it may own a slot already.
    const auto own = m_speakerSet.slotOf(participantId);
    g_object_set(mixerPad, "slot", own ? static_cast<gint>(*own) : -1, nullptr);
    it->second = PadRef::borrow(mixerPad);
}

void RoomPipeline::addAudioOutput(const std::string& participantId, GstElement* funnel) {
    std::shared_ptr<AudioSwitch> chooser;
    {
        std::lock_guard lock(m_speakersMutex);
        const auto own = m_speakerSet.slotOf(participantId);
        chooser = std::make_shared<AudioSwitch>(own ? *own + 1 : 0, m_encodeDemand);
        // Registered before its inputs are linked: a slot it takes meanwhile
        // (its first loud frame, on its decode thread) switches it with the
        // onset's cutoff, as any other, and never hears the full mix carry
        // its voice (a slot taken while the inputs were linked once let a
        // WHIP publisher hear itself; with 300 ms injected here, always).
        m_audioReceivers[participantId] = chooser;
    }
    // Each input is watched before it is linked: never two encodes at once.
    for (std::size_t source = 0; source < m_encodeTees.size(); ++source)
        linkAudio(m_encodeTees[source].get(), participantId, funnel,
                  [&](GstPad* pad) { watchEncode(pad, chooser, source); });
}

void RoomPipeline::linkAudio(GstElement* tee, const std::string& to, GstElement* funnel,
                             const std::function<void(GstPad*)>& prepare) {
    auto teePad = PadRef::adopt(gst_element_request_pad_simple(tee, "src_%u"));
    auto sinkPad = PadRef::adopt(gst_element_request_pad_simple(funnel, "sink_%u"));
    prepare(sinkPad.get());
    // The funnel is in the receiver's bin: ghosted on it.
    auto toBin = ElementRef::adopt(GST_ELEMENT(gst_element_get_parent(funnel)));
    GstPad* in = ghostPad(toBin.get(), sinkPad.get(), true);
    if (gst_pad_link(teePad.get(), in) != GST_PAD_LINK_OK)
        GST_CAT_ERROR(tessera_media_debug, "room %s: cannot link audio to %s", m_room.c_str(), to.c_str());
    m_audioLinks.push_back({to, {ElementRef::borrow(tee), teePad}});
}

DetachPlan RoomPipeline::removeAudio(const std::string& participantId) {
    {
        std::lock_guard lock(m_speakersMutex);
        m_slotPads.erase(participantId);
        if (auto it = m_audioReceivers.find(participantId); it != m_audioReceivers.end()) {
            it->second->release(); // its encode may pause
            m_audioReceivers.erase(it);
        }
        m_speakerSet.remove(participantId); // its slot is free for the next speaker
    }
    DetachPlan plan;
    std::erase_if(m_audioLinks, [&](AudioLink& link) {
        if (link.to != participantId) return false;
        // One of the room's encodes feeds the leaver: detach it when idle.
        plan.tees.push_back(std::move(link.teeSide));
        return true;
    });
    return plan;
}

void RoomPipeline::peerStarted(GstElement* bin, std::weak_ptr<PeerCore> peer) { m_peers[bin] = std::move(peer); }

DetachPlan RoomPipeline::peerStopped(const std::string& participantId, GstElement* bin) {
    DetachPlan plan = removeAudio(participantId);
    plan.teardown = m_peerTeardowns.hold();
    removeSources(participantId);
    m_peers.erase(bin);
    return plan;
}

void RoomPipeline::relayout() {
    std::vector<const VideoSource*> visible;
    for (const auto& s : m_sources)
        if (!s.screenShare || m_sharing.count(s.participantId)) visible.push_back(&s);
    std::stable_sort(visible.begin(), visible.end(), [](const VideoSource* a, const VideoSource* b) {
        return a->order != b->order ? a->order < b->order : a->screenShare < b->screenShare;
    });
    std::vector<layout::Source> inputs;
    for (const auto* s : visible)
        inputs.push_back({s->id, s->participantId, s->name, s->screenShare, m_config.video.tileWidth,
                          m_config.video.tileHeight, m_recency.lastSpoke(s->participantId)});
    // A layout's own canvas resizes the composite; the tiers, the recorder
    // and so every receiver keep their sizes (scaled, letterboxed if the
    // aspect differs), so nobody renegotiates.
    const unsigned width = m_layout.canvasWidth ? m_layout.canvasWidth : m_config.video.width;
    const unsigned height = m_layout.canvasHeight ? m_layout.canvasHeight : m_config.video.height;
    if (width != m_canvasWidth || height != m_canvasHeight) {
        m_canvasWidth = width;
        m_canvasHeight = height;
        for (GstElement* filter : {m_canvasCaps.get(), m_backgroundCaps.get()}) resizeCaps(filter, width, height);
    }
    const auto tiles = layout::computeTiles(inputs, m_speaker, m_layout, width, height);
    CompositePlan plan;
    for (auto& s : m_sources) {
        auto tile = std::find_if(tiles.begin(), tiles.end(), [&](const layout::Tile& t) { return t.sourceId == s.id; });
        const bool shown = tile != tiles.end();
        plan.pads.push_back({s.mixerPad, shown ? std::optional<layout::Tile>(*tile) : std::nullopt});
        // Each input is scaled once, upstream, straight to its tile's size
        // (even: I420's chroma is subsampled), letterboxed or stretched as
        // the layout says; the compositor then places it unscaled. A hidden
        // input keeps its last size.
        if (s.scaler && shown) {
            const unsigned tileWidth = std::max(2, tile->width & ~1);
            const unsigned tileHeight = std::max(2, tile->height & ~1);
            if (s.label && tileHeight != s.scaler->height()) s.label->resize(tileHeight);
            s.scaler->set(tileWidth, tileHeight, m_layout.keepAspect);
        }
        // The label is drawn upstream, on the tile's own frames: it needs no sync.
        if (s.label) s.label->show(shown && m_layout.labels);
        // Hidden: not decoded. Shown again: fed, from a key frame asked for now.
        if (s.gate) s.gate->setOpen(shown);
    }
    plan.borders = layout::visibleBorders(tiles);
    plan.borderYuv = yuvOf(m_layout.borderColor, m_canvasInfo);
    {
        std::lock_guard lock(m_planMutex);
        m_pendingPlan = std::move(plan); // a newer plan replaces one not applied yet
    }
    m_onScreen.want("", layout::onScreen(inputs, tiles));
    updateSendSizes(visible, tiles, width, height);
}

// Every source the layout could show is asked for its tile, scaled to the top
// tier (tiers only scale the composite down, so no receiver sees more), or to
// send nothing when it has no tile. The server does not rely on it: the
// decode fragment scales whatever arrives to the tile (a sender that ignores
// the request costs decoding, nothing else). A screen share that stopped is
// forgotten, so a new one is asked afresh.
void RoomPipeline::updateSendSizes(const std::vector<const VideoSource*>& candidates,
                                   const std::vector<layout::Tile>& tiles, unsigned canvasWidth,
                                   unsigned canvasHeight) {
    const policy::Tier& top = m_parts.ladder.front();
    const policy::SendSizeInput input{canvasWidth, canvasHeight, top.width, top.height, top.bitrate};
    for (const auto& s : m_sources) {
        if (std::find(candidates.begin(), candidates.end(), &s) == candidates.end()) {
            m_sendSizes.forget(s.id);
            continue;
        }
        auto tile = std::find_if(tiles.begin(), tiles.end(), [&](const layout::Tile& t) { return t.sourceId == s.id; });
        m_sendSizes.want(s.id, tile == tiles.end() ? policy::sendRequest(0, 0, input)
                                                   : policy::sendRequest(static_cast<unsigned>(tile->width),
                                                                         static_cast<unsigned>(tile->height), input));
    }
    scheduleNotices();
}

// Always from a timeout, never inside relayout(): the room hears of it from
// the main loop, not from inside one of its own calls into media.
void RoomPipeline::scheduleNotices() {
    if (m_noticeTimer) g_source_remove(m_noticeTimer);
    m_noticeTimer = 0;
    const auto sizes = m_sendSizes.nextDueMs(), onScreen = m_onScreen.nextDueMs();
    if (!sizes && !onScreen) return;
    constexpr auto kNever = std::numeric_limits<std::int64_t>::max();
    const std::int64_t next = std::min(sizes.value_or(kNever), onScreen.value_or(kNever));
    const std::int64_t now = g_get_monotonic_time() / 1000;
    // A first request is due at the earliest time there is: compared, never
    // subtracted (INT64_MIN - now overflowed into a 60 s wait).
    const auto delay = next <= now ? 0u : static_cast<guint>(std::min<std::int64_t>(next - now, 60'000));
    m_noticeTimer = g_timeout_add(
        delay,
        [](gpointer self) noexcept -> gboolean {
            // Thread: main.
            auto* room = static_cast<RoomPipeline*>(self);
            room->m_noticeTimer = 0;
            glib::guarded("room notices", [&] { room->sendDueNotices(); });
            return G_SOURCE_REMOVE;
        },
        this);
}

void RoomPipeline::sendDueNotices() {
    // Copied out first: the room's sends may make participants leave, which relayouts.
    const std::int64_t now = g_get_monotonic_time() / 1000;
    const auto sizes = m_sendSizes.due(now);
    const auto onScreen = m_onScreen.due(now);
    for (const auto& [id, request] : sizes) {
        const auto s =
            std::find_if(m_sources.begin(), m_sources.end(), [&](const VideoSource& v) { return v.id == id; });
        if (s == m_sources.end()) continue;
        GST_CAT_INFO(tessera_media_debug, "room %s: %s asked to send %s%ux%u at %lld bit/s", m_room.c_str(), id.c_str(),
                     request.active ? "" : "nothing (not shown): ", request.width, request.height,
                     static_cast<long long>(request.maxBitrate));
        const std::string participantId = s->participantId;
        m_listener.onSendSize(participantId, protocol::SendSize{s->screenShare ? "screen" : "camera", request.active,
                                                                request.width, request.height, request.maxBitrate});
    }
    for (const auto& [key, seen] : onScreen) {
        GST_CAT_INFO(tessera_media_debug, "room %s: %zu participants on screen, %zu not", m_room.c_str(),
                     seen.shown.size(), seen.hidden.size());
        m_listener.onOnScreen(seen);
    }
    if (!m_noticeTimer) scheduleNotices();
}

void RoomPipeline::onSamplesSelected() {
    std::optional<CompositePlan> plan;
    {
        std::lock_guard lock(m_planMutex);
        plan.swap(m_pendingPlan);
    }
    if (!plan) return;
    for (const auto& [pad, tile] : plan->pads) {
        if (!tile) {
            g_object_set(pad.get(), "alpha", 0.0, nullptr);
            continue;
        }
        // z + 1: the background source stays at the bottom.
        g_object_set(pad.get(), "xpos", tile->x, "ypos", tile->y, "width", tile->width, "height", tile->height,
                     "zorder", static_cast<guint>(tile->z + 1), "alpha", 1.0, nullptr);
    }
    m_borders = std::move(plan->borders);
    m_borderYuv = plan->borderYuv;
}

void RoomPipeline::paintBorders(GstPadProbeInfo* info) {
    if (m_borders.empty()) return;
    GstBuffer* buffer = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
    GST_PAD_PROBE_INFO_DATA(info) = buffer;
    GstVideoFrame frame;
    if (!gst_video_frame_map(&frame, &m_frameInfo, buffer, GST_MAP_WRITE)) return;
    const int width = GST_VIDEO_FRAME_WIDTH(&frame), height = GST_VIDEO_FRAME_HEIGHT(&frame);
    for (const layout::Rect& r : m_borders) {
        const int x0 = std::clamp(r.x, 0, width), x1 = std::clamp(r.x + r.width, 0, width);
        const int y0 = std::clamp(r.y, 0, height), y1 = std::clamp(r.y + r.height, 0, height);
        // I420: full-size Y, then U and V at half size each way; rects are on even pixels.
        for (guint plane = 0; plane < 3; ++plane) {
            const int shift = plane == 0 ? 0 : 1;
            auto* data = static_cast<guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, plane));
            const int stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, plane);
            for (int y = y0 >> shift; y < y1 >> shift; ++y)
                std::memset(data + static_cast<std::ptrdiff_t>(y) * stride + (x0 >> shift), m_borderYuv[plane],
                            static_cast<std::size_t>((x1 >> shift) - (x0 >> shift)));
        }
    }
    gst_video_frame_unmap(&frame);
}

void RoomPipeline::onBusMessage(GstMessage* message) {
    if (m_recorder && m_recorder->owns(message)) {
        onRecorderMessage(message);
        return;
    }
    if (m_live && m_live->owns(message)) {
        // Only the target that failed goes; the room is told from the main
        // loop, never from inside one of its own calls.
        for (auto& [id, reason] : m_live->onMessage(message)) {
            post([this, alive = std::weak_ptr<bool>(m_alive), id, reason] {
                if (alive.lock()) m_listener.onLiveFailed(id, reason);
            });
        }
        closeLiveIfIdle();
        return;
    }
    // A closing stream's targets end their streams (their EOS) and report it.
    for (const auto& live : m_closingLive) {
        if (live->owns(message)) {
            live->onMessage(message); // no target left to fail
            return;
        }
    }
    switch (GST_MESSAGE_TYPE(message)) {
    case GST_MESSAGE_ERROR: {
        const auto [what, debug] = describeError(message);
        std::shared_ptr<PeerCore> culprit;
        for (const auto& [bin, weak] : m_peers)
            if (gst_object_has_as_ancestor(GST_MESSAGE_SRC(message), GST_OBJECT(bin))) culprit = weak.lock();
        dumpDot(pipeline(), "tessera-error-" + m_room);
        if (culprit) {
            culprit->fail("media error: " + what); // only that peer, never the room
        } else {
            GST_CAT_ERROR(tessera_media_debug, "room %s: %s (%s)", m_room.c_str(), what.c_str(), debug.c_str());
        }
        break;
    }
    case GST_MESSAGE_WARNING: {
        GError* raw = nullptr;
        gst_message_parse_warning(message, &raw, nullptr);
        GErrorPtr err(raw);
        GST_CAT_WARNING(tessera_media_debug, "room %s: %s: %s", m_room.c_str(),
                        GST_OBJECT_NAME(GST_MESSAGE_SRC(message)), err->message);
        break;
    }
    case GST_MESSAGE_ELEMENT: {
        // A participant's level element (decode-opus.pipeline), inside its bin "peer-<id>".
        const GstStructure* s = gst_message_get_structure(message);
        if (!gst_structure_has_name(s, "level")) break;
        GstObject* bin = GST_OBJECT_PARENT(GST_OBJECT_PARENT(GST_MESSAGE_SRC(message)));
        if (!bin || !g_str_has_prefix(GST_OBJECT_NAME(bin), "peer-")) break;
        const GValue* rms = gst_structure_get_value(s, "rms");
        double loudest = -127;
        // level's "rms" is a GValueArray (deprecated in GLib, still what 1.22 posts).
        G_GNUC_BEGIN_IGNORE_DEPRECATIONS
        if (rms && G_VALUE_HOLDS_BOXED(rms)) {
            auto* channels = static_cast<GValueArray*>(g_value_get_boxed(rms));
            for (guint i = 0; i < channels->n_values; ++i)
                loudest = std::max(loudest, g_value_get_double(g_value_array_get_nth(channels, i)));
        }
        G_GNUC_END_IGNORE_DEPRECATIONS
        speakerMaybeChanged(m_speakers.update(GST_OBJECT_NAME(bin) + 5, loudest, g_get_monotonic_time() / 1000));
        break;
    }
    case GST_MESSAGE_LATENCY: scheduleLatencyUpdate(); break;
    default: break;
    }
}

// One recalculation for a burst of LATENCY messages. It queries every
// element of every peer: once per message, thirty peers joining (each
// posting several) kept the main loop busy for seconds at a time (the
// [large] test, in gdb), the API and every room's signaling waiting. A new
// peer's latency counts a moment later instead.
void RoomPipeline::scheduleLatencyUpdate() {
    if (m_latencyTimer) return;
    m_latencyTimer = g_timeout_add(
        kLatencyUpdateDelayMs,
        [](gpointer self) noexcept -> gboolean {
            // Thread: main.
            auto* room = static_cast<RoomPipeline*>(self);
            room->m_latencyTimer = 0;
            glib::guarded("latency update", [room] { room->recalculateLatency(); });
            return G_SOURCE_REMOVE;
        },
        this);
}

// Even once per burst, a recalculation in a room of 30 took 0.5-3.2 s on
// two loaded cores (its queries wait on every mixer's and jitter buffer's
// lock), and on the main loop it held every room's signaling, probes and
// congestion feedback that long: a joiner's media started 4 s after it
// connected (the bench's 300 kbit/s joiner). So it runs on the pool, one at
// a time; messages meanwhile make one more after it.
void RoomPipeline::recalculateLatency() {
    {
        std::lock_guard lock(m_latencyRun->mutex);
        if (m_latencyRun->running) {
            m_latencyRun->again = true;
            return;
        }
        m_latencyRun->running = true;
    }
    runAsync([pipeline = ElementRef::borrow(m_pipeline.get()), run = m_latencyRun, room = m_room,
              done = m_latencyWork.hold()]() mutable {
        // Thread: the pool.
        for (;;) {
            const std::int64_t start = g_get_monotonic_time();
            gst_bin_recalculate_latency(GST_BIN(pipeline.get()));
            GST_CAT_DEBUG(tessera_media_debug, "room %s: latency recalculated in %" G_GINT64_FORMAT " ms", room.c_str(),
                          (g_get_monotonic_time() - start) / 1000);
            std::lock_guard lock(run->mutex);
            if (!std::exchange(run->again, false)) {
                run->running = false;
                break;
            }
        }
        // Before `done` goes: the room waits for that, then stops and drops the pipeline.
        pipeline.reset();
    });
}

bool RoomPipeline::adoptSpeaker(bool changed) {
    if (!changed) return false;
    const std::string speaker = m_speakers.speaker().value_or("");
    if (speaker == m_speaker) return false;
    m_speaker = speaker;
    m_recency.spoke(speaker);
    return true;
}

void RoomPipeline::speakerMaybeChanged(bool changed) {
    if (!adoptSpeaker(changed)) return;
    relayout();
    m_listener.onSpeakerChanged(m_speaker);
}

bool RoomPipeline::alignBackground(GstPad* pad, GstBuffer* first) {
    if (!GST_BUFFER_PTS_IS_VALID(first) || !GST_BUFFER_DURATION_IS_VALID(first)) return false;
    // The running time of the next frame, the compositor's first.
    const GstClockTime next = runningTime(pad, GST_BUFFER_PTS(first) + GST_BUFFER_DURATION(first));
    if (!GST_CLOCK_TIME_IS_VALID(next)) return false;
    const std::uint64_t start = policy::exactFrameBoundary(next, m_config.video.framerate);
    // A new segment event carries the offset to the compositor, before the next buffer.
    gst_pad_set_offset(pad, static_cast<gint64>(start - next));
    GST_CAT_INFO(tessera_media_debug,
                 "room %s: the composite starts at %" GST_TIME_FORMAT " (background shifted %" GST_TIME_FORMAT ")",
                 m_room.c_str(), GST_TIME_ARGS(start), GST_TIME_ARGS(start - next));
    return true;
}

void RoomPipeline::onTick() {
    const std::int64_t now = g_get_monotonic_time();
    speakerMaybeChanged(m_speakers.tick(now / 1000));
    const std::uint64_t frames = m_framesOut.load();
    if (now > m_lastTickTime)
        m_fps = static_cast<double>(frames - m_lastFrames) * G_USEC_PER_SEC / static_cast<double>(now - m_lastTickTime);
    m_lastFrames = frames;
    m_lastTickTime = now;
    if (++m_ticks % kStatsEveryTicks == 0) {
        for (const auto& [bin, weak] : m_peers)
            if (auto peer = weak.lock()) peer->requestStats();
    }
}

} // namespace tessera::media
