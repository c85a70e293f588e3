// PeerCore's negotiation: the client's offer, planned by protocol::planOffer,
// becomes webrtcbin transceivers; then the answer, sent once applied. (The
// send branches wait for the connection: PeerCore::onConnectionState.)
#include <algorithm>
#include <cstring>
#include <string>

#include <gst/sdp/sdp.h>

#include "peer.h"
#include "peer_detail.h"
#include "tessera/protocol/error.h"

#define GST_CAT_DEFAULT tessera_media_debug

namespace tessera::media {
using namespace peer_detail;

namespace {

GstWebRTCRTPTransceiverDirection toGst(protocol::MediaDirection d) {
    switch (d) {
    case protocol::MediaDirection::SendRecv: return GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDRECV;
    case protocol::MediaDirection::SendOnly: return GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY;
    case protocol::MediaDirection::RecvOnly: return GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY;
    case protocol::MediaDirection::Inactive: break;
    }
    return GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_INACTIVE;
}

// A transceiver's codec preferences for one planned m-line. webrtcbin
// answers with their intersection with the offer's caps, field by field: an
// H.264 line must carry the offer's own profile-level-id text (42e01f and
// 42c01f are the same profile, but different strings).
GstCaps* codecCaps(const protocol::PlannedLine& line) {
    const int pt = line.pt;
    GstCaps* caps = nullptr;
    if (line.media == "audio") {
        caps = gst_caps_new_simple("application/x-rtp", "media", G_TYPE_STRING, "audio", "encoding-name", G_TYPE_STRING,
                                   "OPUS", "clock-rate", G_TYPE_INT, 48000, "payload", G_TYPE_INT, pt, nullptr);
    } else {
        const GCharPtr encoding(g_ascii_strup(line.codec.c_str(), -1));
        caps = gst_caps_new_simple("application/x-rtp", "media", G_TYPE_STRING, "video", "encoding-name", G_TYPE_STRING,
                                   encoding.get(), "clock-rate", G_TYPE_INT, 90000, "payload", G_TYPE_INT, pt,
                                   "rtcp-fb-nack-pli", G_TYPE_BOOLEAN, TRUE, "rtcp-fb-ccm-fir", G_TYPE_BOOLEAN, TRUE,
                                   "rtcp-fb-nack", G_TYPE_BOOLEAN, TRUE, nullptr);
        if (line.codec == "h264")
            gst_caps_set_simple(caps, "packetization-mode", G_TYPE_STRING, "1", "profile-level-id", G_TYPE_STRING,
                                line.profileLevelId.c_str(), nullptr);
    }
    // The 1.22 answer carries the header extensions named here, no others:
    // transport-cc with the offer's id, and the rtcp-fb that tells a browser
    // to send feedback on it. On audio too: a receiver on the audio-only tier
    // is sent no video, and its link is then judged by its audio's feedback.
    if (line.transportCcId > 0) {
        const std::string field = "extmap-" + std::to_string(line.transportCcId);
        const std::string uri(protocol::kTransportCcUri);
        gst_caps_set_simple(caps, field.c_str(), G_TYPE_STRING, uri.c_str(), "rtcp-fb-transport-cc", G_TYPE_BOOLEAN,
                            TRUE, nullptr);
    }
    return caps;
}

// The offer's ICE ufrag and pwd: its first m-line's, else the session's
// (with max-bundle every m-line has the same).
std::pair<std::string, std::string> iceCredentials(const GstSDPMessage* msg) {
    auto value = [&](const char* key) {
        const char* v = gst_sdp_message_medias_len(msg) > 0
                            ? gst_sdp_media_get_attribute_val(gst_sdp_message_get_media(msg, 0), key)
                            : nullptr;
        if (!v) v = gst_sdp_message_get_attribute_val(msg, key);
        return std::string(v ? v : "");
    };
    return {value("ice-ufrag"), value("ice-pwd")};
}

// Why a webrtcbin promise failed (`otherwise` when its reply does not say), or
// empty when it did not.
std::string promiseError(GstPromise* promise, const char* otherwise) {
    const GstStructure* reply = gst_promise_get_reply(promise);
    if (!reply || !gst_structure_has_field(reply, "error")) return {};
    GError* e = nullptr;
    gst_structure_get(reply, "error", G_TYPE_ERROR, &e, nullptr);
    GErrorPtr owned(e);
    return e ? e->message : otherwise;
}

} // namespace

void PeerCore::handleOffer(const std::string& sdp) {
    if (m_negotiating) {
        // Answer the newest offer once the current one is done.
        m_queuedOffer = sdp;
        return;
    }
    applyOffer(sdp);
}

namespace {

// Opus's sprop-* fmtp parameters (RFC 7587) only describe what the client
// sends, which the server's decoder takes as it comes. webrtcbin 1.22 still
// intersects them with the caps of what the server sends on the m-line: in a
// renegotiation, a GStreamer client's sprop-stereo=0 against the room mix's
// sprop-stereo=1 rejected the audio m-line, and the answer could not be
// applied (a webrtcbin client starting a screen share was failed). Browsers
// send none.
void dropOpusSenderHints(GstSDPMessage* sdp) {
    for (guint m = 0; m < gst_sdp_message_medias_len(sdp); ++m) {
        auto* media = const_cast<GstSDPMedia*>(gst_sdp_message_get_media(sdp, m));
        if (g_strcmp0(gst_sdp_media_get_media(media), "audio") != 0) continue;
        for (guint a = 0; a < gst_sdp_media_attributes_len(media); ++a) {
            const GstSDPAttribute* attr = gst_sdp_media_get_attribute(media, a);
            if (g_strcmp0(attr->key, "fmtp") != 0 || !attr->value || !std::strstr(attr->value, "sprop-")) continue;
            // "PT p1=v1;p2=v2": the parameters after the first space, ';'-separated.
            const std::string value(attr->value);
            const auto space = value.find(' ');
            if (space == std::string::npos) continue;
            std::string kept;
            std::size_t at = space + 1;
            while (at <= value.size()) {
                const auto end = std::min(value.find(';', at), value.size());
                const std::string param = value.substr(at, end - at);
                const auto first = param.find_first_not_of(' ');
                if (first != std::string::npos && param.compare(first, 6, "sprop-") != 0)
                    kept += (kept.empty() ? "" : ";") + param.substr(first);
                at = end + 1;
            }
            if (kept.empty()) {
                gst_sdp_media_remove_attribute(media, a--);
                continue;
            }
            GstSDPAttribute replaced;
            gst_sdp_attribute_set(&replaced, "fmtp", (value.substr(0, space) + " " + kept).c_str());
            gst_sdp_media_replace_attribute(media, a, &replaced);
        }
    }
}

} // namespace

void PeerCore::applyOffer(const std::string& sdp) {
    GST_CAT_DEBUG(tessera_media_debug, "peer %s: offer\n%s", m_id.c_str(), sdp.c_str());
    protocol::OfferPlan plan = protocol::planOffer(sdp, m_offer, m_parts.config->video.codecs);
    GstSDPMessage* raw = nullptr;
    gst_sdp_message_new_from_text(sdp.c_str(), &raw);
    std::unique_ptr<GstSDPMessage, decltype(&gst_sdp_message_free)> msg(raw, gst_sdp_message_free);
    if (!msg || gst_sdp_message_medias_len(msg.get()) != plan.state.mlines)
        throw Error(ErrorCode::BadRequest, "offer.sdp: not a well-formed SDP offer");
    dropOpusSenderHints(msg.get());

    // Planned: now change state. Transceivers are created in m-line order:
    // webrtcbin 1.22 gives each offer m-line the first unused transceiver
    // whose codec preferences intersect the offer. Where we send, the
    // transceiver comes from requesting a sink pad (the only way 1.22 ties a
    // pad to a transceiver before the answer), then gets its preferences.
    for (const auto& line : plan.added) {
        GstCaps* caps = line.pt < 0 ? nullptr : codecCaps(line);
        GstWebRTCRTPTransceiver* trans = nullptr;
        if (line.send) {
            GstPad* pad = gst_element_request_pad_simple(m_webrtc.get(), "sink_%u");
            g_object_get(pad, "transceiver", &trans, nullptr);
            g_object_set(trans, "direction", toGst(line.direction), "codec-preferences", caps, nullptr);
            (line.media == "audio" ? m_audioSink : m_videoSink) = PadRef::adopt(pad);
            (line.media == "audio" ? m_audioTransportCcId : m_videoTransportCcId) = line.transportCcId;
        } else {
            g_signal_emit_by_name(m_webrtc.get(), "add-transceiver", toGst(line.direction), caps, &trans);
        }
        if (caps) gst_caps_unref(caps);
        if (trans) {
            if (line.media == "video") g_object_set(trans, "do-nack", TRUE, nullptr);
            gst_object_unref(trans);
        }
    }
    {
        std::lock_guard lock(m_mutex); // onPadAdded reads the camera line's
        m_offer = plan.state;
    }
    m_mids = std::move(plan.mids);
    // Before any video pad of this peer links to the compositor: an
    // audio-only room runs neither it nor an encoder.
    if (m_offer.cameraMline >= 0 || m_offer.videoMline >= 0) m_room.startVideo();
    bool shareChanged;
    {
        std::lock_guard lock(m_mutex);
        shareChanged = plan.shares.empty() != m_shareMlines.empty();
        m_shareMlines = plan.shares;
        for (const auto& line : plan.added) {
            if (line.codec.empty()) continue;
            m_videoCodecs[static_cast<int>(line.index)] = line.codec;
            if (static_cast<int>(line.index) != plan.state.cameraMline) continue;
            // One negotiated codec carries both directions of the camera line.
            using protocol::MediaDirection;
            if (line.direction == MediaDirection::SendRecv || line.direction == MediaDirection::RecvOnly)
                m_stats.sendCodec = line.codec; // the client sends it, the server decodes it
            if (line.send) m_stats.receiveCodec = line.codec;
        }
    }
    if (shareChanged) m_room.setScreenShareActive(m_id, !plan.shares.empty());
    // Before the offer goes to webrtcbin, so that the candidates the client
    // sends after it meet the restarted checks.
    auto ice = iceCredentials(msg.get());
    if (!m_remoteIce.first.empty() && ice != m_remoteIce) restartIce(ice.first, ice.second);
    m_remoteIce = std::move(ice);

    GstWebRTCSessionDescription* offer = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, msg.release());
    m_negotiating = true;
    GstPromise* promise = newPromise(shared_from_this(), [](GstPromise* p, gpointer data) noexcept {
        // Thread: webrtcbin's.
        glib::guarded("set-remote-description reply", [&] {
            const std::string error = promiseError(p, "set-remote-description failed");
            post(weakOf(data), [error](PeerCore& core) {
                if (!core.m_bin) return;
                if (!error.empty())
                    core.fail("the offer was refused: " + error);
                else
                    core.onRemoteDescriptionSet();
            });
        });
    });
    g_signal_emit_by_name(m_webrtc.get(), "set-remote-description", offer, promise);
    gst_promise_unref(promise);
    gst_webrtc_session_description_free(offer);
}

void PeerCore::onRemoteDescriptionSet() {
    GstPromise* promise = newPromise(shared_from_this(), [](GstPromise* p, gpointer data) noexcept {
        // Thread: webrtcbin's.
        glib::guarded("create-answer reply", [&] {
            GstWebRTCSessionDescription* raw = nullptr;
            if (const GstStructure* reply = gst_promise_get_reply(p))
                gst_structure_get(reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &raw, nullptr);
            using Answer = std::unique_ptr<GstWebRTCSessionDescription, decltype(&gst_webrtc_session_description_free)>;
            auto answer = std::make_shared<Answer>(raw, gst_webrtc_session_description_free);
            post(weakOf(data), [answer](PeerCore& core) {
                if (core.m_bin && *answer)
                    core.onAnswerCreated(answer->get());
                else if (core.m_bin)
                    core.fail("webrtcbin could not create an answer");
            });
        });
    });
    g_signal_emit_by_name(m_webrtc.get(), "create-answer", nullptr, promise);
    gst_promise_unref(promise);
}

void PeerCore::onAnswerCreated(GstWebRTCSessionDescription* answer) {
    // The answer goes to the client only once webrtcbin has applied it: one
    // it cannot apply (1.22 refuses, e.g., to re-activate an inactive m-line)
    // would otherwise leave the client waiting for media that never comes.
    m_pendingAnswer.reset(gst_webrtc_session_description_copy(answer));
    GstPromise* promise = newPromise(shared_from_this(), [](GstPromise* p, gpointer data) noexcept {
        // Thread: webrtcbin's.
        glib::guarded("set-local-description reply", [&] {
            const std::string error = promiseError(p, "set-local-description failed");
            post(weakOf(data), [error](PeerCore& core) {
                if (!core.m_bin || !core.m_pendingAnswer) return;
                if (!error.empty())
                    core.fail("the server could not apply its answer to this offer: " + error);
                else
                    core.onLocalDescriptionSet();
            });
        });
    });
    g_signal_emit_by_name(m_webrtc.get(), "set-local-description", answer, promise);
    gst_promise_unref(promise);
}

void PeerCore::onLocalDescriptionSet() {
    const GstWebRTCSessionDescription* answer = m_pendingAnswer.get();
    GCharPtr text(gst_sdp_message_as_text(answer->sdp));
    GST_CAT_DEBUG(tessera_media_debug, "peer %s: answer\n%s", m_id.c_str(), text.get());
    // A client that never completes ICE would hold its place in the room:
    // it gets as long to connect after the answer as it had to offer.
    const guint limit = m_parts.config->limits.joinTimeoutSeconds;
    if (!m_connected && limit > 0) {
        // Thread: main.
        g_timeout_add_seconds_full(
            G_PRIORITY_DEFAULT, limit,
            [](gpointer data) noexcept -> gboolean {
                glib::guarded("connect timeout", [&] {
                    auto core = lockWeak(data);
                    if (core && core->m_bin && !core->m_connected)
                        core->fail("ICE did not connect within " +
                                   std::to_string(core->m_parts.config->limits.joinTimeoutSeconds) + " s");
                });
                return G_SOURCE_REMOVE;
            },
            new WeakCore(shared_from_this()), [](gpointer d) noexcept { delete static_cast<WeakCore*>(d); });
    }
    m_negotiating = false;
    // Browsers demultiplex a bundle by the SSRCs the answer announces, so
    // the payloaders must send with exactly those.
    auto announcedSsrc = [&](int mline) -> guint {
        if (mline < 0 || static_cast<guint>(mline) >= gst_sdp_message_medias_len(answer->sdp)) return 0;
        const char* ssrc = gst_sdp_media_get_attribute_val(gst_sdp_message_get_media(answer->sdp, mline), "ssrc");
        return ssrc ? static_cast<guint>(g_ascii_strtoull(ssrc, nullptr, 10)) : 0;
    };
    m_audioSsrc = announcedSsrc(m_offer.audioMline);
    m_videoSsrc = announcedSsrc(m_offer.videoMline);
    m_pendingAnswer.reset();
    m_listener.onAnswer(text.get());
    if (m_queuedOffer && m_bin) {
        std::string next = std::move(*m_queuedOffer);
        m_queuedOffer.reset();
        try {
            applyOffer(next);
        } catch (const Error& e) {
            fail(e.what());
        }
    }
}

} // namespace tessera::media
