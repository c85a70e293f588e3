// PeerCore's media branches: what it sends (the tier's encoded composite and
// the room's Opus encodes, built once the answer exists) and what it receives
// (a decode branch per webrtcbin src pad, built on pad-added).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>

#include <gst/video/video.h>

#include "fragments.h"
#include "peer.h"
#include "peer_detail.h"
#include "room_pipeline.h"

#define GST_CAT_DEFAULT tessera_media_debug

namespace tessera::media {
using namespace peer_detail;

namespace {

// webrtcbin's RTP session sends every transport-cc feedback it gets upstream
// as an "RTPTWCCPackets" event, for encoders that adapt to it. Ours do not
// (the estimate comes from the session's twcc-stats, peer_bwe.cpp), but the
// event still climbs through the payloader, the shared encoder, the
// compositor or mixer and every sender's decode and receive chain: ~230 pads
// per feedback in a room of two, for each receiver ~30 times a second, which
// was most of a WHEP viewer's cost. It stops where it leaves webrtcbin.
void stopTransportCcEvents(GstPad* src) {
    gst_pad_add_probe(
        src, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM,
        [](GstPad*, GstPadProbeInfo* info, gpointer) noexcept {
            return isTransportCcPackets(GST_PAD_PROBE_INFO_EVENT(info)) ? GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK;
        },
        nullptr, nullptr);
}

} // namespace

void PeerCore::buildSendBranches() {
    m_sending = true;
    GstBin* bin = GST_BIN(m_bin.get());

    // A probed video stream's pad reads the feedback before it stops it there.
    auto linkToWebrtc = [&](GstElement* last, GstPad* sink, bool probedVideo = false) {
        GstPad* src = gst_element_get_static_pad(last, "src");
        if (probedVideo)
            watchVideoSend(src, sink);
        else
            stopTransportCcEvents(src);
        GstPadLinkReturn r = gst_pad_link(src, sink);
        if (r != GST_PAD_LINK_OK)
            GST_CAT_ERROR(tessera_media_debug, "peer %s: link to webrtcbin %s failed: %s", m_id.c_str(),
                          GST_PAD_NAME(sink), gst_pad_link_get_name(r));
        gst_object_unref(src);
    };
    auto setPayload = [](GstElement* fragment, int pt, guint ssrc) {
        auto pay = requireByName(GST_BIN(fragment), "pay");
        g_object_set(pay.get(), "pt", static_cast<guint>(pt), nullptr);
        if (ssrc) g_object_set(pay.get(), "ssrc", ssrc, nullptr);
    };

    // No queue in front of the payloaders: the shared encoder's send queue
    // (RoomPipeline::buildTier, buildAudioEncodes) has one thread that
    // payloads, encrypts and sends for each of its receivers in turn. None of
    // that can block once the client is connected (webrtcbin holds RTP back
    // only until the DTLS keys are set, which is before "connected", and
    // sends on non-blocking sockets), and a queue per receiver cost a thread
    // waking for every packet (docs/architecture.md, "Threads").
    if (m_videoSink) {
        // The codec the client's camera line negotiated, the one its shared encoder (takeTier) produces.
        ElementRef payBin = m_parts.fragments->makeBin("pay-" + m_offer.cameraCodec);
        GstElement* pay = payBin.get();
        gst_bin_add(bin, pay);
        setPayload(pay, m_offer.videoPt, m_videoSsrc);
        enableTransportCc(pay, m_videoTransportCcId);
        // The first tier fits the bandwidth the client declared (the
        // selector's first update); its loss reports move it later
        // (updateTier). It may be the audio-only tier: then no tee feeds the
        // entry yet. A tier asked for by name stays: no selector.
        const auto& ladder = m_parts.ladder;
        const auto asked =
            std::find_if(ladder.begin(), ladder.end(), [&](const policy::Tier& t) { return m_options.tier == t.name; });
        // Link probes (peer_probe.cpp) need the client's feedback on the
        // video, audio to pace them, and a tier selector to ask for them.
        const bool probes = m_followingFeedback && m_videoTransportCcId > 0 && m_audioSink && asked == ladder.end();
        linkToWebrtc(pay, m_videoSink.get(), probes);
        GstPad* paySink = gst_element_get_static_pad(pay, "sink");
        PadRef entry = PadRef::borrow(ghostPad(m_bin.get(), paySink, true));
        gst_object_unref(paySink);
        if (asked != ladder.end()) {
            m_videoTeePad = takeTier(static_cast<std::size_t>(asked - ladder.begin()));
        } else {
            policy::TierParams params;
            params.probe = probes;
            m_tiers.emplace(ladder, params);
            // Nothing was sent yet, so no feedback came: the estimate starts here.
            if (probes) m_bwe = policy::BandwidthEstimator(policy::probingParams(m_tiers->needs(ladder.size() - 1)));
            m_tiers->update({m_options.maxBitrate, std::nullopt, std::nullopt, m_audioOnlyRequested},
                            g_get_monotonic_time() / 1000);
            m_videoTeePad = takeTier(m_tiers->currentIndex());
        }
        gst_element_sync_state_with_parent(pay);
        if (m_videoTeePad) gst_pad_link(m_videoTeePad.get(), entry.get());
        watchKeyFrameRequests(entry.get());
        m_videoEntry = entry;
        tellAudioOnly();
    }
    if (m_audioSink) {
        // The room's Opus encodes (the full mix, and each speaker slot's
        // mix-minus) all reach the funnel; the room's AudioSwitch for this
        // receiver lets one through at a time. One payloader keeps its RTP
        // sequence numbers and timestamps continuous across a switch.
        GstElement* funnel = make("funnel");
        ElementRef payBin = m_parts.fragments->makeBin("pay-opus");
        GstElement* pay = payBin.get();
        gst_bin_add_many(bin, funnel, pay, nullptr);
        gst_element_link(funnel, pay);
        setPayload(pay, m_offer.audioPt, m_audioSsrc);
        enableTransportCc(pay, m_audioTransportCcId);
        linkToWebrtc(pay, m_audioSink.get());
        if (m_padding) {
            GstPad* src = gst_element_get_static_pad(pay, "src");
            paceProbes(src);
            gst_object_unref(src);
        }
        for (GstElement* e : {pay, funnel}) gst_element_sync_state_with_parent(e);
        m_room.addAudioOutput(m_id, funnel);
    }
}

namespace {

// A client starting on a stream asks for a key frame at every delta frame it
// gets before its first key frame, and its RTCP sends the request up to
// ~1.2 s later (measured: 0.2-1.2 s): by then it decodes already. Such a
// request, arriving this soon after its first key frame, is stale.
constexpr std::int64_t kStaleRequestUs = 2 * G_USEC_PER_SEC;

} // namespace

// Thread: main. Requests from a receiver that is decoding go to the room
// (the tier's tee merges them: the room cannot tell whose they are), and the
// log names who asked.
void PeerCore::watchKeyFrameRequests(GstPad* entry) {
    auto watch = std::make_shared<EntryWatch>();
    watch->id = m_id;
    m_entryWatch = watch;
    using Shared = std::shared_ptr<EntryWatch>;
    auto release = [](gpointer d) noexcept { delete static_cast<Shared*>(d); };
    gst_pad_add_probe(
        entry, GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad*, GstPadProbeInfo* info, gpointer d) noexcept {
            // Thread: streaming (the tier encoder's).
            auto& w = **static_cast<Shared*>(d);
            if (w.startedUs.load() < 0 &&
                !GST_BUFFER_FLAG_IS_SET(GST_PAD_PROBE_INFO_BUFFER(info), GST_BUFFER_FLAG_DELTA_UNIT))
                w.startedUs = g_get_monotonic_time();
            return GST_PAD_PROBE_OK;
        },
        new Shared(watch), release);
    gst_pad_add_probe(
        entry, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM,
        [](GstPad*, GstPadProbeInfo* info, gpointer d) noexcept {
            // Thread: streaming (webrtcbin's RTCP).
            if (!gst_video_event_is_force_key_unit(GST_PAD_PROBE_INFO_EVENT(info))) return GST_PAD_PROBE_OK;
            auto& w = **static_cast<Shared*>(d);
            const std::int64_t started = w.startedUs.load();
            if (started >= 0 && g_get_monotonic_time() - started < kStaleRequestUs) {
                GST_CAT_INFO(tessera_media_debug, "peer %s: a stale key-frame request (PLI or FIR), dropped",
                             w.id.c_str());
                return GST_PAD_PROBE_DROP;
            }
            GST_CAT_INFO(tessera_media_debug, "peer %s: its client asks for a key frame (PLI or FIR)", w.id.c_str());
            return GST_PAD_PROBE_OK;
        },
        new Shared(watch), release);
}

namespace {

// The SSRC of a webrtcbin source pad's stream: its target is rtpbin's
// "recv_rtp_src_<session>_<ssrc>_<pt>".
std::optional<std::uint32_t> streamSsrc(GstPad* pad) {
    GstPad* target = gst_ghost_pad_get_target(GST_GHOST_PAD(pad));
    if (!target) return std::nullopt;
    guint session = 0, ssrc = 0, pt = 0;
    gchar* name = gst_pad_get_name(target);
    const bool parsed = std::sscanf(name, "recv_rtp_src_%u_%u_%u", &session, &ssrc, &pt) == 3;
    g_free(name);
    gst_object_unref(target);
    return parsed ? std::optional<std::uint32_t>(ssrc) : std::nullopt;
}

} // namespace

// Thread: streaming.
void PeerCore::padAddedThunk(GstElement*, GstPad* pad, gpointer data) noexcept {
    glib::guarded("pad-added", [&] {
        if (auto core = lockWeak(data)) core->onPadAdded(pad);
    });
}

// Thread: streaming.
void PeerCore::onPadAdded(GstPad* pad) {
    if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
    std::lock_guard lock(m_mutex);
    if (m_stopped) return;
    GstCaps* caps = gst_pad_get_current_caps(pad);
    if (!caps) caps = gst_pad_query_caps(pad, nullptr);
    const GstStructure* s = gst_caps_get_structure(caps, 0);
    const std::string media = gst_structure_get_string(s, "media") ? gst_structure_get_string(s, "media") : "";
    std::string encoding =
        gst_structure_get_string(s, "encoding-name") ? gst_structure_get_string(s, "encoding-name") : "";
    for (char& c : encoding) c = g_ascii_tolower(c);
    gst_caps_unref(caps);
    GstWebRTCRTPTransceiver* trans = nullptr;
    g_object_get(pad, "transceiver", &trans, nullptr);
    guint mline = G_MAXUINT;
    if (trans) {
        g_object_get(trans, "mlineindex", &mline, nullptr);
        gst_object_unref(trans);
    }
    // The m-line the offer announced the stream's SSRC on wins over
    // webrtcbin's choice, which falls back to the bundle's first m-line
    // when it lost track of the SSRC (OfferState::ssrcMlines).
    // A client that announces its SSRCs lists every stream it sends in each
    // offer: one the newest offer does not list is a stopped stream's last
    // packets (a screen share whose m-line went inactive; its stream can
    // come back on a new pad after its BYE). Linked, it took the camera's
    // place: the sharer's tile froze on the share's last frame.
    bool unlisted = false;
    if (const auto ssrc = streamSsrc(pad)) {
        const auto announced = m_offer.ssrcMlines.find(*ssrc);
        if (announced != m_offer.ssrcMlines.end() && announced->second != mline) {
            GST_CAT_INFO(tessera_media_debug, "peer %s: SSRC %u is on m-line %u, not %u as webrtcbin has it",
                         m_id.c_str(), *ssrc, announced->second, mline);
            mline = announced->second;
        }
        unlisted = announced == m_offer.ssrcMlines.end() && !m_offer.ssrcMlines.empty();
    }
    const int line = static_cast<int>(mline);
    try {
        if (media == "audio")
            linkAudioInput(pad);
        else if (media == "video" && !unlisted && line == m_offer.cameraMline && m_videoCodecs.count(line))
            linkVideoInput(pad, false, m_videoCodecs.at(line));
        else if (media == "video" && !unlisted && m_shareMlines.count(line) && m_videoCodecs.count(line))
            linkVideoInput(pad, true, m_videoCodecs.at(line));
        else if (media == "video" && (unlisted || m_videoCodecs.count(line)))
            dropStream(pad, line);
        else if (media == "video" && m_shareMlines.empty() && m_videoCodecs.count(m_offer.cameraMline) &&
                 encoding == m_offer.cameraCodec)
            // webrtcbin 1.22 gives the packets of an SSRC the offer did not
            // announce (no a=ssrc, no mid header extension: some WHIP
            // encoders) the bundle's first m-line, whatever its kind. Without
            // a screen share the camera is the one video they can be.
            linkVideoInput(pad, false, m_offer.cameraCodec);
        else if (media == "video")
            throw Error(ErrorCode::Internal, "video on m-line " + std::to_string(mline) +
                                                 ", which has no codec (and a screen share makes it ambiguous: "
                                                 "announce each stream's a=ssrc or a=mid header extension)");
    } catch (const std::exception& e) {
        post(weak_from_this(), [why = std::string(e.what())](PeerCore& core) { core.fail(why); });
    }
}

// Thread: streaming, under m_mutex.
void PeerCore::dropStream(GstPad* pad, int mline) {
    GST_CAT_INFO(tessera_media_debug, "peer %s: video on m-line %d, which sends nothing now: dropped", m_id.c_str(),
                 mline);
    GstElement* sink = make("fakesink");
    g_object_set(sink, "sync", FALSE, "async", FALSE, "enable-last-sample", FALSE, nullptr);
    gst_bin_add(GST_BIN(m_bin.get()), sink);
    gst_element_sync_state_with_parent(sink);
    GstPad* in = gst_element_get_static_pad(sink, "sink");
    gst_pad_link(pad, in);
    gst_object_unref(in);
}

namespace {

// Links webrtcbin's src pad `pad` to the decode fragment `decode`'s sink and
// returns that. A decode branch that fails (caps it cannot take, a stream
// its decoder gives up on) costs its own picture or sound, never the
// participant's transport: its flow error, returned upstream, stopped the
// jitter buffer and then the ICE source that carries the participant's other
// media and data channels too ("nicesrc: Internal data stream error"). A
// failed caps event is sent again before the next buffer, so a branch that
// failed to negotiate once tries again.
PadRef linkDecoder(GstPad* pad, GstElement* decode) {
    PadRef sink = PadRef::adopt(gst_element_get_static_pad(decode, "sink"));
    isolateFlow(sink.get());
    gst_pad_link(pad, sink.get());
    return sink;
}

} // namespace

// Thread: streaming, under m_mutex.
void PeerCore::linkAudioInput(GstPad* pad) {
    GstBin* bin = GST_BIN(m_bin.get());
    ElementRef decode = m_parts.fragments->makeBin("decode-opus");
    gst_bin_add(bin, decode.get());
    GstPad* decoded = gst_element_get_static_pad(decode.get(), "src");
    watchLevels(decoded);
    // Straight into the room's mixer: the jitter buffer's thread pushes
    // into it (a queue here was one more thread per participant, waking 50
    // times a second).
    GstPad* mixerPad = gst_element_request_pad_simple(m_parts.audioMixer, "sink_%u");
    // Which mix leaves it out is set on the pad before its first buffer:
    // here, not on the main thread, or a participant who already owns a
    // slot would hear its own first frames in it.
    m_room.addAudioInput(m_id, mixerPad);
    gst_pad_link(ghostPad(m_bin.get(), decoded), mixerPad);
    gst_object_unref(decoded);
    m_mixerPads.push_back(PadRef::adopt(mixerPad));
    gst_element_sync_state_with_parent(decode.get());
    linkDecoder(pad, decode.get());
}

namespace {

// What the level probe on a participant's decoded audio needs.
struct LevelProbe {
    PeerRoom* room; // Borrowed: the room outlives its peers' bins.
    std::string id;
};

// RMS of interleaved F32 samples, dBFS (-127 for silence).
double rmsDbfs(const float* samples, std::size_t count) {
    double sum = 0;
    for (std::size_t i = 0; i < count; ++i) sum += static_cast<double>(samples[i]) * samples[i];
    const double rms = count ? std::sqrt(sum / static_cast<double>(count)) : 0;
    return rms > 0 ? std::max(-127.0, 20 * std::log10(rms)) : -127.0;
}

} // namespace

// Each decoded frame's level goes to the room's speaker set on this thread,
// before the frame reaches any mixer: a participant who starts to speak has
// its own voice left out of its slot's mix from that very frame. The main
// loop would be too late: a mixer outputs a frame kMixerSlackMs after the
// jitter buffer let it go.
void PeerCore::watchLevels(GstPad* decoded) {
    gst_pad_add_probe(
        decoded, GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad* pad, GstPadProbeInfo* info, gpointer user) noexcept {
            // Thread: streaming (the participant's jitter buffer's).
            glib::guarded("level probe", [&] {
                auto* d = static_cast<LevelProbe*>(user);
                GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
                GstMapInfo map;
                if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) return;
                const double level = rmsDbfs(reinterpret_cast<const float*>(map.data), map.size / sizeof(float));
                gst_buffer_unmap(buffer, &map);
                const GstClockTime start = runningTime(pad, GST_BUFFER_PTS(buffer));
                GST_CAT_LOG(tessera_media_debug, "speaker level %s %.1f", d->id.c_str(), level);
                d->room->onAudioLevel(d->id, level, start);
            });
            return GST_PAD_PROBE_OK;
        },
        new LevelProbe{&m_room, m_id}, [](gpointer d) noexcept { delete static_cast<LevelProbe*>(d); });
}

DecodeGate::DecodeGate(GstPad* decoderSink) : m_sink(PadRef::borrow(decoderSink)) {
    using Flag = std::shared_ptr<std::atomic<bool>>;
    gst_pad_add_probe(
        decoderSink, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
        [](GstPad*, GstPadProbeInfo*, gpointer d) noexcept {
            // Thread: streaming (the participant's jitter buffer's).
            return (*static_cast<Flag*>(d))->load() ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
        },
        new Flag(m_open), [](gpointer d) noexcept { delete static_cast<Flag*>(d); });
}

void DecodeGate::setOpen(bool open) {
    if (m_open->exchange(open) == open || !open) return;
    // Upstream from the decoder's sink: webrtcbin's RTP session turns it into
    // a PLI (or FIR) to the sender, as it does a depayloader's own request.
    gst_pad_push_event(m_sink.get(), gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
}

// Thread: streaming, under m_mutex.
void PeerCore::linkVideoInput(GstPad* pad, bool screenShare, const std::string& codec) {
    GST_CAT_INFO(tessera_media_debug, "peer %s: %s video from %s", m_id.c_str(), codec.c_str(),
                 screenShare ? "its screen share" : "its camera");
    GstBin* bin = GST_BIN(m_bin.get());
    ElementRef decode = m_parts.fragments->makeBin("decode-" + codec);
    // The room sizes the label to the tile and turns it on and off with `labels`.
    NameLabel nameLabel(m_options.name + (screenShare ? " (screen)" : ""), m_parts.config->video.tileHeight);
    GstElement* label = nameLabel.element();
    GstElement* queue = leakyQueue(3);
    gst_bin_add_many(bin, decode.get(), label, queue, nullptr);
    gst_element_link_many(decode.get(), label, queue, nullptr);
    GstPad* mixerPad = gst_element_request_pad_simple(m_parts.videoMixer, "sink_%u");
    // Hidden until the main thread places it in the layout.
    g_object_set(mixerPad, "alpha", 0.0, nullptr);
    GstPad* out = gst_element_get_static_pad(queue, "src");
    GstPad* exit = ghostPad(m_bin.get(), out);
    gst_object_unref(out);
    gst_pad_link(exit, mixerPad);
    m_mixerPads.push_back(PadRef::borrow(mixerPad));
    gst_element_sync_state_with_parent(queue);
    gst_element_sync_state_with_parent(label);
    gst_element_sync_state_with_parent(decode.get());
    auto gate = std::make_shared<DecodeGate>(linkDecoder(pad, decode.get()).get());

    ElementRef scale = requireByName(GST_BIN(decode.get()), "scale");
    if (!screenShare) m_cameraScale = scale;
    VideoSource source{m_id + (screenShare ? ":screen" : ":camera"),
                       m_id,
                       m_options.name,
                       screenShare,
                       m_order,
                       PadRef::adopt(mixerPad),
                       std::move(nameLabel),
                       TileScaler(scale.get(), requireByName(GST_BIN(decode.get()), "tile").get())};
    source.gate = std::move(gate);
    post(weak_from_this(), [source = std::move(source)](PeerCore& core) mutable {
        if (core.m_bin) core.m_room.addSource(std::move(source));
    });
}

} // namespace tessera::media
