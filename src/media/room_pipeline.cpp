#include "room_pipeline.h"

#include <algorithm>
#include <cstdio>

#include <gst/video/video.h>

#include "peer.h"
#include "recorder.h"
#include "tessera/error.h"

#define GST_CAT_DEFAULT tessera_media_debug

namespace tessera::media {
namespace {

constexpr std::int64_t kKeyFrameIntervalUs = 500 * 1000; // at most 2 forced key frames/s per encoder
constexpr guint kStatsEveryTicks = 2;
constexpr guint kRecorderDrainSeconds = 15;

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
    if (hex.size() == 7 && hex[0] == '#')
        std::sscanf(hex.c_str() + 1, "%6x", &rgb);
    return 0xff000000u | rgb;
}

} // namespace

RoomPipeline::RoomPipeline(std::string room, const Config& config, const Fragments& fragments,
                           RoomListener& listener)
    : m_room(std::move(room)), m_config(config), m_fragments(fragments), m_listener(listener),
      m_layout(layout::defaultGridSpec()) {
    const auto& v = config.video;
    const std::string rawVideo = "video/x-raw,format=I420,width=" + std::to_string(v.width) +
                                 ",height=" + std::to_string(v.height) + ",framerate=" +
                                 std::to_string(v.framerate) + "/1,pixel-aspect-ratio=1/1";
    const std::string rawAudio = "audio/x-raw,format=F32LE,rate=48000,channels=2,layout=interleaved";
    // Built from validated configuration only; live background sources keep
    // both mixers ticking with no participant or a stalled one.
    const std::string description =
        "videotestsrc name=background is-live=true pattern=solid-color foreground-color=0xff000000 ! " +
        rawVideo + " ! compositor name=vmix background=black ! " + rawVideo +
        " ! tee name=rawtee allow-not-linked=true"
        " ! queue name=encqueue leaky=downstream max-size-buffers=2 max-size-bytes=0 max-size-time=0 "
        "audiotestsrc name=silence is-live=true wave=silence samplesperbuffer=960 ! " + rawAudio +
        " ! tee name=atee allow-not-linked=true ! queue ! audiomixer name=amix ! " + rawAudio +
        " ! tee name=fullmix allow-not-linked=true "
        "tee name=vtee allow-not-linked=true";
    GError* raw = nullptr;
    GstElement* bin = gst_parse_launch_full(description.c_str(), nullptr, GST_PARSE_FLAG_FATAL_ERRORS, &raw);
    GErrorPtr err(raw);
    if (!bin || err) {
        if (bin)
            gst_object_unref(gst_object_ref_sink(bin));
        throw Error(ErrorCode::Internal, std::string("room pipeline: ") + (err ? err->message : "parse failed"));
    }
    m_pipeline = ElementRef::sink(bin);
    gst_element_set_name(bin, ("room-" + m_room).c_str());
    GstBin* pipe = pipeline();
    m_videoMixer = requireByName(pipe, "vmix");
    m_audioMixer = requireByName(pipe, "amix");
    m_videoTee = requireByName(pipe, "vtee");
    m_audioTee = requireByName(pipe, "atee");
    m_background = requireByName(pipe, "background");
    m_rawTee = requireByName(pipe, "rawtee");
    m_fullMix = requireByName(pipe, "fullmix");
    for (GstElement* mixer : {m_videoMixer.get(), m_audioMixer.get()})
        g_object_set(mixer, "min-upstream-latency", static_cast<guint64>(config.jitterLatencyMs + 100) * GST_MSECOND,
                     "ignore-inactive-pads", TRUE, "start-time-selection", 1 /* first */, nullptr);

    ElementRef encoderBin = fragments.makeBin("encode-" + v.codec);
    gst_bin_add(pipe, encoderBin.get());
    ElementRef queue = requireByName(pipe, "encqueue");
    if (!gst_element_link_many(queue.get(), encoderBin.get(), m_videoTee.get(), nullptr))
        throw Error(ErrorCode::Internal, "pipelines/encode-" + v.codec + ".pipeline: cannot link raw video in and "
                                         "encoded video out (does it take video/x-raw and produce one stream?)");
    m_encoder = encoderBin;

    // Frames out of the compositor, and the ones the encoder could not keep up with.
    GstPad* mixOut = gst_element_get_static_pad(m_videoMixer.get(), "src");
    gst_pad_add_probe(
        mixOut, GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad*, GstPadProbeInfo*, gpointer self) noexcept {
            ++static_cast<RoomPipeline*>(self)->m_framesOut;
            return GST_PAD_PROBE_OK;
        },
        this, nullptr);
    gst_object_unref(mixOut);
    g_signal_connect(queue.get(), "overrun", G_CALLBACK(+[](GstElement*, gpointer self) noexcept {
                         ++static_cast<RoomPipeline*>(self)->m_framesDropped;
                     }),
                     this);

    // Receivers' key-frame requests (PLI/FIR arrive as upstream force-key-unit
    // events through the tee) are coalesced: the encoder is shared.
    GstPad* teeIn = gst_element_get_static_pad(m_videoTee.get(), "sink");
    gst_pad_add_probe(
        teeIn, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM,
        [](GstPad*, GstPadProbeInfo* info, gpointer self) noexcept {
            if (!gst_video_event_is_force_key_unit(GST_PAD_PROBE_INFO_EVENT(info)))
                return GST_PAD_PROBE_OK;
            static_cast<RoomPipeline*>(self)->requestKeyFrame();
            return GST_PAD_PROBE_DROP;
        },
        this, nullptr);
    gst_pad_add_probe(
        teeIn, GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad*, GstPadProbeInfo*, gpointer self) noexcept {
            auto* room = static_cast<RoomPipeline*>(self);
            if (room->m_keyFramePending.load())
                room->requestKeyFrame();
            return GST_PAD_PROBE_OK;
        },
        this, nullptr);
    gst_object_unref(teeIn);

    GstBus* bus = gst_element_get_bus(m_pipeline.get());
    m_busWatch = gst_bus_add_watch(
        bus,
        [](GstBus*, GstMessage* message, gpointer self) noexcept -> gboolean {
            try {
                static_cast<RoomPipeline*>(self)->onBusMessage(message);
            } catch (const std::exception& e) {
                GST_CAT_ERROR(tessera_media_debug, "bus handler: %s", e.what());
            }
            return G_SOURCE_CONTINUE;
        },
        this);
    gst_object_unref(bus);
    m_tickSource = g_timeout_add_seconds(
        1,
        [](gpointer self) noexcept -> gboolean {
            static_cast<RoomPipeline*>(self)->onTick();
            return G_SOURCE_CONTINUE;
        },
        this);
    m_lastTickTime = g_get_monotonic_time();

    if (gst_element_set_state(m_pipeline.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
        throw Error(ErrorCode::Internal, "room pipeline could not start (see the GStreamer log)");
    GST_CAT_INFO(tessera_media_debug, "room %s: pipeline playing", m_room.c_str());
}

RoomPipeline::~RoomPipeline() {
    *m_alive = false;
    if (m_stopTimeout)
        g_source_remove(m_stopTimeout);
    if (m_tickSource)
        g_source_remove(m_tickSource);
    if (m_busWatch)
        g_source_remove(m_busWatch);
    // Flush first: a live aggregator whose output already stopped (a peer's
    // webrtcbin going NULL) would otherwise keep an upstream queue blocked in
    // its chain function, and the NULL transition waits for that queue's
    // stream lock forever (seen at shutdown with peers still in the room).
    gst_element_send_event(m_pipeline.get(), gst_event_new_flush_start());
    gst_element_set_state(m_pipeline.get(), GST_STATE_NULL);
    m_recorder.reset(); // not finalised: the room stopped without stopRecording()
    GST_CAT_INFO(tessera_media_debug, "room %s: pipeline stopped", m_room.c_str());
}

std::string RoomPipeline::startRecording(const RecordingRequest& request) {
    if (m_recorder)
        throw Error(ErrorCode::Conflict, "room '" + m_room + "' is already recording");
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
            if (alive.lock())
                removeRecorder("");
        });
        return;
    }
    m_recorder->stop();
    // The EOS drains through the recorder's encoders and muxer; should it
    // never come out, the file is closed as it is (still playable).
    m_stopTimeout = g_timeout_add_seconds(
        kRecorderDrainSeconds,
        [](gpointer self) noexcept -> gboolean {
            auto* room = static_cast<RoomPipeline*>(self);
            room->m_stopTimeout = 0;
            room->removeRecorder("the recording did not finish within " + std::to_string(kRecorderDrainSeconds) +
                                 " s; the file was closed unfinalised");
            return G_SOURCE_REMOVE;
        },
        this);
}

void RoomPipeline::removeRecorder(const std::string& error) {
    if (!m_recorder || m_removingRecorder)
        return;
    m_removingRecorder = true;
    if (m_stopTimeout) {
        g_source_remove(m_stopTimeout);
        m_stopTimeout = 0;
    }
    RecordingResult result{m_recorder->file(), m_recorder->duration(), error};
    m_recorder->remove([this, alive = std::weak_ptr<bool>(m_alive), result] {
        if (!alive.lock())
            return;
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
        if (!gst_structure_has_name(s, "splitmuxsink-fragment-opened"))
            break;
        const char* location = gst_structure_get_string(s, "location");
        GstClockTime at = GST_CLOCK_TIME_NONE;
        gst_structure_get_uint64(s, "running-time", &at);
        const double offset = m_recorder->offsetOf(at);
        if (location)
            m_listener.onRecordingSegment(location, offset);
        break;
    }
    default:
        break;
    }
}

std::unique_ptr<Peer> RoomPipeline::addPeer(const std::string& participantId, const PeerOptions& options,
                                            PeerListener& listener) {
    auto core = std::make_shared<PeerCore>(*this, participantId, options, listener, m_joinCounter++);
    core->start();
    return std::make_unique<GstPeer>(std::move(core));
}

void RoomPipeline::setLayout(const protocol::LayoutSpec& spec) {
    // videotestsrc 1.22 copies a cached frame on its streaming thread, and
    // setting foreground-color swaps that cache under it: a SIGSEGV in
    // gst_video_frame_copy (seen when a share ended as browsers left).
    // Touch it only when the colour really changes.
    if (spec.background != m_layout.background)
        g_object_set(m_background.get(), "foreground-color", argb(spec.background), nullptr);
    m_layout = spec;
    relayout();
}

RoomStats RoomPipeline::stats() const {
    RoomStats s;
    s.outputFps = m_fps;
    s.framesOut = m_framesOut.load();
    s.framesDropped = m_framesDropped.load();
    s.elements = countElements(pipeline());
    return s;
}

void RoomPipeline::requestKeyFrame() {
    const std::int64_t now = g_get_monotonic_time();
    std::int64_t last = m_lastKeyFrameRequest.load();
    if (now - last < kKeyFrameIntervalUs) {
        m_keyFramePending = true; // sent by the next frame after the interval
        return;
    }
    if (!m_lastKeyFrameRequest.compare_exchange_strong(last, now))
        return; // another thread sent it just now
    m_keyFramePending = false;
    GstPad* out = gst_element_get_static_pad(m_encoder.get(), "src");
    if (out) {
        gst_pad_send_event(out, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
        gst_object_unref(out);
    }
}

void RoomPipeline::addSource(VideoSource source) {
    m_sources.push_back(std::move(source));
    relayout();
}

void RoomPipeline::removeSources(const std::string& participantId) {
    std::erase_if(m_sources, [&](const VideoSource& s) {
        if (s.participantId != participantId)
            return false;
        g_object_set(s.mixerPad.get(), "alpha", 0.0, nullptr); // its last frame must not linger
        return true;
    });
    speakerMaybeChanged(m_speakers.remove(participantId));
    if (m_sharing.erase(participantId))
        m_listener.onScreenShareChanged(participantId, false);
    relayout();
}

void RoomPipeline::setScreenShareActive(const std::string& participantId, bool active) {
    if (active)
        m_sharing.insert(participantId);
    else
        m_sharing.erase(participantId);
    relayout();
    m_listener.onScreenShareChanged(participantId, active);
}

void RoomPipeline::addAudioInput(const std::string& participantId, GstElement* tee) {
    std::lock_guard lock(m_audioMutex);
    m_audioInputs[participantId] = ElementRef::borrow(tee);
    for (const auto& [to, mixer] : m_audioOutputs)
        if (to != participantId)
            linkAudio(participantId, tee, to, mixer.get());
}

void RoomPipeline::addAudioOutput(const std::string& participantId, GstElement* mixer) {
    std::lock_guard lock(m_audioMutex);
    m_audioOutputs[participantId] = ElementRef::borrow(mixer);
    for (const auto& [from, tee] : m_audioInputs)
        if (from != participantId)
            linkAudio(from, tee.get(), participantId, mixer);
}

void RoomPipeline::linkAudio(const std::string& from, GstElement* tee, const std::string& to, GstElement* mixer) {
    auto fromBin = ElementRef::adopt(GST_ELEMENT(gst_element_get_parent(tee)));
    auto toBin = ElementRef::adopt(GST_ELEMENT(gst_element_get_parent(mixer)));
    auto teePad = PadRef::adopt(gst_element_request_pad_simple(tee, "src_%u"));
    auto mixerPad = PadRef::adopt(gst_element_request_pad_simple(mixer, "sink_%u"));
    auto out = PadRef::borrow(ghostPad(fromBin.get(), teePad.get()));
    auto in = PadRef::borrow(ghostPad(toBin.get(), mixerPad.get(), true));
    if (gst_pad_link(out.get(), in.get()) != GST_PAD_LINK_OK)
        GST_CAT_ERROR(tessera_media_debug, "room %s: cannot link audio %s -> %s", m_room.c_str(), from.c_str(),
                      to.c_str());
    m_audioLinks.push_back({from, to, {ElementRef::borrow(tee), teePad, fromBin, out},
                            {ElementRef::borrow(mixer), mixerPad, toBin, in}});
}

DetachPlan RoomPipeline::removeAudio(const std::string& participantId) {
    std::lock_guard lock(m_audioMutex);
    m_audioInputs.erase(participantId);
    m_audioOutputs.erase(participantId);
    DetachPlan plan;
    std::erase_if(m_audioLinks, [&](AudioLink& link) {
        if (link.to == participantId) {
            // Another participant's tee feeds the leaver: detach it when idle.
            plan.tees.push_back(std::move(link.teeSide));
            return true;
        }
        if (link.from == participantId) {
            // The leaver feeds another's mixer: release once the leaver is NULL.
            plan.mixers.push_back(std::move(link.mixerSide));
            return true;
        }
        return false;
    });
    return plan;
}

void RoomPipeline::registerPeer(GstElement* bin, std::weak_ptr<PeerCore> peer) { m_peers[bin] = std::move(peer); }

void RoomPipeline::unregisterPeer(GstElement* bin) { m_peers.erase(bin); }

void RoomPipeline::relayout() {
    std::vector<const VideoSource*> visible;
    for (const auto& s : m_sources)
        if (!s.screenShare || m_sharing.count(s.participantId))
            visible.push_back(&s);
    std::stable_sort(visible.begin(), visible.end(), [](const VideoSource* a, const VideoSource* b) {
        return a->order != b->order ? a->order < b->order : a->screenShare < b->screenShare;
    });
    std::vector<layout::Source> inputs;
    for (const auto* s : visible)
        inputs.push_back({s->id, s->participantId, s->name, s->screenShare, m_config.video.tileWidth,
                          m_config.video.tileHeight});
    const auto tiles = layout::computeTiles(inputs, m_speaker, m_layout, m_config.video.width, m_config.video.height);
    for (const auto& s : m_sources) {
        auto tile = std::find_if(tiles.begin(), tiles.end(), [&](const layout::Tile& t) { return t.sourceId == s.id; });
        if (tile == tiles.end()) {
            g_object_set(s.mixerPad.get(), "alpha", 0.0, nullptr);
            continue;
        }
        // z + 1: the background source stays at the bottom.
        g_object_set(s.mixerPad.get(), "xpos", tile->x, "ypos", tile->y, "width", tile->width, "height",
                     tile->height, "zorder", static_cast<guint>(tile->z + 1), "alpha", 1.0, nullptr);
    }
}

void RoomPipeline::onBusMessage(GstMessage* message) {
    if (m_recorder && m_recorder->owns(message)) {
        onRecorderMessage(message);
        return;
    }
    switch (GST_MESSAGE_TYPE(message)) {
    case GST_MESSAGE_ERROR: {
        const auto [what, debug] = describeError(message);
        std::shared_ptr<PeerCore> culprit;
        for (const auto& [bin, weak] : m_peers)
            if (gst_object_has_as_ancestor(GST_MESSAGE_SRC(message), GST_OBJECT(bin)))
                culprit = weak.lock();
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
        if (!gst_structure_has_name(s, "level"))
            break;
        GstObject* bin = GST_OBJECT_PARENT(GST_OBJECT_PARENT(GST_MESSAGE_SRC(message)));
        if (!bin || !g_str_has_prefix(GST_OBJECT_NAME(bin), "peer-"))
            break;
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
    case GST_MESSAGE_LATENCY:
        gst_bin_recalculate_latency(pipeline());
        break;
    default:
        break;
    }
}

void RoomPipeline::speakerMaybeChanged(bool changed) {
    if (!changed)
        return;
    m_speaker = m_speakers.speaker().value_or("");
    relayout();
    m_listener.onSpeakerChanged(m_speaker);
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
            if (auto peer = weak.lock())
                peer->requestStats();
    }
}

} // namespace tessera::media
