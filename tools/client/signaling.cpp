// tessera-client: signaling. The WebSocket; join, offer, answer and
// candidates (docs/protocol.md); the peer connection's state.
#include <algorithm>
#include <optional>
#include <variant>

#include <gst/sdp/sdp.h>
#include <nice/agent.h>

#include "client_impl.h"
#include "tessera/protocol/error.h"

namespace tessera::client {
namespace {

// "stun:host:port" -> "stun://host:port"; "turn:h:p?transport=udp" with
// credentials -> "turn://user:pass@h:p?transport=udp" (webrtcbin's form).
std::string toGstIceUrl(const std::string& url, const std::string& user, const std::string& credential) {
    const auto colon = url.find(':');
    if (colon == std::string::npos) return {};
    // Schemes are case-insensitive (RFC 3986 3.1); GStreamer's are lower-case.
    const GCharPtr lower(g_ascii_strdown(url.c_str(), static_cast<gssize>(colon)));
    const std::string scheme = lower.get();
    std::string rest = url.substr(colon + 1);
    while (rest.starts_with("/")) rest.erase(0, 1);
    if (scheme == "stun" || scheme == "stuns") return scheme + "://" + rest;
    if (scheme == "turn" || scheme == "turns") {
        GCharPtr u(g_uri_escape_string(user.c_str(), nullptr, FALSE));
        GCharPtr c(g_uri_escape_string(credential.c_str(), nullptr, FALSE));
        return scheme + "://" + u.get() + ":" + c.get() + "@" + rest;
    }
    return {};
}

std::string connectionStateName(GstWebRTCPeerConnectionState s) {
    switch (s) {
    case GST_WEBRTC_PEER_CONNECTION_STATE_NEW: return "new";
    case GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTING: return "connecting";
    case GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED: return "connected";
    case GST_WEBRTC_PEER_CONNECTION_STATE_DISCONNECTED: return "disconnected";
    case GST_WEBRTC_PEER_CONNECTION_STATE_FAILED: return "failed";
    case GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED: return "closed";
    }
    return "unknown";
}

std::string iceStateName(GstWebRTCICEConnectionState s) {
    switch (s) {
    case GST_WEBRTC_ICE_CONNECTION_STATE_NEW: return "new";
    case GST_WEBRTC_ICE_CONNECTION_STATE_CHECKING: return "checking";
    case GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED: return "connected";
    case GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED: return "completed";
    case GST_WEBRTC_ICE_CONNECTION_STATE_FAILED: return "failed";
    case GST_WEBRTC_ICE_CONNECTION_STATE_DISCONNECTED: return "disconnected";
    case GST_WEBRTC_ICE_CONNECTION_STATE_CLOSED: return "closed";
    }
    return "unknown";
}

using WeakClient = std::weak_ptr<Client>;
void deleteWeak(gpointer p) noexcept { delete static_cast<WeakClient*>(p); }

struct HttpCall {
    std::weak_ptr<Client> client;
    Ref<SoupMessage> message; // Owned: the reply's status and headers are read from it.
    std::function<void(Client&, SoupMessage*, GBytes*, const std::string&)> then;
};

// The message of a promise reply's "error" field, or "" when there is none.
std::string promiseError(GstPromise* promise) {
    if (gst_promise_wait(promise) != GST_PROMISE_RESULT_REPLIED) return "promise interrupted or expired";
    const GstStructure* reply = gst_promise_get_reply(promise);
    if (!reply || !gst_structure_has_field(reply, "error")) return {};
    GError* error = nullptr;
    gst_structure_get(reply, "error", G_TYPE_ERROR, &error, nullptr);
    GErrorPtr owned(error);
    return error ? error->message : "unknown error";
}

} // namespace

// Thread: streaming (webrtcbin).
void Client::onIceCandidateCb(GstElement*, guint mline, gchar* candidate, gpointer user) noexcept {
    glib::guarded("on-ice-candidate", [&] {
        glib::post(static_cast<Client*>(user)->weak_from_this(),
                   [mline, c = std::string(candidate ? candidate : "")](Client& client) {
                       client.onLocalCandidate(mline, c);
                   });
    });
}

// Thread: streaming (any). The properties are read on the main thread.
void Client::onStateNotifyCb(GstElement*, GParamSpec*, gpointer user) noexcept {
    glib::guarded("state notify", [&] {
        glib::post(static_cast<Client*>(user)->weak_from_this(), [](Client& c) { c.onPeerStateNotify(); });
    });
}

// Thread: streaming (webrtcbin's).
void Client::onOfferCreatedCb(GstPromise* promise, gpointer user) noexcept {
    glib::guarded("create-offer reply", [&] {
        std::string error = promiseError(promise);
        std::shared_ptr<GstWebRTCSessionDescription> offer;
        if (error.empty()) {
            GstWebRTCSessionDescription* desc = nullptr;
            const GstStructure* reply = gst_promise_get_reply(promise);
            if (reply) gst_structure_get(reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &desc, nullptr);
            if (desc)
                offer.reset(desc, gst_webrtc_session_description_free);
            else
                error = "create-offer replied without an offer";
        }
        gst_promise_unref(promise);
        glib::post(*static_cast<WeakClient*>(user), [offer, error](Client& c) { c.onOfferCreated(offer, error); });
    });
}

// Thread: streaming (webrtcbin's).
void Client::onLocalDescriptionCb(GstPromise* promise, gpointer user) noexcept {
    glib::guarded("set-local-description reply", [&] {
        std::string error = promiseError(promise);
        gst_promise_unref(promise);
        glib::post(*static_cast<WeakClient*>(user), [error](Client& c) { c.onLocalDescriptionSet(error); });
    });
}

// Thread: streaming (webrtcbin's).
void Client::onRemoteDescriptionCb(GstPromise* promise, gpointer user) noexcept {
    glib::guarded("set-remote-description reply", [&] {
        std::string error = promiseError(promise);
        gst_promise_unref(promise);
        glib::post(*static_cast<WeakClient*>(user), [error](Client& c) { c.onRemoteDescriptionSet(error); });
    });
}

// Thread: main (libsoup).
void Client::onWsConnectedCb(GObject* source, GAsyncResult* result, gpointer user) noexcept {
    const std::unique_ptr<WeakClient> weak(static_cast<WeakClient*>(user));
    glib::guarded("websocket connect", [&] {
        GError* error = nullptr;
        SoupWebsocketConnection* ws = soup_session_websocket_connect_finish(SOUP_SESSION(source), result, &error);
        const GErrorPtr owned(error);
        auto conn = Ref<SoupWebsocketConnection>::adopt(ws);
        auto self = weak->lock();
        if (!self || self->m_finishing) return;
        if (!ws) {
            self->localError(std::string("cannot connect to ") + self->m_options.server + ": " +
                             (error ? error->message : "unknown error"));
            self->setState(State::Failed);
            self->finish();
            return;
        }
        self->m_ws = std::move(conn);
        g_signal_connect(ws, "message", G_CALLBACK(onWsMessageCb), self.get());
        g_signal_connect(ws, "closed", G_CALLBACK(onWsClosedCb), self.get());
        g_signal_connect(ws, "error", G_CALLBACK(onWsErrorCb), self.get());
        self->event("open");
        proto::Join join;
        join.room = self->m_options.room;
        join.name = self->m_options.name;
        join.token = self->m_options.token;
        join.maxBitrate = self->m_options.maxBitrate;
        join.receiveOnly = self->m_options.receiveOnly;
        self->send(join);
    });
}

// Thread: main (libsoup).
void Client::onWsMessageCb(SoupWebsocketConnection*, gint type, GBytes* message, gpointer user) noexcept {
    glib::guarded("websocket message", [&] {
        auto* self = static_cast<Client*>(user);
        if (type != SOUP_WEBSOCKET_DATA_TEXT) {
            self->localError("unexpected binary frame from the server");
            return;
        }
        gsize size = 0;
        const auto* data = static_cast<const char*>(g_bytes_get_data(message, &size));
        self->onWsMessage(std::string_view(data ? data : "", size));
    });
}

// Thread: main (libsoup).
void Client::onWsClosedCb(SoupWebsocketConnection*, gpointer user) noexcept {
    glib::guarded("websocket closed", [&] { static_cast<Client*>(user)->onWsClosed(); });
}

// Thread: main (libsoup).
void Client::onWsErrorCb(SoupWebsocketConnection*, GError* error, gpointer user) noexcept {
    glib::guarded("websocket error", [&] {
        static_cast<Client*>(user)->localError(std::string("websocket: ") + (error ? error->message : "error"));
    });
}

void Client::httpSend(const char* method, const std::string& url, const char* contentType, const std::string& body,
                      HttpReply then) {
    SoupMessage* message = soup_message_new(method, url.c_str());
    if (!message) {
        then(*this, nullptr, nullptr, "bad URL " + url);
        return;
    }
    auto owned = Ref<SoupMessage>::adopt(message);
    if (contentType) {
        GBytes* bytes = g_bytes_new(body.data(), body.size());
        soup_message_set_request_body_from_bytes(message, contentType, bytes);
        g_bytes_unref(bytes);
    }
    // The token goes to the WHIP or WHEP endpoint only: Janus's API takes none.
    if (!m_options.whip.empty() && m_options.token)
        soup_message_headers_replace(soup_message_get_request_headers(message), "Authorization",
                                     ("Bearer " + *m_options.token).c_str());
    soup_session_send_and_read_async(m_session.get(), message, G_PRIORITY_DEFAULT, m_cancellable.get(), onHttpReplyCb,
                                     new HttpCall{weak_from_this(), std::move(owned), std::move(then)});
}

std::string Client::bodyText(GBytes* body) {
    gsize size = 0;
    const auto* data = body ? static_cast<const char*>(g_bytes_get_data(body, &size)) : nullptr;
    return std::string(data ? data : "", size);
}

// Thread: main (libsoup).
void Client::onHttpReplyCb(GObject* source, GAsyncResult* result, gpointer user) noexcept {
    const std::unique_ptr<HttpCall> call(static_cast<HttpCall*>(user));
    glib::guarded("http reply", [&] {
        GError* error = nullptr;
        GBytes* bytes = soup_session_send_and_read_finish(SOUP_SESSION(source), result, &error);
        const GErrorPtr owned(error);
        const std::unique_ptr<GBytes, decltype(&g_bytes_unref)> body(bytes, g_bytes_unref);
        auto self = call->client.lock();
        if (!self || self->m_finishing) return;
        call->then(*self, call->message.get(), bytes, bytes ? "" : (error ? error->message : "request failed"));
    });
}

// Only the given addresses are used for host candidates (libnice gathers on
// every interface otherwise). Must run before gathering starts.
bool Client::restrictIce() {
    if (m_options.iceAddresses.empty()) return true;
    GstWebRTCICE* ice = nullptr;
    g_object_get(m_webrtc, "ice-agent", &ice, nullptr);
    // webrtcbin 1.22 leaves its ICE object floating, which Ref::adopt
    // refuses: hold a reference of our own, give back the getter's.
    const auto iceRef = Ref<GstWebRTCICE>::borrow(ice);
    if (ice) gst_object_unref(ice);
    if (!ice || !hasProperty(ice, "agent")) {
        g_printerr("tessera-client: webrtcbin's ICE agent is not libnice; cannot restrict addresses\n");
        return false;
    }
    NiceAgent* agent = nullptr;
    g_object_get(ice, "agent", &agent, nullptr);
    const auto agentRef = Ref<NiceAgent>::adopt(agent);
    if (!agent) return false;
    for (const auto& address : m_options.iceAddresses) {
        NiceAddress a;
        nice_address_init(&a);
        if (!nice_address_set_from_string(&a, address.c_str())) {
            g_printerr("tessera-client: bad --ice-address %s\n", address.c_str());
            return false;
        }
        if (!nice_agent_add_local_address(agent, &a)) {
            g_printerr("tessera-client: libnice refused local address %s\n", address.c_str());
            return false;
        }
    }
    return true;
}

void Client::connectSignaling() {
    m_session = Ref<SoupSession>::adopt(soup_session_new());
    m_cancellable = Ref<GCancellable>::adopt(g_cancellable_new());
    if (!m_options.caFile.empty()) {
        // Instead of the system's CAs: a test's self-signed certificate, a private CA.
        GError* error = nullptr;
        auto database = Ref<GTlsDatabase>::adopt(g_tls_file_database_new(m_options.caFile.c_str(), &error));
        const GErrorPtr owned(error);
        if (!database) {
            localError("bad --ca " + m_options.caFile + ": " + (error ? error->message : "unknown error"));
            setState(State::Failed);
            glib::post(weak_from_this(), [](Client& c) { c.finish(); });
            return;
        }
        soup_session_set_tls_database(m_session.get(), database.get());
    }
    if (!m_options.janus.empty()) {
        janusStart();
        return;
    }
    if (!m_options.whip.empty()) {
        createOffer(); // no join: the offer is the POST
        return;
    }
    GError* error = nullptr;
    GUri* uri = g_uri_parse(m_options.server.c_str(), static_cast<GUriFlags>(SOUP_HTTP_URI_FLAGS), &error);
    GErrorPtr owned(error);
    SoupMessage* message = uri ? soup_message_new_from_uri("GET", uri) : nullptr;
    if (uri) g_uri_unref(uri);
    if (!message) {
        localError("bad --server URL " + m_options.server + (error ? std::string(": ") + error->message : ""));
        setState(State::Failed);
        glib::post(weak_from_this(), [](Client& c) { c.finish(); });
        return;
    }
    soup_session_websocket_connect_async(m_session.get(), message, nullptr, nullptr, G_PRIORITY_DEFAULT,
                                         m_cancellable.get(), onWsConnectedCb, new WeakClient(weak_from_this()));
    g_object_unref(message);
}

void Client::send(const proto::ClientMessage& message) {
    if (!m_ws || soup_websocket_connection_get_state(m_ws.get()) != SOUP_WEBSOCKET_STATE_OPEN) {
        GST_WARNING("not sending: the WebSocket is not open");
        return;
    }
    const std::string text = proto::serialize(message);
    GST_DEBUG("-> %s", text.c_str());
    soup_websocket_connection_send_text(m_ws.get(), text.c_str());
}

void Client::onWsMessage(std::string_view text) {
    GST_DEBUG("<- %.*s", static_cast<int>(std::min<std::size_t>(text.size(), 2000)), text.data());
    proto::ServerMessage message;
    try {
        message = proto::parseServerMessage(text);
    } catch (const std::exception& e) {
        localError(std::string("bad message from the server: ") + e.what());
        return;
    }
    std::visit([this](const auto& m) { handle(m); }, message);
}

void Client::handle(const proto::Joined& m) {
    if (m_offerSent) {
        localError("second 'joined' ignored");
        return;
    }
    m_id = m.id;
    m_participants = m.participants;
    Json others = Json::array();
    for (const auto& p : m.participants) others.push_back({{"id", p.id}, {"name", p.name}});
    event("joined", {{"id", m.id}, {"room", m.room}, {"participants", others}});

    useIceServers(m.iceServers);
    if (m_options.holdOffer)
        m_offerHeld = true;
    else
        createOffer();
}

// Before ICE gathers (the local description): `joined`'s iceServers, or the
// WHIP/WHEP answer's Link headers.
void Client::useIceServers(const std::vector<proto::IceServer>& servers) {
    bool haveStun = false;
    for (const auto& server : servers) {
        for (const auto& url : server.urls) {
            const std::string gstUrl = toGstIceUrl(url, server.username, server.credential);
            if (gstUrl.starts_with("stun")) {
                if (!haveStun) g_object_set(m_webrtc, "stun-server", gstUrl.c_str(), nullptr);
                haveStun = true;
            } else if (gstUrl.starts_with("turn")) {
                gboolean ok = FALSE;
                g_signal_emit_by_name(m_webrtc, "add-turn-server", gstUrl.c_str(), &ok);
                if (!ok) localError("webrtcbin refused TURN server " + url);
            } else {
                localError("ignored ICE server URL " + url);
            }
        }
    }
}

void Client::handle(const proto::Answer& m) {
    if (!m_offerSent) {
        localError("'answer' before our offer ignored");
        return;
    }
    GstSDPMessage* sdp = nullptr;
    if (gst_sdp_message_new_from_text(m.sdp.c_str(), &sdp) != GST_SDP_OK || !sdp) {
        localError("the answer's SDP does not parse");
        return;
    }
    GstWebRTCSessionDescription* desc = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
    GstPromise* promise =
        gst_promise_new_with_change_func(onRemoteDescriptionCb, new WeakClient(weak_from_this()), deleteWeak);
    g_signal_emit_by_name(m_webrtc, "set-remote-description", desc, promise);
    gst_webrtc_session_description_free(desc);
}

void Client::handle(const proto::Candidate& m) {
    if (!m.candidate) {
        GST_INFO("the server's end of candidates");
        return;
    }
    if (!m_remoteSet)
        m_pendingCandidates.push_back(*m.candidate);
    else
        applyRemoteCandidate(*m.candidate);
}

void Client::applyRemoteCandidate(const proto::IceCandidate& c) {
    if (c.candidate.empty()) return; // the browser-style end of candidates
    std::optional<unsigned> mline = c.sdpMLineIndex;
    if (!mline && c.sdpMid) {
        const auto it = std::find(m_mids.begin(), m_mids.end(), *c.sdpMid);
        if (it != m_mids.end()) mline = static_cast<unsigned>(it - m_mids.begin());
    }
    if (!mline) {
        localError("remote candidate with an unknown m-line ignored");
        return;
    }
    g_signal_emit_by_name(m_webrtc, "add-ice-candidate", *mline, c.candidate.c_str());
}

void Client::handle(const proto::ParticipantJoined& m) {
    const bool known = std::any_of(m_participants.begin(), m_participants.end(),
                                   [&](const proto::ParticipantInfo& p) { return p.id == m.id; });
    if (!known) m_participants.push_back({m.id, m.name});
    event("participant-joined", {{"id", m.id}, {"name", m.name}});
}

void Client::handle(const proto::ParticipantLeft& m) {
    std::erase_if(m_participants, [&](const proto::ParticipantInfo& p) { return p.id == m.id; });
    event("participant-left", {{"id", m.id}});
}

void Client::handle(const proto::LayoutChanged& m) {
    m_layout = m.layout;
    event("layout", {{"layout", m.layout}});
}

void Client::handle(const proto::Speaker& m) {
    m_speaker = m.id;
    event("speaker", {{"id", m.id}});
}

void Client::handle(const proto::RecordingChanged& m) { event("recording", {{"recording", m.recording}}); }

void Client::handle(const proto::AudioOnly& m) {
    m_audioOnly = m.enabled ? m.reason : "";
    emitEvent("audio-only", {{"enabled", m.enabled}, {"reason", m.reason}});
}

void Client::handle(const proto::SendSize& m) {
    event("send-size", {{"source", m.source},
                        {"active", m.active},
                        {"width", m.width},
                        {"height", m.height},
                        {"maxBitrate", m.maxBitrate}});
    if (m.source == "camera" && !m_options.ignoreSendSize) applySendSize(m);
}

void Client::handle(const proto::OnScreen& m) {
    m_onScreen = m;
    emitEvent("on-screen", {{"shown", m.shown}, {"hidden", m.hidden}});
}

void Client::handle(const proto::ErrorMessage& m) {
    m_errors.push_back(m.message);
    event("error", {{"code", std::string(toString(m.code))}, {"message", m.message}});
}

void Client::onWsClosed() {
    const int code = m_ws ? soup_websocket_connection_get_close_code(m_ws.get()) : 0;
    const char* reason = m_ws ? soup_websocket_connection_get_close_data(m_ws.get()) : nullptr;
    if (m_leaving) {
        finish();
        return;
    }
    // The server closed (kick, shutdown, flood): report and exit.
    event("closed", {{"code", code}, {"reason", reason ? reason : ""}});
    setState(State::Closed);
    Json j = report();
    j["final"] = true;
    out(j);
    m_leaving = true;
    finish();
}

void Client::createOffer() {
    // Channels before the offer, so that it has an m=application section.
    // Ordered and reliable are the defaults.
    for (auto [label, slot] : {std::pair{"chat", &m_chat}, std::pair{"file", &m_file}}) {
        // AudioBridge has no data channels, and WHIP publishers open none.
        if (*slot || !m_options.janus.empty() || !m_options.whip.empty()) continue;
        GstWebRTCDataChannel* channel = nullptr;
        g_signal_emit_by_name(m_webrtc, "create-data-channel", label, nullptr, &channel);
        if (!channel) {
            localError(std::string("cannot create data channel ") + label);
            continue;
        }
        *slot = Ref<GstWebRTCDataChannel>::adopt(channel);
        setupChannel(channel);
    }
    GstPromise* promise =
        gst_promise_new_with_change_func(onOfferCreatedCb, new WeakClient(weak_from_this()), deleteWeak);
    g_signal_emit_by_name(m_webrtc, "create-offer", nullptr, promise);
}

void Client::onOfferCreated(const std::shared_ptr<GstWebRTCSessionDescription>& offer, const std::string& error) {
    if (!error.empty() || !offer) {
        localError("create-offer failed: " + error);
        setState(State::Failed);
        return;
    }
    m_mids.clear();
    for (guint i = 0; i < gst_sdp_message_medias_len(offer->sdp); ++i) {
        const char* mid = gst_sdp_media_get_attribute_val(gst_sdp_message_get_media(offer->sdp, i), "mid");
        m_mids.emplace_back(mid ? mid : "");
    }
    // WHIP and WHEP learn their ICE servers from the POST's answer (its Link
    // headers): the local description, which starts gathering, waits for it.
    if (m_options.whip.empty())
        setLocalDescription(offer);
    else
        m_whipOffer = offer;
    GstSDPMessage* sent = offer->sdp;
    if (m_options.offerWithoutSsrc) {
        // Only from what is sent: the local description keeps them.
        gst_sdp_message_copy(offer->sdp, &sent);
        for (guint i = 0; i < gst_sdp_message_medias_len(sent); ++i) {
            GstSDPMedia* media = const_cast<GstSDPMedia*>(gst_sdp_message_get_media(sent, i));
            for (guint a = gst_sdp_media_attributes_len(media); a-- > 0;) {
                const std::string_view key = gst_sdp_media_get_attribute(media, a)->key;
                if (key == "ssrc" || key == "ssrc-group") gst_sdp_media_remove_attribute(media, a);
            }
        }
    }
    GCharPtr text(gst_sdp_message_as_text(sent));
    if (sent != offer->sdp) gst_sdp_message_free(sent);
    if (!m_options.whip.empty()) {
        whipPublish(offer->sdp, text.get()); // the sent offer's m-lines and credentials are the local ones
    } else if (!m_options.janus.empty()) {
        Json join = {{"janus", "message"},
                     {"body", {{"request", "join"}, {"room", m_options.janusRoom}, {"display", m_options.name}}},
                     {"jsep", {{"type", "offer"}, {"sdp", text.get()}}}};
        janusPost(m_janusPath, std::move(join), [](Client&, const Json&) {}); // the answer comes as an event
    } else {
        send(proto::Offer{text.get()});
    }
    m_offerSent = true;
    event("offer", {{"sdp", text.get()}});
}

void Client::setLocalDescription(const std::shared_ptr<GstWebRTCSessionDescription>& offer) {
    GstPromise* promise =
        gst_promise_new_with_change_func(onLocalDescriptionCb, new WeakClient(weak_from_this()), deleteWeak);
    g_signal_emit_by_name(m_webrtc, "set-local-description", offer.get(), promise);
}

void Client::onLocalDescriptionSet(const std::string& error) {
    if (!error.empty()) {
        localError("set-local-description failed: " + error);
        setState(State::Failed);
    }
}

void Client::onRemoteDescriptionSet(const std::string& error) {
    if (!error.empty()) {
        localError("set-remote-description failed: " + error);
        setState(State::Failed);
        return;
    }
    m_remoteSet = true;
    event("answer");
    // webrtcbin takes data on its sink pads from now on.
    if (m_fileOutlet) m_fileSource->start(m_fileOutlet);
    if (m_group && m_group->answered) std::exchange(m_group->answered, nullptr)();
    auto pending = std::move(m_pendingCandidates);
    m_pendingCandidates.clear();
    for (const auto& c : pending) applyRemoteCandidate(c);
}

void Client::onLocalCandidate(unsigned mline, const std::string& candidate) {
    if (candidate.empty()) return;
    proto::IceCandidate c;
    c.candidate = candidate;
    if (mline < m_mids.size() && !m_mids[mline].empty()) c.sdpMid = m_mids[mline];
    c.sdpMLineIndex = mline;
    if (!m_options.whip.empty())
        whipTrickle(mline, candidate);
    else if (!m_options.janus.empty())
        janusPost(m_janusPath,
                  {{"janus", "trickle"}, {"candidate", {{"candidate", candidate}, {"sdpMLineIndex", mline}}}},
                  [](Client&, const Json&) {});
    else
        send(proto::Candidate{c});
}

void Client::onPeerStateNotify() {
    if (!m_webrtc || m_finishing) return;
    GstWebRTCPeerConnectionState pc = GST_WEBRTC_PEER_CONNECTION_STATE_NEW;
    GstWebRTCICEConnectionState ice = GST_WEBRTC_ICE_CONNECTION_STATE_NEW;
    GstWebRTCICEGatheringState gathering = GST_WEBRTC_ICE_GATHERING_STATE_NEW;
    g_object_get(m_webrtc, "connection-state", &pc, "ice-connection-state", &ice, "ice-gathering-state", &gathering,
                 nullptr);
    const std::string pcName = connectionStateName(pc);
    const std::string iceName = iceStateName(ice);
    if (iceName != m_iceState) {
        m_iceState = iceName;
        event("ice-state", {{"state", iceName}});
    }
    if (pcName != m_pcState) {
        m_pcState = pcName;
        event("peer-state", {{"state", pcName}});
    }
    if (pc == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED)
        setState(State::Connected);
    else if (pc == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED || ice == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED)
        setState(State::Failed);
    else if (pc == GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED)
        setState(State::Closed);
    else if (pc == GST_WEBRTC_PEER_CONNECTION_STATE_DISCONNECTED && m_state == State::Connected)
        setState(State::Connecting);

    if (gathering == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE && m_offerSent && !m_endOfCandidatesSent) {
        m_endOfCandidatesSent = true;
        if (!m_options.whip.empty())
            whipTrickle(0, "");
        else if (!m_options.janus.empty())
            janusPost(m_janusPath, {{"janus", "trickle"}, {"candidate", {{"completed", true}}}},
                      [](Client&, const Json&) {});
        else
            send(proto::Candidate{std::nullopt});
    }
}

} // namespace tessera::client
