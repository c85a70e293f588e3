// PeerCore's link probes (policy/probe.h): before a receiver steps up to a
// higher tier (from its start on the lowest, between video tiers, or from
// audio only to a trial of the lowest), its link is sent padding for a
// moment on top of what it gets, to the rate the tier needs, and the
// transport-cc feedback on the padding says whether the step is worth its
// key frame (policy/tiers.h, TierParams::probe).
//
// GStreamer 1.22 sends no padding of its own. Ours are RTP packets of the
// video stream (its SSRC, payload type and latest timestamp) with no
// payload, 255 bytes of RTP padding and the transport-cc header extension,
// which the RTP session numbers and remembers like any other packet.
// Receivers drop them before the decoder (libwebrtc keeps their sequence
// numbers for its jitter buffer; GStreamer's depayloaders skip empty
// packets). They take sequence numbers of the video stream, so the
// payloader's packets after them are renumbered past them (renumber).
//
// They are pushed from the audio's streaming thread, paced by its packets
// (every 20 ms), with no timestamp: webrtcbin's clocksync lets them through
// at once. They share webrtcbin's video pad with the frames, which wait for
// their time before the tier's tee (RoomPipeline::buildTier), so the pad's
// stream lock is held only while a frame is sent, and a cluster leaves at
// its rate to within the audio's 20 ms (the verdict's log line says how
// long it took; docs/architecture.md, "A probe before each trial").
#include <gst/rtp/rtp.h>

#include "peer.h"
#include "peer_detail.h"

#define GST_CAT_DEFAULT tessera_media_debug

namespace tessera::media {
using namespace peer_detail;

namespace {

constexpr guint8 kPaddingBytes = 255; // RTP padding's most
// How long after a receiver's key frame no probe goes out: a packet the
// probe's queue costs it in that time breaks its picture, and its requests
// for another key frame are taken as stale until 2 s after the first
// (kStaleRequestUs, peer_branches.cpp).
constexpr std::int64_t kKeyFrameDrainUs = 2 * G_USEC_PER_SEC;
// A padding packet's RTP size: header, the one-byte extension block with
// the transport-cc number, padding.
constexpr std::int64_t kPaddingPacketBytes = 12 + 8 + kPaddingBytes;

using SharedPadding = std::shared_ptr<VideoPadding>;

void freePadding(gpointer data) noexcept { delete static_cast<SharedPadding*>(data); }

// Thread: streaming (whichever pushes into webrtcbin's video sink pad,
// holding its stream lock), under p.mutex. The sequence number `buffer` must
// carry in the video stream, none when it keeps the payloader's: padding goes
// after the latest packet, and the payloader's packets shift past every
// padding packet sent so far. Notes what the padding copies from the stream.
std::optional<guint16> numberFor(VideoPadding& p, GstBuffer* buffer) {
    GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
    if (!gst_rtp_buffer_map(buffer, GST_MAP_READ, &rtp)) return std::nullopt;
    const bool padding = gst_rtp_buffer_get_payload_len(&rtp) == 0;
    if (!padding) {
        p.seen = true;
        p.ssrc = gst_rtp_buffer_get_ssrc(&rtp);
        p.pt = gst_rtp_buffer_get_payload_type(&rtp);
        p.rtpTime = gst_rtp_buffer_get_timestamp(&rtp);
    }
    const guint16 seq =
        padding ? static_cast<guint16>(p.lastSeq + 1) : static_cast<guint16>(gst_rtp_buffer_get_seq(&rtp) + p.shift);
    gst_rtp_buffer_unmap(&rtp);
    p.lastSeq = seq;
    if (padding) ++p.shift;
    if (!padding && p.shift == 0) return std::nullopt;
    return seq;
}

void setSeq(GstBuffer* writable, guint16 seq) {
    GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
    if (!gst_rtp_buffer_map(writable, GST_MAP_WRITE, &rtp)) return;
    gst_rtp_buffer_set_seq(&rtp, seq);
    gst_rtp_buffer_unmap(&rtp);
}

// Thread: streaming (the video payloader's, or the audio's pushing padding).
GstPadProbeReturn renumber(GstPad*, GstPadProbeInfo* info, gpointer data) noexcept {
    VideoPadding& p = **static_cast<SharedPadding*>(data);
    std::lock_guard lock(p.mutex);
    if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
        GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
        if (const auto seq = numberFor(p, buffer)) {
            buffer = gst_buffer_make_writable(buffer);
            setSeq(buffer, *seq);
            GST_PAD_PROBE_INFO_DATA(info) = buffer;
        }
    } else if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
        // Padding comes alone, so a list needs writing only once padding went before it.
        GstBufferList* list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
        if (p.shift != 0) {
            list = gst_buffer_list_make_writable(list);
            GST_PAD_PROBE_INFO_DATA(info) = list;
        }
        for (guint i = 0; i < gst_buffer_list_length(list); ++i) {
            GstBuffer* buffer = p.shift != 0 ? gst_buffer_list_get_writable(list, i) : gst_buffer_list_get(list, i);
            if (const auto seq = numberFor(p, buffer)) setSeq(buffer, *seq);
        }
    }
    return GST_PAD_PROBE_OK;
}

// Thread: streaming (the audio's), under p.mutex. One padding packet; its
// sequence number comes from renumber.
GstBuffer* paddingPacket(const VideoPadding& p) {
    GstBuffer* buffer = gst_rtp_buffer_new_allocate(0, kPaddingBytes, 0);
    GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
    gst_rtp_buffer_map(buffer, GST_MAP_WRITE, &rtp);
    gst_rtp_buffer_set_ssrc(&rtp, p.ssrc);
    gst_rtp_buffer_set_payload_type(&rtp, p.pt);
    gst_rtp_buffer_set_timestamp(&rtp, p.rtpTime);
    const guint8 unnumbered[2] = {0, 0}; // the RTP session writes the transport-wide number
    gst_rtp_buffer_add_extension_onebyte_header(&rtp, static_cast<guint8>(p.twccId), unnumbered, sizeof unnumbered);
    gst_rtp_buffer_unmap(&rtp);
    return buffer;
}

// Thread: streaming (the audio's, for each packet it sends the receiver).
// Sends the padding the cluster owes by now.
GstPadProbeReturn pace(GstPad*, GstPadProbeInfo*, gpointer data) noexcept {
    VideoPadding& p = **static_cast<SharedPadding*>(data);
    const std::int64_t now = g_get_monotonic_time();
    std::vector<GstBuffer*> due;
    {
        std::lock_guard lock(p.mutex);
        if (!p.seen || now < p.startUs || p.sentUs >= p.endUs) return GST_PAD_PROBE_OK;
        const std::int64_t until = std::min(now, p.endUs);
        while (p.bps * (until - p.startUs) / 8'000'000 - p.sentBytes >= kPaddingPacketBytes) {
            due.push_back(paddingPacket(p));
            p.sentBytes += kPaddingPacketBytes;
            ++p.packets;
        }
        p.sentUs = until;
    }
    if (due.empty()) return GST_PAD_PROBE_OK;
    // A marker bit has a GStreamer receiver send its feedback now, not with
    // its next regular RTCP (seconds away for one sent only audio).
    GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
    if (gst_rtp_buffer_map(due.back(), GST_MAP_WRITE, &rtp)) {
        gst_rtp_buffer_set_marker(&rtp, TRUE);
        gst_rtp_buffer_unmap(&rtp);
    }
    GstPad* video = static_cast<GstPad*>(g_weak_ref_get(&p.videoSrc));
    for (GstBuffer* buffer : due) {
        if (video)
            gst_pad_push(video, buffer); // a flow error is the video m-line's going away: nothing to do
        else
            gst_buffer_unref(buffer);
    }
    if (video) gst_object_unref(video);
    return GST_PAD_PROBE_OK;
}

// The feedback probe's user data.
struct FeedbackWatch {
    SharedPadding padding;
    WeakCore core;
};

// Thread: the RTP session's (the client's feedback just arrived). Adds the
// packets that arrived to the link's queue growth (peer_bwe.cpp reads it),
// passes the cluster's packets in an "RTPTWCCPackets" event to the core
// while it collects them, and stops the event here as stopTransportCcEvents
// does.
GstPadProbeReturn watchFeedback(GstPad*, GstPadProbeInfo* info, gpointer data) noexcept {
    GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
    if (!isTransportCcPackets(event)) return GST_PAD_PROBE_OK;
    glib::guarded("probe feedback", [&] {
        auto* watch = static_cast<FeedbackWatch*>(data);
        VideoPadding& p = *watch->padding;
        const GValue* value = gst_structure_get_value(gst_event_get_structure(event), "packets");
        G_GNUC_BEGIN_IGNORE_DEPRECATIONS // 1.22 lists them in a GValueArray
            if (!value || !G_VALUE_HOLDS(value, g_value_array_get_type())) return;
        const auto* array = static_cast<const GValueArray*>(g_value_get_boxed(value));
        G_GNUC_END_IGNORE_DEPRECATIONS
        struct Reported {
            policy::ProbePacket packet;
            int paddingPt = -1; // an empty packet's payload type (a cluster's are the video stream's)
        };
        std::vector<Reported> reported;
        reported.reserve(array ? array->n_values : 0);
        for (guint i = 0; array && i < array->n_values; ++i) {
            const GValue* item = &array->values[i];
            if (!GST_VALUE_HOLDS_STRUCTURE(item)) continue;
            const GstStructure* s = gst_value_get_structure(item);
            guint seq = 0, size = 1;
            guint64 local = GST_CLOCK_TIME_NONE, remote = GST_CLOCK_TIME_NONE;
            gboolean lost = TRUE;
            // The session's clock is the monotonic system clock, like g_get_monotonic_time.
            if (!gst_structure_get_uint64(s, "local-ts", &local) || !GST_CLOCK_TIME_IS_VALID(local) ||
                !gst_structure_get_uint(s, "seqnum", &seq))
                continue;
            gst_structure_get_uint64(s, "remote-ts", &remote);
            gst_structure_get_boolean(s, "lost", &lost);
            gst_structure_get_uint(s, "size", &size);
            const GValue* type = gst_structure_get_value(s, "payload-type");
            Reported r{{static_cast<std::uint16_t>(seq), static_cast<std::int64_t>(local / 1000), std::nullopt},
                       size == 0 && type && G_VALUE_HOLDS_UCHAR(type) ? g_value_get_uchar(type) : -1};
            if (!lost && GST_CLOCK_TIME_IS_VALID(remote)) r.packet.arrivedUs = static_cast<std::int64_t>(remote / 1000);
            reported.push_back(r);
        }
        std::vector<policy::ProbePacket> cluster;
        {
            std::lock_guard lock(p.mutex);
            for (const Reported& r : reported) {
                if (r.packet.arrivedUs) p.queue.add(r.packet.sentUs, *r.packet.arrivedUs);
                if (p.collecting && r.paddingPt == p.pt && r.packet.sentUs >= p.startUs) cluster.push_back(r.packet);
            }
        }
        if (!cluster.empty())
            post(watch->core, [cluster = std::move(cluster)](PeerCore& c) { c.onProbeFeedback(cluster); });
    });
    return GST_PAD_PROBE_DROP;
}

const char* verdictName(policy::ProbeVerdict verdict) {
    switch (verdict) {
    case policy::ProbeVerdict::Passed: return "passed";
    case policy::ProbeVerdict::Failed: return "failed";
    case policy::ProbeVerdict::Unknown: return "no verdict";
    case policy::ProbeVerdict::Pending: break;
    }
    return "pending";
}

} // namespace

VideoPadding::VideoPadding(int transportCcId, GstPad* video) : twccId(transportCcId) {
    g_weak_ref_init(&videoSrc, video);
}

VideoPadding::~VideoPadding() { g_weak_ref_clear(&videoSrc); }

void PeerCore::watchVideoSend(GstPad* videoSrc, GstPad* webrtcSink) {
    m_padding = std::make_shared<VideoPadding>(m_videoTransportCcId, videoSrc);
    // Numbered where the sink pad's stream lock orders them: padding goes
    // out from the audio's thread, the payloader's packets from the
    // encoder's, and numbered on the payloader's pad (before either thread
    // takes that lock) a padding packet could leave after the payloader's
    // next frame numbered behind it. A receiver then takes it for lost; a
    // GStreamer one, whose 200 ms jitter buffer the probe's queue had
    // nearly used up, gave it up, dropped every frame to the next key frame
    // and asked for one (0.7 s without a picture after a failed probe in
    // the [bottleneck] test).
    gst_pad_add_probe(webrtcSink,
                      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                      renumber, new SharedPadding(m_padding), freePadding);
    gst_pad_add_probe(videoSrc, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, watchFeedback,
                      new FeedbackWatch{m_padding, weak_from_this()},
                      [](gpointer d) noexcept { delete static_cast<FeedbackWatch*>(d); });
}

void PeerCore::paceProbes(GstPad* audioSrc) {
    gst_pad_add_probe(audioSrc,
                      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST), pace,
                      new SharedPadding(m_padding), freePadding);
}

void PeerCore::driveProbe(std::int64_t nowMs) {
    if (!m_padding || !m_tiers) return;
    if (m_probe) {
        std::int64_t endUs = 0;
        {
            std::lock_guard lock(m_padding->mutex);
            endUs = m_padding->endUs;
        }
        if (nowMs - endUs / 1000 >= m_probe->params().verdictMs) judgeProbe(true);
        return;
    }
    if (!m_tiers->probeWanted()) return;
    // Not right after the receiver's key frame (its first, or its tier's
    // after a switch): kKeyFrameDrainUs.
    if (m_tier < m_parts.ladder.size() && m_entryWatch) {
        const std::int64_t started = m_entryWatch->startedUs.load();
        if (started < 0 || nowMs * 1000 - started < kKeyFrameDrainUs) return;
    }
    const std::int64_t bps = m_tiers->probeBps();
    const std::int64_t clusterMs = policy::ProbeParams{}.clusterMsAt(bps);
    {
        std::lock_guard lock(m_padding->mutex);
        // Padding copies the video stream, and a cluster paced from before
        // its first packet would go out in one burst: wait for it.
        if (!m_padding->seen && m_tier < m_parts.ladder.size()) return;
        m_padding->startUs = nowMs * 1000;
        m_padding->sentUs = m_padding->startUs;
        m_padding->endUs = (nowMs + clusterMs) * 1000;
        m_padding->bps = bps;
        m_padding->sentBytes = 0;
        m_padding->packets = 0;
        m_padding->collecting = true;
    }
    m_probe.emplace();
    m_probeFor = m_parts.ladder.at(m_tiers->probeTier()).name;
    GST_CAT_DEBUG(tessera_media_debug, "peer %s: probing its link for tier %s: %" G_GINT64_FORMAT " kbit/s of padding",
                  m_id.c_str(), m_probeFor.c_str(), bps / 1000);
}

void PeerCore::onProbeFeedback(const std::vector<policy::ProbePacket>& packets) {
    if (!m_probe) return;
    for (const auto& packet : packets) m_probe->add(packet);
    judgeProbe(false);
}

void PeerCore::judgeProbe(bool final) {
    std::size_t sent = 0;
    std::int64_t bps = 0;
    bool paced = false; // the last of the cluster went out (with the first audio packet after its end)
    {
        std::lock_guard lock(m_padding->mutex);
        sent = m_padding->packets;
        bps = m_padding->bps;
        paced = m_padding->sentUs >= m_padding->endUs;
    }
    if (!paced && !final) return;
    const policy::ProbeVerdict verdict = m_probe->verdict(sent, final);
    if (verdict == policy::ProbeVerdict::Pending) return;
    {
        std::lock_guard lock(m_padding->mutex);
        m_padding->collecting = false;
    }
    const auto growth = m_probe->growthUs();
    GST_CAT_INFO(tessera_media_debug,
                 "peer %s: probe for tier %s with %" G_GINT64_FORMAT
                 " kbit/s of padding %s: %zu packets sent over %" G_GINT64_FORMAT " ms, %zu reported, "
                 "%zu lost, the last %s ms later than the first",
                 m_id.c_str(), m_probeFor.c_str(), bps / 1000, verdictName(verdict), sent, m_probe->sendSpanUs() / 1000,
                 m_probe->reported(), m_probe->lost(), growth ? std::to_string(*growth / 1000).c_str() : "(unknown)");
    m_probe.reset();
    m_tiers->probeResult(verdict);
    updateTier({m_options.maxBitrate, std::nullopt, std::nullopt});
}

} // namespace tessera::media
