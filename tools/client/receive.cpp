// tessera-client: what it receives. Each incoming stream is decoded (or
// only counted with --no-decode), optionally recorded, and measured: colours,
// tones, stamps (latency), RTP and frame stalls; `report` sums it up.
#include <algorithm>

#include "client_impl.h"
#include "tessera/analysis/stamp.h"

namespace tessera::client {
namespace {

std::string frequencyKey(double f) {
    if (f == std::floor(f) && f < 1e9) return std::to_string(static_cast<long long>(f));
    GCharPtr s(g_strdup_printf("%g", f));
    return s.get();
}

std::string_view stateName(State s) {
    switch (s) {
    case State::Connecting: return "connecting";
    case State::Connected: return "connected";
    case State::Failed: return "failed";
    case State::Closed: return "closed";
    }
    return "connecting";
}

} // namespace

// A recvonly transceiver (--receive-only).
bool Client::addReceiver(const std::string& codecCaps) {
    CapsPtr caps(gst_caps_from_string(codecCaps.c_str()));
    GstWebRTCRTPTransceiver* transceiver = nullptr;
    g_signal_emit_by_name(m_webrtc, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps.get(),
                          &transceiver);
    if (!transceiver) {
        g_printerr("tessera-client: webrtcbin refused a recvonly transceiver\n");
        return false;
    }
    const auto owned = Ref<GstWebRTCRTPTransceiver>::adopt(transceiver);
    return true;
}

// Thread: streaming. Links synchronously (see client_impl.h).
void Client::onPadAddedCb(GstElement*, GstPad* pad, gpointer user) noexcept {
    glib::guarded("pad-added", [&] {
        if (GST_PAD_DIRECTION(pad) == GST_PAD_SRC) static_cast<Client*>(user)->linkIncoming(pad);
    });
}

// Thread: streaming.
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
    if (video) {
        std::lock_guard lock(m_video.mutex);
        m_videoIncoming = PadRef::borrow(pad);
    }
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
    const GErrorPtr owned(error);
    if (!bin) {
        GST_ERROR("cannot build the receive chain for %s: %s", encoding.c_str(), error ? error->message : "?");
        return;
    }
    if (auto depay = ElementRef::adopt(gst_bin_get_by_name(GST_BIN(bin), "depay"))) {
        // Ask for a key frame after loss rather than decode garbage.
        if (hasProperty(depay.get(), "request-keyframe")) g_object_set(depay.get(), "request-keyframe", TRUE, nullptr);
        if (hasProperty(depay.get(), "wait-for-keyframe"))
            g_object_set(depay.get(), "wait-for-keyframe", TRUE, nullptr);
    }
    if (auto sink = ElementRef::adopt(gst_bin_get_by_name(GST_BIN(bin), "sink"))) {
        GstAppSinkCallbacks callbacks{};
        callbacks.new_sample = video ? onVideoSampleCb : onAudioSampleCb;
        gst_app_sink_set_callbacks(GST_APP_SINK(sink.get()), &callbacks, this, nullptr);
    }
    gst_bin_add(GST_BIN(m_pipeline.get()), bin);
    if (muxPad) {
        auto recordSrc = PadRef::adopt(gst_element_get_static_pad(bin, "src"));
        if (recordSrc) {
            gst_pad_add_probe(recordSrc.get(),
                              static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                              onRecordBufferCb, this, nullptr);
            if (gst_pad_link(recordSrc.get(), muxPad) != GST_PAD_LINK_OK)
                GST_ERROR("cannot link the %s stream to the recorder", encoding.c_str());
        }
    }
    gst_element_sync_state_with_parent(bin);
    auto sinkPad = PadRef::adopt(gst_element_get_static_pad(bin, "sink"));
    const GstPadLinkReturn linked = sinkPad ? gst_pad_link(pad, sinkPad.get()) : GST_PAD_LINK_REFUSED;
    if (linked != GST_PAD_LINK_OK) GST_ERROR("cannot link incoming %s stream", encoding.c_str());
    GST_INFO("incoming %s stream %s linked", media.c_str(), encoding.c_str());
    glib::post(weak_from_this(), [media, encoding](Client& c) {
        c.event("track", {{"kind", media}, {"encoding", encoding}});
    });
}

// Thread: streaming (appsink).
GstFlowReturn Client::onVideoSampleCb(GstAppSink* sink, gpointer user) noexcept {
    glib::guarded("video sample", [&] {
        if (glib::SamplePtr sample{gst_app_sink_pull_sample(sink)})
            static_cast<Client*>(user)->onVideoSample(std::move(sample));
    });
    return GST_FLOW_OK;
}

// Thread: streaming (appsink).
GstFlowReturn Client::onAudioSampleCb(GstAppSink* sink, gpointer user) noexcept {
    glib::guarded("audio sample", [&] {
        if (glib::SamplePtr sample{gst_app_sink_pull_sample(sink)})
            static_cast<Client*>(user)->onAudioSample(std::move(sample));
    });
    return GST_FLOW_OK;
}

// Thread: streaming (appsink).
void Client::onVideoSample(glib::SamplePtr sample) {
    GstVideoInfo info;
    GstCaps* caps = gst_sample_get_caps(sample.get());
    if (!caps || !gst_video_info_from_caps(&info, caps)) return;
    const int width = GST_VIDEO_INFO_WIDTH(&info);
    const int height = GST_VIDEO_INFO_HEIGHT(&info);
    const double arrivedMs = wallMs();
    if (m_options.readStamp) readStamp(sample.get(), arrivedMs);
    checkWatch(sample.get(), arrivedMs);
    bool first = false;
    bool resized = false;
    std::int64_t gapUs = 0; // since the previous frame
    {
        std::lock_guard lock(m_video.mutex);
        m_frameGaps.arrive(g_get_monotonic_time());
        m_video.last = std::move(sample);
        first = m_video.frames == 0;
        resized = !first && (width != m_video.width || height != m_video.height);
        const std::int64_t now = g_get_monotonic_time();
        if (m_video.lastFrameUs != 0) gapUs = now - m_video.lastFrameUs;
        m_video.maxGapUs = std::max(m_video.maxGapUs, gapUs);
        m_video.lastFrameUs = now;
        ++m_video.frames;
        m_video.width = width;
        m_video.height = height;
    }
    if (first || resized) {
        const char* name = first ? "first-frame" : "resolution";
        glib::post(weak_from_this(), [name, width, height, arrivedMs, gapUs, resized](Client& c) {
            Json fields = {{"width", width}, {"height", height}, {"ts", std::round(arrivedMs * 10.0) / 10.0}};
            if (resized) fields["gapMs"] = std::round(static_cast<double>(gapUs) / 100.0) / 10.0;
            if (std::string_view(name) == "first-frame") {
                // The colour of the first frame: handy to check a tile at once.
                std::lock_guard lock(c.m_video.mutex);
                withFrame(c.m_video.last.get(), [&](const analysis::FrameView& view) {
                    if (auto avg = analysis::averageColor(view)) fields["average"] = analysis::toString(*avg);
                });
            }
            c.event(name, fields);
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
        glib::post(weak_from_this(), [visible, ts = std::round(arrivedMs * 10.0) / 10.0](Client& c) {
            c.event(visible ? "stamp-visible" : "stamp-hidden", {{"ts", ts}});
        });
    }
}

// Thread: streaming. Measured on the decoder's output, before any report
// polling, so the time is the frame's own: a cell of the thumbnail grid
// (1/64 x 1/36 of the frame) around the point, averaged.
void Client::checkWatch(GstSample* sample, double arrivedMs) {
    std::lock_guard lock(m_watch.mutex);
    if (!m_watch.armed) return;
    bool seen = false;
    withFrame(sample, [&](const analysis::FrameView& view) {
        const int w = std::max(1, view.width / analysis::kThumbnailWidth);
        const int h = std::max(1, view.height / analysis::kThumbnailHeight);
        const analysis::Rect cell{static_cast<int>(m_watch.fx * view.width) - w / 2,
                                  static_cast<int>(m_watch.fy * view.height) - h / 2, w, h};
        const auto average = analysis::averageColor(view, cell);
        seen = average && analysis::colorsClose(*average, m_watch.color, 60);
    });
    if (!seen) return;
    m_watch.armed = false;
    glib::post(weak_from_this(), [ts = std::round(arrivedMs * 10.0) / 10.0, fx = m_watch.fx, fy = m_watch.fy,
                                  color = analysis::toString(m_watch.color)](Client&) {
        emitEvent("watch-seen", {{"ts", ts}, {"x", fx}, {"y", fy}, {"color", color}});
    });
}

// Thread: streaming (appsink).
void Client::onAudioSample(glib::SamplePtr sample) {
    GstBuffer* buffer = gst_sample_get_buffer(sample.get());
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
        m_audio.append(samples, count, m_options.detect);
        gst_buffer_unmap(buffer, &map);
    }
    if (!m_firstAudio.exchange(true)) glib::post(weak_from_this(), [](Client& c) { c.event("first-audio"); });
}

// Thread: streaming (webrtcbin's source pad). Counts RTP; user is an RtpMeasure.
GstPadProbeReturn Client::onRtpCb(GstPad*, GstPadProbeInfo* info, gpointer user) noexcept {
    auto* m = static_cast<RtpMeasure*>(user);
    const gint64 now = g_get_monotonic_time();
    const auto count = [&](GstBuffer* buffer) {
        GstMapInfo map;
        bool marker = false;
        if (gst_buffer_map(buffer, &map, GST_MAP_READ)) {
            if (map.size >= 12) {
                marker = map.data[1] & 0x80;
                m->sequence(static_cast<guint16>(map.data[2] << 8 | map.data[3]));
            }
            gst_buffer_unmap(buffer, &map);
        }
        ++m->packets;
        m->bytes += gst_buffer_get_size(buffer);
        if (marker) ++m->markers;
        m->gaps.arrive(now);
    };
    glib::guarded("rtp probe", [&] {
        std::lock_guard lock(m->mutex);
        if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
            count(GST_PAD_PROBE_INFO_BUFFER(info));
        } else if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
            GstBufferList* list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
            for (guint i = 0; i < gst_buffer_list_length(list); ++i) count(gst_buffer_list_get(list, i));
        }
    });
    return GST_PAD_PROBE_OK;
}

// Thread: streaming. On the record branch's way into the muxer: once the
// recording is being finalised, buffers are dropped so that nothing follows
// the EOS sent to the muxer pads. Nothing here can throw.
GstPadProbeReturn Client::onRecordBufferCb(GstPad*, GstPadProbeInfo*, gpointer user) noexcept {
    return static_cast<Client*>(user)->m_recordStopping.load() ? GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK;
}

// Thread: streaming. EOS reached the filesink: the file is complete.
GstPadProbeReturn Client::onRecordEosCb(GstPad*, GstPadProbeInfo* info, gpointer user) noexcept {
    glib::guarded("record eos probe", [&] {
        GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
        if (event && GST_EVENT_TYPE(event) == GST_EVENT_EOS)
            glib::post(static_cast<Client*>(user)->weak_from_this(), [](Client& c) {
                c.m_recordDone = true;
                c.event("recording-finished", {{"file", c.m_options.recordPath}});
                if (c.m_finishing) c.stopLoop();
            });
    });
    return GST_PAD_PROBE_OK;
}

// Thread: main.
Json Client::report() {
    Json j = Json::object();
    j["reply"] = "report";
    j["state"] = stateName(m_state);
    j["id"] = m_id;
    j["room"] = m_options.room;
    j["name"] = m_options.name;

    glib::SamplePtr last;
    {
        std::lock_guard lock(m_video.mutex);
        j["frames"] = m_video.frames;
        j["width"] = m_video.width;
        j["height"] = m_video.height;
        // A gap still open counts too: a frozen stream must show while frozen.
        std::int64_t gap = m_video.maxGapUs;
        if (m_video.lastFrameUs != 0) gap = std::max(gap, g_get_monotonic_time() - m_video.lastFrameUs);
        j["maxFrameGapMs"] = gap / 1000;
        if (m_video.last) last.reset(gst_sample_ref(m_video.last.get()));
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
    Json peaks = Json::object();
    {
        std::lock_guard lock(m_audio.mutex);
        for (std::size_t i = 0; i < m_options.detect.size(); ++i)
            peaks[frequencyKey(m_options.detect[i])] =
                round2(i < m_audio.peaks.size() ? m_audio.peaks[i] : analysis::kSilenceDbfs);
    }
    j["tonePeaks"] = peaks;

    j["thumb"] = nullptr;
    j["average"] = nullptr;
    if (last) {
        withFrame(last.get(), [&](const analysis::FrameView& view) {
            const auto thumb = analysis::makeThumbnail(view);
            j["thumb"] = {{"w", thumb.width}, {"h", thumb.height}, {"rgb", analysis::toHex(thumb.rgb)}};
            if (auto avg = analysis::averageColor(view)) j["average"] = analysis::toString(*avg);
        });
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
    j["onScreen"] = m_onScreen.shown;
    j["offScreen"] = m_onScreen.hidden;
    j["layout"] = m_layout;
    j["errors"] = m_errors;
    j["audioOnly"] = m_audioOnly;
    j["ice"] = m_iceState;
    j["chatReceived"] = m_chatReceived;
    j["fileMessages"] = m_fileMessages;
    j["fileBytes"] = m_fileBytes;

    // Benchmark measurements (bench/README.md).
    const gint64 now = g_get_monotonic_time();
    Json rtp = Json::object();
    for (auto [kind, m] : {std::pair{"video", &m_rtpVideo}, std::pair{"audio", &m_rtpAudio}}) {
        std::lock_guard lock(m->mutex);
        Json r = {{"packets", m->packets}, {"bytes", m->bytes}, {"lost", m->lost}};
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

} // namespace tessera::client
