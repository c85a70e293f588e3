// PeerCore's statistics: webrtcbin's get-stats reply becomes bit rates, the
// packets it lost, and the loss the client reports on what we send, which
// feeds the tier choice (peer_tiers.cpp).
#include <algorithm>

#include <gst/video/video.h>

#include "peer.h"
#include "peer_detail.h"

#define GST_CAT_DEFAULT tessera_media_debug

namespace tessera::media {
using namespace peer_detail;

namespace {

// Reads an integer stats field whatever its GType.
std::uint64_t statsInt(const GstStructure* s, const char* field) {
    const GValue* v = gst_structure_get_value(s, field);
    if (!v) return 0;
    GValue out = G_VALUE_INIT;
    g_value_init(&out, G_TYPE_INT64);
    std::uint64_t result = 0;
    if (g_value_transform(v, &out)) result = static_cast<std::uint64_t>(std::max<gint64>(0, g_value_get_int64(&out)));
    g_value_unset(&out);
    return result;
}

} // namespace

void PeerCore::requestStats() {
    if (!m_webrtc) return;
    GstPromise* promise = newPromise(shared_from_this(), [](GstPromise* p, gpointer data) noexcept {
        // Thread: webrtcbin's.
        glib::guarded("get-stats reply", [&] {
            auto core = lockWeak(data);
            if (const GstStructure* reply = gst_promise_get_reply(p); core && reply) core->onStats(reply);
        });
    });
    g_signal_emit_by_name(m_webrtc.get(), "get-stats", nullptr, promise);
    gst_promise_unref(promise);
}

void PeerCore::onStats(const GstStructure* reply) {
    std::uint64_t bytesIn = 0, bytesOut = 0, lost = 0;
    struct Report {
        std::string stream; // the outbound-rtp id it is about
        gint lost = 0;
        guint highestSeq = 0;
    };
    std::vector<Report> reports;
    const int fields = gst_structure_n_fields(reply);
    for (int i = 0; i < fields; ++i) {
        const GValue* v = gst_structure_get_value(reply, gst_structure_nth_field_name(reply, i));
        if (!GST_VALUE_HOLDS_STRUCTURE(v)) continue;
        const GstStructure* s = gst_value_get_structure(v);
        GstWebRTCStatsType type;
        if (!gst_structure_get(s, "type", GST_TYPE_WEBRTC_STATS_TYPE, &type, nullptr)) continue;
        if (type == GST_WEBRTC_STATS_INBOUND_RTP) {
            bytesIn += statsInt(s, "bytes-received");
            lost += statsInt(s, "packets-lost");
        } else if (type == GST_WEBRTC_STATS_OUTBOUND_RTP) {
            bytesOut += statsInt(s, "bytes-sent");
        } else if (type == GST_WEBRTC_STATS_REMOTE_INBOUND_RTP) {
            // The client's receiver reports on what we send it, as the RTP
            // session read the latest: policy::ReportedLoss.
            const char* local = gst_structure_get_string(s, "local-id");
            GstStructure* source = nullptr;
            gboolean haveReport = FALSE;
            Report report;
            if (local && gst_structure_get(s, "gst-rtpsource-stats", GST_TYPE_STRUCTURE, &source, nullptr)) {
                if (gst_structure_get_boolean(source, "have-rb", &haveReport) && haveReport &&
                    gst_structure_get_int(source, "rb-packetslost", &report.lost) &&
                    gst_structure_get_uint(source, "rb-exthighestseq", &report.highestSeq)) {
                    report.stream = local;
                    reports.push_back(report);
                }
                gst_structure_free(source);
            }
        }
    }
    const std::int64_t now = g_get_monotonic_time();
    std::lock_guard lock(m_mutex);
    if (m_lastStatsTime > 0 && now > m_lastStatsTime) {
        const double seconds = static_cast<double>(now - m_lastStatsTime) / G_USEC_PER_SEC;
        auto rate = [seconds](std::uint64_t now, std::uint64_t before) {
            return now >= before ? static_cast<std::uint64_t>(static_cast<double>(now - before) * 8 / seconds) : 0;
        };
        m_stats.bitrateIn = rate(bytesIn, m_lastBytesIn);
        m_stats.bitrateOut = rate(bytesOut, m_lastBytesOut);
    }
    m_stats.packetsLost = lost;
    m_lastBytesIn = bytesIn;
    m_lastBytesOut = bytesOut;
    m_lastStatsTime = now;
    policy::TierInput input{m_options.maxBitrate, std::nullopt, std::nullopt};
    for (const Report& r : reports) {
        if (auto fraction = m_remoteLoss[r.stream].update(r.lost, r.highestSeq))
            input.lossFraction = std::max(input.lossFraction.value_or(0.0), *fraction);
    }
    post(weak_from_this(), [input](PeerCore& core) { core.updateTier(input); });
}

PeerStats PeerCore::stats() const {
    PeerStats out;
    ElementRef scale;
    {
        std::lock_guard lock(m_mutex);
        out = m_stats;
        scale = m_cameraScale;
        for (const auto& [label, channel] : m_channels) out.dataChannels.push_back(label);
    }
    // What reaches the camera's scaler is what its decoder puts out (only a
    // format conversion between them). Read outside m_mutex: a pad's caps
    // take its own lock, which streaming threads hold too.
    if (scale) {
        GstPad* in = gst_element_get_static_pad(scale.get(), "sink");
        if (GstCaps* caps = gst_pad_get_current_caps(in)) {
            GstVideoInfo info;
            if (gst_video_info_from_caps(&info, caps))
                out.decodedSize = protocol::VideoSize{static_cast<unsigned>(GST_VIDEO_INFO_WIDTH(&info)),
                                                      static_cast<unsigned>(GST_VIDEO_INFO_HEIGHT(&info))};
            gst_caps_unref(caps);
        }
        gst_object_unref(in);
    }
    return out;
}

} // namespace tessera::media
