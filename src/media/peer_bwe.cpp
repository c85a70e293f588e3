// PeerCore's bandwidth estimate: transport-wide congestion control on the
// video and audio we send the client (audio too, so that a receiver on the
// audio-only tier, sent no video, still has feedback to climb back from). Its payloader stamps transport-wide sequence
// numbers, the client's feedback comes back to webrtcbin's RTP session, and
// every new feedback window (the session's `twcc-stats`) feeds
// policy::BandwidthEstimator, whose estimate picks the receiver's tier
// (peer_tiers.cpp). GStreamer 1.22 does all of the RTP side once the
// extension is on the payloader; nothing turns it on by itself.
#include <gst/rtp/rtp.h>

#include "peer.h"
#include "peer_detail.h"

#define GST_CAT_DEFAULT tessera_media_debug

namespace tessera::media {
using namespace peer_detail;

namespace {

// Feedback comes with every frame the client completes (~30/s); its windows
// overlap (about 300 ms each), so a tenth of a second between the ones we
// use loses nothing and keeps the main loop free.
constexpr std::int64_t kFeedbackEveryUs = 100'000;

// A numeric stats field whatever its GType (1.22 mixes guint, gint64 and gdouble).
double number(const GstStructure* s, const char* field) {
    const GValue* v = gst_structure_get_value(s, field);
    if (!v) return 0;
    GValue out = G_VALUE_INIT;
    g_value_init(&out, G_TYPE_DOUBLE);
    const double result = g_value_transform(v, &out) ? g_value_get_double(&out) : 0;
    g_value_unset(&out);
    return result;
}

} // namespace

void PeerCore::enableTransportCc(GstElement* payBin, int id) {
    if (id <= 0) return;
    auto pay = requireByName(GST_BIN(payBin), "pay");
    const std::string uri(protocol::kTransportCcUri);
    GstRTPHeaderExtension* ext = gst_rtp_header_extension_create_from_uri(uri.c_str());
    if (!ext) {
        GST_CAT_WARNING(tessera_media_debug, "peer %s: no transport-cc header extension (rtpmanager): no estimate",
                        m_id.c_str());
        return;
    }
    gst_rtp_header_extension_set_id(ext, static_cast<guint>(id));
    g_signal_emit_by_name(pay.get(), "add-extension", ext);
    gst_object_unref(ext);
    // One session numbers every packet that carries the extension (with
    // max-bundle, audio and video alike) and reads all the feedback: watch it once.
    if (m_followingFeedback) return;
    m_followingFeedback = true;

    // With max-bundle there is one RTP session, numbered after the bundle's
    // first m-line: the first that exists.
    auto rtpbin = ElementRef::adopt(gst_bin_get_by_name(GST_BIN(m_webrtc.get()), "rtpbin"));
    GstElement* session = nullptr;
    for (guint id = 0; rtpbin && !session && id < m_offer.mlines; ++id)
        g_signal_emit_by_name(rtpbin.get(), "get-session", id, &session);
    if (!session) {
        GST_CAT_WARNING(tessera_media_debug, "peer %s: no RTP session to read transport-cc feedback from",
                        m_id.c_str());
        return;
    }
    const gulong handler = g_signal_connect_data(session, "notify::twcc-stats", G_CALLBACK(twccStatsThunk),
                                                 newWeak(shared_from_this()), freeWeak, GConnectFlags(0));
    m_signals.emplace_back(session, handler);
    gst_object_unref(session);
}

// Thread: the RTP session's RTCP thread (the client's feedback just arrived).
void PeerCore::twccStatsThunk(GObject* session, GParamSpec*, gpointer data) noexcept {
    glib::guarded("twcc-stats", [&] {
        auto core = lockWeak(data);
        if (!core) return;
        const std::int64_t now = g_get_monotonic_time();
        std::int64_t last = core->m_lastFeedbackUs.load();
        if (now - last < kFeedbackEveryUs || !core->m_lastFeedbackUs.compare_exchange_strong(last, now)) return;
        // The session's own property (not webrtcbin's), read outside its
        // lock: the session notifies after storing the window.
        GstStructure* stats = nullptr;
        g_object_get(session, "twcc-stats", &stats, nullptr);
        if (!stats) return;
        policy::TransportFeedback feedback;
        feedback.sentBps = static_cast<std::int64_t>(number(stats, "bitrate-sent"));
        feedback.deliveredBps = static_cast<std::int64_t>(number(stats, "bitrate-recv"));
        feedback.lossFraction = number(stats, "packet-loss-pct") / 100.0;
        feedback.delayGradientUs = static_cast<std::int64_t>(number(stats, "avg-delta-of-delta") / 1000.0);
        gst_structure_free(stats);
        post(weakOf(data), [feedback](PeerCore& c) { c.onTransportFeedback(feedback); });
    });
}

void PeerCore::onTransportFeedback(policy::TransportFeedback feedback) {
    if (!m_bin) return;
    const std::int64_t nowMs = g_get_monotonic_time() / 1000;
    if (m_padding) {
        std::lock_guard lock(m_padding->mutex);
        feedback.queueGrowthUs = m_padding->queue.growthUs();
    }
    const bool used = m_bwe.onFeedback(feedback, nowMs);
    // The window's verdict, for a trial of the lowest tier: congested even
    // unconfirmed (a trial gives up at the first sign, before the queue it
    // builds delays the audio past the receiver's jitter buffer).
    using Signal = policy::BandwidthEstimator::Signal;
    std::optional<bool> congested;
    if (used && (m_bwe.lastSignal() == Signal::Congested || m_bwe.lastSignal() == Signal::Suspect)) congested = true;
    if (used && m_bwe.lastSignal() == Signal::Clean) congested = false;
    updateTier({m_options.maxBitrate, std::nullopt, std::nullopt, false, congested});
    // Every window the estimator read and what it made of it: the trace a
    // unit test can replay (tests/unit/test_bandwidth.cpp).
    static constexpr const char* kSignals[] = {"none", "clean", "hold", "suspect", "congested", "stale"};
    GST_CAT_DEBUG(tessera_media_debug,
                  "peer %s: twcc t=%" G_GINT64_FORMAT " sent=%" G_GINT64_FORMAT " recv=%" G_GINT64_FORMAT
                  " loss=%.3f dod=%" G_GINT64_FORMAT "us queue=%s -> %s estimate=%" G_GINT64_FORMAT " tier=%s%s",
                  m_id.c_str(), nowMs, feedback.sentBps, feedback.deliveredBps, feedback.lossFraction,
                  feedback.delayGradientUs,
                  feedback.queueGrowthUs ? (std::to_string(*feedback.queueGrowthUs) + "us").c_str() : "unknown",
                  used ? kSignals[static_cast<int>(m_bwe.lastSignal())] : "outlier", m_bwe.estimate(nowMs).value_or(-1),
                  m_tiers ? m_tiers->current().name.c_str() : "-", m_tiers && m_tiers->inTrial() ? " (trial)" : "");
}

} // namespace tessera::media
