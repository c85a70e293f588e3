#include "peer.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include <agent.h>
#include <gst/video/video.h>

#include "room_pipeline.h"
#include "tessera/protocol/error.h"

#define GST_CAT_DEFAULT tessera_media_debug

namespace tessera::media {
namespace {

constexpr guint kConnectTimeoutSeconds = 30;

using WeakCore = std::weak_ptr<PeerCore>;

// Signal user data: a heap weak pointer freed with the closure, so a handler
// running on a streaming thread during teardown never sees a dangling core.
gpointer newWeak(const std::shared_ptr<PeerCore>& core) { return new WeakCore(core); }
void freeWeak(gpointer data, GClosure*) noexcept { delete static_cast<WeakCore*>(data); }
std::shared_ptr<PeerCore> lockWeak(gpointer data) { return static_cast<WeakCore*>(data)->lock(); }

GstPromise* newPromise(const std::shared_ptr<PeerCore>& core, void (*done)(GstPromise*, gpointer) noexcept) {
    return gst_promise_new_with_change_func(done, new WeakCore(core),
                                            [](gpointer d) noexcept { delete static_cast<WeakCore*>(d); });
}

std::string upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(g_ascii_toupper(c)); });
    return s;
}

// The payload type in `media` whose rtpmap names `encoding` (e.g. "OPUS",
// "VP8"); for H.264 only packetization-mode=1 constrained baseline qualifies.
int findPayload(const GstSDPMedia* media, const std::string& encoding) {
    for (guint i = 0; i < gst_sdp_media_formats_len(media); ++i) {
        int pt = std::atoi(gst_sdp_media_get_format(media, i));
        GstCaps* caps = gst_sdp_media_get_caps_from_media(media, pt);
        if (!caps) continue;
        const GstStructure* s = gst_caps_get_structure(caps, 0);
        const char* name = gst_structure_get_string(s, "encoding-name");
        bool match = name && upper(name) == encoding;
        if (match && encoding == "H264") {
            const char* mode = gst_structure_get_string(s, "packetization-mode");
            const char* profile = gst_structure_get_string(s, "profile-level-id");
            match = mode && std::strcmp(mode, "1") == 0 && profile &&
                    (g_str_has_prefix(profile, "42e0") || g_str_has_prefix(profile, "4200"));
        }
        gst_caps_unref(caps);
        if (match) return pt;
    }
    return -1;
}

enum class Dir { SendRecv, SendOnly, RecvOnly, Inactive };

Dir offerDirection(const GstSDPMedia* media) {
    // Port 0 rejects an m-line, except with bundle-only (max-bundle offerers
    // such as webrtcbin itself send that for every m-line but the first).
    const bool rejected = gst_sdp_media_get_port(media) == 0 && !gst_sdp_media_get_attribute_val(media, "bundle-only");
    if (rejected || gst_sdp_media_get_attribute_val(media, "inactive")) return Dir::Inactive;
    if (gst_sdp_media_get_attribute_val(media, "sendonly")) return Dir::SendOnly;
    if (gst_sdp_media_get_attribute_val(media, "recvonly")) return Dir::RecvOnly;
    return Dir::SendRecv;
}

bool clientSends(Dir d) { return d == Dir::SendRecv || d == Dir::SendOnly; }
bool clientReceives(Dir d) { return d == Dir::SendRecv || d == Dir::RecvOnly; }

// Our direction answering the client's.
GstWebRTCRTPTransceiverDirection answerDirection(Dir d, bool weSend) {
    bool recv = clientSends(d);
    bool send = weSend && clientReceives(d);
    if (send && recv) return GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDRECV;
    if (send) return GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY;
    if (recv) return GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY;
    return GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_INACTIVE;
}

GstCaps* codecCaps(const std::string& media, const std::string& encoding, int pt) {
    if (media == "audio")
        return gst_caps_new_simple("application/x-rtp", "media", G_TYPE_STRING, "audio", "encoding-name", G_TYPE_STRING,
                                   "OPUS", "clock-rate", G_TYPE_INT, 48000, "payload", G_TYPE_INT, pt, nullptr);
    GstCaps* caps = gst_caps_new_simple("application/x-rtp", "media", G_TYPE_STRING, "video", "encoding-name",
                                        G_TYPE_STRING, encoding.c_str(), "clock-rate", G_TYPE_INT, 90000, "payload",
                                        G_TYPE_INT, pt, "rtcp-fb-nack-pli", G_TYPE_BOOLEAN, TRUE, "rtcp-fb-ccm-fir",
                                        G_TYPE_BOOLEAN, TRUE, "rtcp-fb-nack", G_TYPE_BOOLEAN, TRUE, nullptr);
    if (encoding == "H264")
        gst_caps_set_simple(caps, "packetization-mode", G_TYPE_STRING, "1", "profile-level-id", G_TYPE_STRING, "42e01f",
                            "level-asymmetry-allowed", G_TYPE_STRING, "1", nullptr);
    return caps;
}

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

// The name label on a tile (textoverlay): sized to the normalised tile, so a
// label looks the same whatever video.tileHeight is. At the default 360
// pixels: Sans Bold 18, readable in a 2x2 grid and still legible in a 5x5 one.
void styleLabel(GstElement* label, unsigned tileHeight) {
    const std::string font = "Sans Bold " + std::to_string(std::max(4u, tileHeight / 20));
    g_object_set(label, "font-desc", font.c_str(), "shaded-background", TRUE, "xpad",
                 static_cast<gint>(tileHeight / 30), "ypad", static_cast<gint>(tileHeight / 36), "wait-text", FALSE,
                 nullptr);
    gst_util_set_object_arg(G_OBJECT(label), "valignment", "bottom");
    gst_util_set_object_arg(G_OBJECT(label), "halignment", "left");
}

// Sets the latency properties every mixer shares: late joiners carry a
// jitter buffer the mixer must wait for (DESIGN.md, "facts that bite").
void configureMixer(GstElement* mixer, const Config& config) {
    g_object_set(mixer, "min-upstream-latency", static_cast<guint64>(config.jitterLatencyMs + 100) * GST_MSECOND,
                 "ignore-inactive-pads", TRUE, "start-time-selection", 1 /* first */, nullptr);
}

void removeGhost(const PadDetach& d) {
    if (d.ghostOwner && d.ghost) gst_element_remove_pad(d.ghostOwner.get(), d.ghost.get());
}

// Unlinks and releases a tee's request pad once it is idle, then calls `done`.
struct IdleDetach {
    PadDetach detach;
    std::function<void()> done;
};

GstPadProbeReturn detachIdle(GstPad* pad, GstPadProbeInfo*, gpointer data) noexcept {
    auto* d = static_cast<IdleDetach*>(data);
    if (GstPad* peer = gst_pad_get_peer(pad)) {
        gst_pad_unlink(pad, peer);
        gst_object_unref(peer);
    }
    gst_element_release_request_pad(d->detach.element.get(), pad);
    removeGhost(d->detach);
    post(std::move(d->done));
    return GST_PAD_PROBE_REMOVE;
}

} // namespace

PeerCore::PeerCore(RoomPipeline& room, std::string id, PeerOptions options, PeerListener& listener, unsigned order)
    : m_room(room), m_id(std::move(id)), m_options(std::move(options)), m_listener(listener), m_order(order) {}

PeerCore::~PeerCore() = default;

void PeerCore::start() {
    const Config& config = m_room.config();
    m_bin = ElementRef::sink(gst_bin_new(("peer-" + m_id).c_str()));
    m_webrtc = ElementRef::borrow(make("webrtcbin"));
    gst_bin_add(GST_BIN(m_bin.get()), m_webrtc.get());
    g_object_set(m_webrtc.get(), "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, "latency",
                 config.jitterLatencyMs, nullptr);
    for (const auto& server : config.iceServers) {
        for (const auto& url : server.urls) {
            if (g_str_has_prefix(url.c_str(), "stun:")) {
                g_object_set(m_webrtc.get(), "stun-server", ("stun://" + url.substr(5)).c_str(), nullptr);
            } else if (g_str_has_prefix(url.c_str(), "turn:") && !server.username.empty()) {
                auto hostPort =
                    url.substr(5, url.find('?') == std::string::npos ? std::string::npos : url.find('?') - 5);
                GCharPtr user(g_uri_escape_string(server.username.c_str(), nullptr, FALSE));
                GCharPtr pass(g_uri_escape_string(server.credential.c_str(), nullptr, FALSE));
                std::string uri = "turn://" + std::string(user.get()) + ":" + pass.get() + "@" + hostPort;
                gboolean ok = FALSE;
                g_signal_emit_by_name(m_webrtc.get(), "add-turn-server", uri.c_str(), &ok);
            }
        }
    }
    GstObject* ice = nullptr;
    g_object_get(m_webrtc.get(), "ice-agent", &ice, nullptr);
    if (ice) {
        if (config.maxRtpPort)
            g_object_set(ice, "min-rtp-port", config.minRtpPort, "max-rtp-port", config.maxRtpPort, nullptr);
        NiceAgent* agent = nullptr;
        g_object_get(ice, "agent", &agent, nullptr);
        for (const auto& address : config.iceAddresses) {
            NiceAddress a;
            nice_address_init(&a);
            if (agent && nice_address_set_from_string(&a, address.c_str())) nice_agent_add_local_address(agent, &a);
        }
        if (agent) g_object_unref(agent);
        gst_object_unref(ice);
    }

    auto self = shared_from_this();
    auto connect = [&](const char* signal, GCallback cb) {
        // Thunks get a heap weak pointer that lives as long as the handler.
        gulong id = g_signal_connect_data(m_webrtc.get(), signal, cb, newWeak(self), freeWeak, GConnectFlags(0));
        m_signals.emplace_back(m_webrtc.get(), id);
    };
    connect("pad-added", G_CALLBACK(padAddedThunk));
    connect("on-ice-candidate", G_CALLBACK(iceCandidateThunk));
    connect("notify::connection-state", G_CALLBACK(connectionStateThunk));
    // prepare-data-channel (1.22) comes before any message can arrive, but
    // before the client's DCEP open names the channel; on-data-channel then
    // tells its label.
    connect("prepare-data-channel", G_CALLBACK(prepareChannelThunk));
    connect("on-data-channel", G_CALLBACK(dataChannelThunk));

    gst_bin_add(m_room.pipeline(), m_bin.get());
    m_room.registerPeer(m_bin.get(), self);
    gst_element_sync_state_with_parent(m_bin.get());
}

void PeerCore::stop() {
    DetachPlan plan = m_room.removeAudio(m_id);
    {
        std::lock_guard lock(m_mutex);
        if (m_stopped) return;
        m_stopped = true;
        for (auto& pad : m_mixerPads)
            plan.mixers.push_back({ElementRef::adopt(gst_pad_get_parent_element(pad.get())), pad, {}, {}});
        m_mixerPads.clear();
        for (auto& [label, channel] : m_channels) {
            for (auto thunk :
                 {reinterpret_cast<gpointer>(messageStringThunk), reinterpret_cast<gpointer>(messageDataThunk)})
                g_signal_handlers_disconnect_matched(channel.get(), G_SIGNAL_MATCH_FUNC, 0, 0, nullptr, thunk, nullptr);
        }
        m_channels.clear();
    }
    m_signals.clear();
    m_room.removeSources(m_id);
    m_room.unregisterPeer(m_bin.get());
    if (m_videoTeePad) {
        plan.tees.push_back({ElementRef::borrow(m_room.tierTee(m_tier)), std::move(m_videoTeePad), {}, {}});
        m_room.removeReceiver(m_tier);
    }
    if (m_audioTeePad) plan.tees.push_back({ElementRef::borrow(m_room.audioTee()), std::move(m_audioTeePad), {}, {}});

    // The bin may go NULL only once no tee that stays pushes into it. That
    // runs on GStreamer's thread pool: webrtcbin takes a while to reach NULL,
    // and fifteen peers leaving at once held the main loop (every room's
    // signaling and the API) for seconds. The closure holds its own
    // references, so it completes even if the room pipeline is destroyed first.
    auto teardown = [pipeline = ElementRef::borrow(GST_ELEMENT(m_room.pipeline())), bin = m_bin,
                     mixers = std::move(plan.mixers)] {
        gst_element_set_locked_state(bin.get(), TRUE);
        gst_element_set_state(bin.get(), GST_STATE_NULL);
        for (const auto& m : mixers) {
            if (m.element) gst_element_release_request_pad(m.element.get(), m.pad.get());
            removeGhost(m);
        }
        gst_bin_remove(GST_BIN(pipeline.get()), bin.get());
        GST_CAT_DEBUG(tessera_media_debug, "peer bin %s removed", GST_OBJECT_NAME(bin.get()));
    };
    auto finish = std::make_shared<std::function<void()>>(
        [bin = m_bin, teardown = std::move(teardown)] { runAsync(bin.get(), teardown); });
    if (plan.tees.empty()) {
        (*finish)();
    } else {
        auto remaining = std::make_shared<std::atomic<int>>(static_cast<int>(plan.tees.size()));
        for (auto& tee : plan.tees) {
            GstPad* pad = tee.pad.get();
            auto* detach = new IdleDetach{std::move(tee), [remaining, finish] {
                                              if (--*remaining == 0) (*finish)();
                                          }};
            gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_IDLE, detachIdle, detach,
                              [](gpointer d) noexcept { delete static_cast<IdleDetach*>(d); });
        }
    }
    m_webrtc.reset();
    m_bin.reset();
}

void PeerCore::fail(const std::string& reason) {
    {
        std::lock_guard lock(m_mutex);
        if (m_stopped) return;
    }
    GST_CAT_WARNING(tessera_media_debug, "peer %s failed: %s", m_id.c_str(), reason.c_str());
    m_listener.onPeerFailed(reason);
}

void PeerCore::handleOffer(const std::string& sdp) {
    if (m_negotiating) {
        // Answer the newest offer once the current one is done.
        m_queuedOffer = sdp;
        return;
    }
    applyOffer(sdp);
}

void PeerCore::applyOffer(const std::string& sdp) {
    GST_CAT_DEBUG(tessera_media_debug, "peer %s: offer\n%s", m_id.c_str(), sdp.c_str());
    GstSDPMessage* raw = nullptr;
    gst_sdp_message_new_from_text(sdp.c_str(), &raw);
    std::unique_ptr<GstSDPMessage, decltype(&gst_sdp_message_free)> msg(raw, gst_sdp_message_free);
    const guint count = msg ? gst_sdp_message_medias_len(msg.get()) : 0;
    if (count == 0) throw Error(ErrorCode::BadRequest, "offer.sdp: not an SDP offer with media sections");
    if (count < m_mlines) throw Error(ErrorCode::BadRequest, "offer.sdp: a renegotiation may not remove m-lines");

    const std::string videoCodec = upper(m_room.config().video.codec);
    struct NewLine {
        guint index;
        std::string media;
        int pt;
        GstWebRTCRTPTransceiverDirection direction;
        bool send; // we send the room's mix on it
    };
    std::vector<NewLine> added;
    std::vector<std::string> mids;
    std::set<int> shares;
    int cameraMline = m_cameraMline, audioMline = m_audioMline, videoMline = m_videoMline;
    int audioPt = m_audioPt, videoPt = m_videoPt;
    for (guint i = 0; i < count; ++i) {
        const GstSDPMedia* media = gst_sdp_message_get_media(msg.get(), i);
        const char* mid = gst_sdp_media_get_attribute_val(media, "mid");
        mids.emplace_back(mid ? mid : "");
        const std::string kind = gst_sdp_media_get_media(media);
        const Dir dir = offerDirection(media);
        const bool isAudio = kind == "audio", isVideo = kind == "video";
        // The first video m-line is the camera; any other one the client
        // sends on is a screen share (PROTOCOL.md, Media).
        if (isVideo && cameraMline < 0) cameraMline = static_cast<int>(i);
        if (isVideo && static_cast<int>(i) != cameraMline && clientSends(dir)) shares.insert(static_cast<int>(i));
        if (i < m_mlines || (!isAudio && !isVideo)) continue;
        const int pt = findPayload(media, isAudio ? "OPUS" : videoCodec);
        if (pt < 0 && dir != Dir::Inactive)
            throw Error(ErrorCode::BadRequest, "offer.sdp: m-line " + std::to_string(i) + " (" + kind + ") offers no " +
                                                   (isAudio ? "Opus" : videoCodec) + "; this server mixes " +
                                                   (isAudio ? "Opus" : videoCodec));
        const bool send = clientReceives(dir) && pt >= 0 &&
                          ((isAudio && audioMline < 0) || (isVideo && static_cast<int>(i) == cameraMline));
        if (send && isAudio) {
            audioMline = static_cast<int>(i);
            audioPt = pt;
        } else if (send) {
            videoMline = static_cast<int>(i);
            videoPt = pt;
        }
        added.push_back({i, kind, pt, answerDirection(dir, send), send});
    }
    if (cameraMline < 0 && audioMline < 0 && added.empty() && m_mlines == 0)
        throw Error(ErrorCode::BadRequest, "offer.sdp: needs an audio or a video m-line");

    // Validated: now change state. Transceivers are created in m-line order:
    // webrtcbin 1.22 gives each offer m-line the first unused transceiver
    // whose codec preferences intersect the offer. Where we send, the
    // transceiver comes from requesting a sink pad (the only way 1.22 ties a
    // pad to a transceiver before the answer), then gets its preferences.
    for (const auto& line : added) {
        GstCaps* caps = line.pt < 0 ? nullptr : codecCaps(line.media, videoCodec, line.pt);
        GstWebRTCRTPTransceiver* trans = nullptr;
        if (line.send) {
            GstPad* pad = gst_element_request_pad_simple(m_webrtc.get(), "sink_%u");
            g_object_get(pad, "transceiver", &trans, nullptr);
            g_object_set(trans, "direction", line.direction, "codec-preferences", caps, nullptr);
            (line.media == "audio" ? m_audioSink : m_videoSink) = PadRef::adopt(pad);
        } else {
            g_signal_emit_by_name(m_webrtc.get(), "add-transceiver", line.direction, caps, &trans);
        }
        if (caps) gst_caps_unref(caps);
        if (trans) {
            if (line.media == "video") g_object_set(trans, "do-nack", TRUE, nullptr);
            gst_object_unref(trans);
        }
    }
    m_mlines = count;
    m_mids = std::move(mids);
    m_cameraMline = cameraMline;
    m_audioMline = audioMline;
    m_videoMline = videoMline;
    m_audioPt = audioPt;
    m_videoPt = videoPt;
    bool shareChanged;
    {
        std::lock_guard lock(m_mutex);
        shareChanged = shares.empty() != m_shareMlines.empty();
        m_shareMlines = shares;
    }
    if (shareChanged) m_room.setScreenShareActive(m_id, !shares.empty());

    GstWebRTCSessionDescription* offer = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, msg.release());
    m_negotiating = true;
    GstPromise* promise = newPromise(shared_from_this(), [](GstPromise* p, gpointer data) noexcept {
        // Thread: webrtcbin's.
        const GstStructure* reply = gst_promise_get_reply(p);
        std::string error;
        if (reply && gst_structure_has_field(reply, "error")) {
            GError* e = nullptr;
            gst_structure_get(reply, "error", G_TYPE_ERROR, &e, nullptr);
            error = e ? e->message : "set-remote-description failed";
            if (e) g_error_free(e);
        }
        post([w = *static_cast<WeakCore*>(data), error] {
            auto core = w.lock();
            if (!core || !core->m_bin) return;
            if (!error.empty())
                core->fail("the offer was refused: " + error);
            else
                core->onRemoteDescriptionSet();
        });
    });
    g_signal_emit_by_name(m_webrtc.get(), "set-remote-description", offer, promise);
    gst_promise_unref(promise);
    gst_webrtc_session_description_free(offer);
}

void PeerCore::onRemoteDescriptionSet() {
    GstPromise* promise = newPromise(shared_from_this(), [](GstPromise* p, gpointer data) noexcept {
        // Thread: webrtcbin's.
        GstWebRTCSessionDescription* answer = nullptr;
        if (const GstStructure* reply = gst_promise_get_reply(p))
            gst_structure_get(reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &answer, nullptr);
        post([w = *static_cast<WeakCore*>(data), answer] {
            auto core = w.lock();
            if (core && core->m_bin && answer)
                core->onAnswerCreated(answer);
            else if (core && core->m_bin)
                core->fail("webrtcbin could not create an answer");
            if (answer) gst_webrtc_session_description_free(answer);
        });
    });
    g_signal_emit_by_name(m_webrtc.get(), "create-answer", nullptr, promise);
    gst_promise_unref(promise);
}

void PeerCore::onAnswerCreated(GstWebRTCSessionDescription* answer) {
    g_signal_emit_by_name(m_webrtc.get(), "set-local-description", answer, nullptr);
    GCharPtr text(gst_sdp_message_as_text(answer->sdp));
    GST_CAT_DEBUG(tessera_media_debug, "peer %s: answer\n%s", m_id.c_str(), text.get());
    if (!m_connected) {
        g_timeout_add_seconds_full(
            G_PRIORITY_DEFAULT, kConnectTimeoutSeconds,
            [](gpointer data) noexcept -> gboolean {
                auto core = static_cast<WeakCore*>(data)->lock();
                if (core && core->m_bin && !core->m_connected)
                    core->fail("ICE did not connect within " + std::to_string(kConnectTimeoutSeconds) + " s");
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
    m_audioSsrc = announcedSsrc(m_audioMline);
    m_videoSsrc = announcedSsrc(m_videoMline);
    // Linked only now: webrtcbin 1.22 matches a transceiver against the caps
    // a linked pad already carries (e.g. sprop-stereo), which can differ from
    // the offer even where the codec is the same.
    if (!m_sending) buildSendBranches();
    m_listener.onAnswer(text.get());
    if (m_queuedOffer && m_bin) {
        std::string next = std::move(*m_queuedOffer);
        m_queuedOffer.reset();
        try {
            applyOffer(next);
        } catch (const Error& e) { fail(e.what()); }
    }
}

void PeerCore::buildSendBranches() {
    m_sending = true;
    GstBin* bin = GST_BIN(m_bin.get());
    const Config& config = m_room.config();
    std::vector<GstElement*> added;

    auto linkToWebrtc = [&](GstElement* last, GstPad* sink) {
        GstPad* src = gst_element_get_static_pad(last, "src");
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

    if (m_videoSink) {
        GstElement* queue = leakyQueue(60);
        ElementRef payBin = m_room.fragments().makeBin("pay-" + config.video.codec);
        GstElement* pay = payBin.get();
        gst_bin_add_many(bin, queue, pay, nullptr);
        gst_element_link(queue, pay);
        setPayload(pay, m_videoPt, m_videoSsrc);
        linkToWebrtc(pay, m_videoSink.get());
        added.insert(added.end(), {pay, queue});
        GstPad* qsink = gst_element_get_static_pad(queue, "sink");
        PadRef entry = PadRef::borrow(ghostPad(m_bin.get(), qsink, true));
        gst_object_unref(qsink);
        // The first tier fits the bandwidth the client declared (the
        // selector's first update); its loss reports move it later (updateTier).
        m_tiers.emplace(m_room.ladder());
        m_tiers->update({m_options.maxBitrate, std::nullopt, std::nullopt}, g_get_monotonic_time() / 1000);
        m_videoTeePad = takeTier(m_tiers->currentIndex());
        for (GstElement* e : added) gst_element_sync_state_with_parent(e);
        gst_pad_link(m_videoTeePad.get(), entry.get());
        m_videoEntry = entry;
        added.clear();
    }
    if (m_audioSink) {
        GstElement* queue = leakyQueue(50);
        GstElement* minus = make("audiomixer");
        configureMixer(minus, config);
        GstElement* caps = make("capsfilter");
        GstCaps* f32 = gst_caps_from_string("audio/x-raw,format=F32LE,rate=48000,channels=2,layout=interleaved");
        g_object_set(caps, "caps", f32, nullptr);
        gst_caps_unref(f32);
        ElementRef sendBin = m_room.fragments().makeBin("audio-send");
        GstElement* send = sendBin.get();
        gst_bin_add_many(bin, queue, minus, caps, send, nullptr);
        gst_element_link_many(queue, minus, caps, send, nullptr);
        setPayload(send, m_audioPt, m_audioSsrc);
        linkToWebrtc(send, m_audioSink.get());
        added.insert(added.end(), {send, caps, minus, queue});
        GstPad* qsink = gst_element_get_static_pad(queue, "sink");
        PadRef entry = PadRef::borrow(ghostPad(m_bin.get(), qsink, true));
        gst_object_unref(qsink);
        // The room's live silence keeps this mixer ticking while nobody else speaks.
        m_audioTeePad = PadRef::adopt(gst_element_request_pad_simple(m_room.audioTee(), "src_%u"));
        for (GstElement* e : added) gst_element_sync_state_with_parent(e);
        gst_pad_link(m_audioTeePad.get(), entry.get());
        m_room.addAudioOutput(m_id, minus);
    }
}

void PeerCore::addRemoteCandidate(const std::optional<protocol::IceCandidate>& candidate) {
    if (!m_webrtc || !candidate || candidate->candidate.empty())
        return; // end of candidates: libnice needs no signal for it
    if (candidate->candidate.find(".local ") != std::string::npos) {
        GST_CAT_INFO(tessera_media_debug,
                     "peer %s: ignoring mDNS candidate (start Chromium with "
                     "WebRtcHideLocalIpsWithMdns disabled)",
                     m_id.c_str());
        return;
    }
    guint mline = 0;
    if (candidate->sdpMLineIndex) {
        mline = *candidate->sdpMLineIndex;
    } else if (candidate->sdpMid) {
        auto it = std::find(m_mids.begin(), m_mids.end(), *candidate->sdpMid);
        if (it == m_mids.end())
            throw Error(ErrorCode::BadRequest, "candidate.sdpMid: no m-line has mid '" + *candidate->sdpMid + "'");
        mline = static_cast<guint>(it - m_mids.begin());
    }
    g_signal_emit_by_name(m_webrtc.get(), "add-ice-candidate", mline, candidate->candidate.c_str());
}

void PeerCore::onConnectionState(GstWebRTCPeerConnectionState state) {
    if (state == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED && !m_connected) {
        m_connected = true;
        GST_CAT_INFO(tessera_media_debug, "peer %s connected", m_id.c_str());
        // A joiner needs a key frame to start decoding the shared stream.
        m_room.requestKeyFrame(m_tier);
    } else if (state == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED) {
        fail("ICE/DTLS connection failed");
    }
}

void PeerCore::onPadAdded(GstPad* pad) {
    if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
    std::lock_guard lock(m_mutex);
    if (m_stopped) return;
    GstCaps* caps = gst_pad_get_current_caps(pad);
    if (!caps) caps = gst_pad_query_caps(pad, nullptr);
    const GstStructure* s = gst_caps_get_structure(caps, 0);
    const std::string media = gst_structure_get_string(s, "media") ? gst_structure_get_string(s, "media") : "";
    gst_caps_unref(caps);
    GstWebRTCRTPTransceiver* trans = nullptr;
    g_object_get(pad, "transceiver", &trans, nullptr);
    guint mline = G_MAXUINT;
    if (trans) {
        g_object_get(trans, "mlineindex", &mline, nullptr);
        gst_object_unref(trans);
    }
    try {
        if (media == "audio")
            linkAudioInput(pad);
        else if (media == "video")
            linkVideoInput(pad, m_shareMlines.count(static_cast<int>(mline)) > 0);
    } catch (const std::exception& e) {
        post([w = WeakCore(weak_from_this()), why = std::string(e.what())] {
            if (auto core = w.lock()) core->fail(why);
        });
    }
}

void PeerCore::linkAudioInput(GstPad* pad) {
    GstBin* bin = GST_BIN(m_bin.get());
    ElementRef decode = m_room.fragments().makeBin("decode-opus");
    GstElement* tee = make("tee");
    g_object_set(tee, "allow-not-linked", TRUE, nullptr);
    GstElement* toMix = make("queue");
    gst_bin_add_many(bin, decode.get(), tee, toMix, nullptr);
    gst_element_link_many(decode.get(), tee, toMix, nullptr);
    GstPad* mixerPad = gst_element_request_pad_simple(m_room.audioMixer(), "sink_%u");
    GstPad* out = gst_element_get_static_pad(toMix, "src");
    GstPad* exit = ghostPad(m_bin.get(), out);
    gst_object_unref(out);
    gst_pad_link(exit, mixerPad);
    m_mixerPads.push_back(PadRef::adopt(mixerPad));
    for (GstElement* e : {toMix, tee, decode.get()}) gst_element_sync_state_with_parent(e);
    m_room.addAudioInput(m_id, tee);
    GstPad* sink = gst_element_get_static_pad(decode.get(), "sink");
    gst_pad_link(pad, sink);
    gst_object_unref(sink);
}

void PeerCore::linkVideoInput(GstPad* pad, bool screenShare) {
    GstBin* bin = GST_BIN(m_bin.get());
    ElementRef decode = m_room.fragments().makeBin("decode-" + m_room.config().video.codec);
    // The name label is drawn here, on the normalised tile, so it moves and
    // scales with the tile on every layout change at no extra cost; the room
    // turns it on and off (`silent`) with the layout's `labels`.
    GstElement* label = make("textoverlay");
    const std::string text = m_options.name + (screenShare ? " (screen)" : "");
    g_object_set(label, "text", text.c_str(), "silent", TRUE, nullptr);
    styleLabel(label, m_room.config().video.tileHeight);
    GstElement* queue = leakyQueue(3);
    gst_bin_add_many(bin, decode.get(), label, queue, nullptr);
    gst_element_link_many(decode.get(), label, queue, nullptr);
    GstPad* mixerPad = gst_element_request_pad_simple(m_room.videoMixer(), "sink_%u");
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
    GstPad* sink = gst_element_get_static_pad(decode.get(), "sink");
    gst_pad_link(pad, sink);
    gst_object_unref(sink);

    VideoSource source{m_id + (screenShare ? ":screen" : ":camera"),
                       m_id,
                       m_options.name,
                       screenShare,
                       m_order,
                       PadRef::adopt(mixerPad),
                       ElementRef::borrow(label)};
    post([w = WeakCore(weak_from_this()), source = std::move(source)]() mutable {
        auto core = w.lock();
        if (core && core->m_bin) core->m_room.addSource(std::move(source));
    });
}

void PeerCore::requestStats() {
    if (!m_webrtc) return;
    GstPromise* promise = newPromise(shared_from_this(), [](GstPromise* p, gpointer data) noexcept {
        // Thread: webrtcbin's. Only our own members, under the mutex.
        auto core = static_cast<WeakCore*>(data)->lock();
        if (const GstStructure* reply = gst_promise_get_reply(p); core && reply) core->onStats(reply);
    });
    g_signal_emit_by_name(m_webrtc.get(), "get-stats", nullptr, promise);
    gst_promise_unref(promise);
}

void PeerCore::onStats(const GstStructure* reply) {
    std::uint64_t bytesIn = 0, bytesOut = 0, lost = 0;
    std::map<std::string, std::uint64_t> sentById;            // outbound-rtp id -> packets sent
    std::vector<std::pair<std::string, std::int64_t>> remote; // (its outbound id, packets the client lost)
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
            if (const char* id = gst_structure_get_string(s, "id")) sentById[id] = statsInt(s, "packets-sent");
        } else if (type == GST_WEBRTC_STATS_REMOTE_INBOUND_RTP) {
            // The client's receiver reports on what we send it. webrtcbin
            // 1.22 leaves fraction-lost at 0 and packets-lost at -1 until a
            // report arrives, so the fraction is worked out from the counts.
            gint64 remoteLost = -1;
            const char* local = gst_structure_get_string(s, "local-id");
            if (local && gst_structure_get_int64(s, "packets-lost", &remoteLost) && remoteLost >= 0)
                remote.emplace_back(local, remoteLost);
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
    // A report's loss counts once: only when the client's lost count grew
    // (stats repeat the latest receiver report until the next one), as lost
    // over sent since the previous such report.
    policy::TierInput input{m_options.maxBitrate, std::nullopt, std::nullopt};
    for (const auto& [id, remoteLost] : remote) {
        const std::uint64_t sent = sentById[id];
        LossCount& last = m_remoteLoss[id];
        const auto clientLost = static_cast<std::uint64_t>(remoteLost);
        if (clientLost > last.lost && sent > last.sent) {
            const double fraction = static_cast<double>(clientLost - last.lost) / static_cast<double>(sent - last.sent);
            input.lossFraction = std::max(input.lossFraction.value_or(0.0), std::min(1.0, fraction));
        }
        if (clientLost != last.lost || last.sent == 0) last = {clientLost, sent};
    }
    post([w = WeakCore(weak_from_this()), input] {
        if (auto core = w.lock()) core->updateTier(input);
    });
}

void PeerCore::updateTier(const policy::TierInput& input) {
    if (!m_tiers || !m_videoTeePad || m_switching) return;
    if (m_tiers->update(input, g_get_monotonic_time() / 1000) && m_tiers->currentIndex() != m_tier)
        switchTier(m_tiers->currentIndex());
}

PadRef PeerCore::takeTier(std::size_t tier) {
    m_room.addReceiver(tier);
    m_tier = tier;
    {
        std::lock_guard lock(m_mutex);
        m_stats.tier = m_room.tier(tier).name;
    }
    return PadRef::adopt(gst_element_request_pad_simple(m_room.tierTee(tier), "src_%u"));
}

namespace {

// Moves a receiver's entry pad from one tier tee to another once the old
// tee pad is idle; the receiver then skips frames until the new tier's key
// frame, so its decoder never sees a delta frame of a stream it has not begun.
struct TierSwitch {
    RoomPipeline* room; // alive while its streaming threads run this probe
    std::size_t next;
    ElementRef oldTee;
    PadRef entry, newPad;
    std::function<void()> done;
};

GstPadProbeReturn switchIdle(GstPad* oldPad, GstPadProbeInfo*, gpointer data) noexcept {
    auto* sw = static_cast<TierSwitch*>(data);
    gst_pad_unlink(oldPad, sw->entry.get());
    gst_element_release_request_pad(sw->oldTee.get(), oldPad);
    gst_pad_add_probe(
        sw->entry.get(), GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad*, GstPadProbeInfo* info, gpointer) noexcept {
            if (GST_BUFFER_FLAG_IS_SET(GST_PAD_PROBE_INFO_BUFFER(info), GST_BUFFER_FLAG_DELTA_UNIT))
                return GST_PAD_PROBE_DROP;
            return GST_PAD_PROBE_REMOVE;
        },
        nullptr, nullptr);
    gst_pad_link(sw->newPad.get(), sw->entry.get());
    sw->room->requestKeyFrame(sw->next);
    post(std::move(sw->done));
    return GST_PAD_PROBE_REMOVE;
}

} // namespace

void PeerCore::switchTier(std::size_t next) {
    GST_CAT_INFO(tessera_media_debug, "peer %s: tier %s -> %s", m_id.c_str(), m_room.tier(m_tier).name.c_str(),
                 m_room.tier(next).name.c_str());
    PadRef oldPad = std::move(m_videoTeePad);
    const std::size_t old = m_tier;
    m_videoTeePad = takeTier(next);
    m_room.removeReceiver(old);
    m_switching = true;
    auto* sw = new TierSwitch{&m_room,
                              next,
                              ElementRef::borrow(m_room.tierTee(old)),
                              m_videoEntry,
                              m_videoTeePad,
                              [w = WeakCore(weak_from_this())] {
                                  if (auto core = w.lock()) core->m_switching = false;
                              }};
    gst_pad_add_probe(oldPad.get(), GST_PAD_PROBE_TYPE_IDLE, switchIdle, sw,
                      [](gpointer d) noexcept { delete static_cast<TierSwitch*>(d); });
}

void PeerCore::sendData(const DataMessage& message) {
    Ref<GstWebRTCDataChannel> channel;
    {
        std::lock_guard lock(m_mutex);
        auto it = m_channels.find(message.label);
        if (it != m_channels.end()) channel = it->second;
    }
    if (!channel) {
        GST_CAT_INFO(tessera_media_debug, "peer %s has no '%s' channel; message dropped", m_id.c_str(),
                     message.label.c_str());
        return;
    }
    GError* raw = nullptr;
    gboolean ok;
    if (message.binary) {
        GBytes* bytes = g_bytes_new(message.data.data(), message.data.size());
        ok = gst_webrtc_data_channel_send_data_full(channel.get(), bytes, &raw);
        g_bytes_unref(bytes);
    } else {
        ok = gst_webrtc_data_channel_send_string_full(channel.get(), message.data.c_str(), &raw);
    }
    GErrorPtr err(raw);
    if (!ok)
        GST_CAT_INFO(tessera_media_debug, "peer %s: send on '%s' failed: %s", m_id.c_str(), message.label.c_str(),
                     err ? err->message : "?");
}

PeerStats PeerCore::stats() const {
    std::lock_guard lock(m_mutex);
    return m_stats;
}

// Thread: streaming.
void PeerCore::padAddedThunk(GstElement*, GstPad* pad, gpointer data) noexcept {
    try {
        if (auto core = lockWeak(data)) core->onPadAdded(pad);
    } catch (...) { GST_CAT_ERROR(tessera_media_debug, "pad-added handler threw"); }
}

// Thread: streaming.
void PeerCore::iceCandidateThunk(GstElement*, guint mline, gchar* candidate, gpointer data) noexcept {
    post([w = *static_cast<WeakCore*>(data), mline, c = std::string(candidate)] {
        auto core = w.lock();
        if (!core || !core->m_bin) return;
        protocol::IceCandidate cand{c, std::nullopt, mline};
        if (mline < core->m_mids.size() && !core->m_mids[mline].empty()) cand.sdpMid = core->m_mids[mline];
        core->m_listener.onLocalCandidate(cand);
    });
}

// Thread: streaming. The property is read on the main thread: reading
// webrtcbin properties takes its lock (STYLE.md, Threads).
void PeerCore::connectionStateThunk(GObject*, GParamSpec*, gpointer data) noexcept {
    post([w = *static_cast<WeakCore*>(data)] {
        auto core = w.lock();
        if (!core || !core->m_bin) return;
        GstWebRTCPeerConnectionState state;
        g_object_get(core->m_webrtc.get(), "connection-state", &state, nullptr);
        core->onConnectionState(state);
    });
}

// Thread: streaming.
void PeerCore::prepareChannelThunk(GstElement*, GstWebRTCDataChannel* channel, gboolean local, gpointer data) noexcept {
    auto core = lockWeak(data);
    if (!core || local) return;
    g_signal_connect_data(channel, "on-message-string", G_CALLBACK(messageStringThunk), newWeak(core), freeWeak,
                          GConnectFlags(0));
    g_signal_connect_data(channel, "on-message-data", G_CALLBACK(messageDataThunk), newWeak(core), freeWeak,
                          GConnectFlags(0));
}

// Thread: streaming.
void PeerCore::dataChannelThunk(GstElement*, GstWebRTCDataChannel* channel, gpointer data) noexcept {
    auto core = lockWeak(data);
    if (!core) return;
    gchar* label = nullptr;
    g_object_get(channel, "label", &label, nullptr);
    GCharPtr owned(label);
    std::lock_guard lock(core->m_mutex);
    if (!core->m_stopped) core->m_channels[label ? label : ""] = Ref<GstWebRTCDataChannel>::borrow(channel);
}

namespace {
void deliver(gpointer data, GstWebRTCDataChannel* channel, bool binary, std::string payload) {
    gchar* label = nullptr;
    g_object_get(channel, "label", &label, nullptr);
    DataMessage message{label ? label : "", binary, std::move(payload)};
    g_free(label);
    post([w = *static_cast<WeakCore*>(data), message = std::move(message)] {
        auto core = w.lock();
        if (core && core->bin()) core->listener().onDataMessage(message);
    });
}
} // namespace

// Thread: streaming (SCTP).
void PeerCore::messageStringThunk(GstWebRTCDataChannel* channel, gchar* text, gpointer data) noexcept {
    deliver(data, channel, false, text ? text : "");
}

// Thread: streaming (SCTP).
void PeerCore::messageDataThunk(GstWebRTCDataChannel* channel, GBytes* bytes, gpointer data) noexcept {
    gsize size = 0;
    const char* p = bytes ? static_cast<const char*>(g_bytes_get_data(bytes, &size)) : nullptr;
    deliver(data, channel, true, std::string(p ? p : "", size));
}

} // namespace tessera::media
