#define G_LOG_DOMAIN "tessera-server"
#include "tessera/server/server.h"

#include <gio/gio.h>
#include <libsoup/soup.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "http.h"
#include "live.h"
#include "loop_watch.h"
#include "overloaded.h"
#include "tessera/auth/jwt.h"
#include "tessera/glib/raii.h"
#include "tessera/policy/rate.h"
#include "tessera/protocol/api.h"
#include "tessera/protocol/error.h"
#include "tessera/protocol/messages.h"
#include "tessera/protocol/origin.h"
#include "tessera/protocol/token.h"
#include "tessera/server/metrics.h"
#include "whip.h"

namespace tessera::server {
namespace {
namespace fs = std::filesystem;

// Keeps idle connections open through NATs and proxies.
constexpr guint kKeepaliveSeconds = 30;
// More error replies than this on one socket within the window closes it
// ("a flood may close it"): a misbehaving client must not keep us busy.
constexpr std::size_t kMaxErrorsPerWindow = 50;
constexpr gint64 kErrorWindowUs = gint64{10} * G_USEC_PER_SEC;
// No request we serve has a body anywhere near this; SoupServer would buffer
// whatever it is sent.
constexpr goffset kMaxRequestBody = goffset{1024} * 1024;
// RFC 6455: a close frame's reason fits in 123 bytes.
constexpr std::size_t kMaxCloseReason = 123;

using glib::GCharPtr;
using glib::GErrorPtr;
using glib::Ref;
using glib::SignalConnection;
using http::allowMethods;
using http::bearer;
using http::method;
using http::pathSegments;
using http::requestBody;
using http::respond;
using http::respondError;
using http::respondJson;

// `path` is `prefix` or below it ("/api", "/api/rooms"; not "/apix").
bool under(std::string_view path, std::string_view prefix) {
    return path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/');
}

// Truncates on a UTF-8 character boundary.
std::string closeReason(std::string_view reason) {
    if (reason.size() <= kMaxCloseReason) return std::string(reason);
    std::size_t end = kMaxCloseReason;
    while (end > 0 && (static_cast<unsigned char>(reason[end]) & 0xC0) == 0x80) --end;
    return std::string(reason.substr(0, end));
}

void refuseOversize(SoupServerMessage* msg) {
    respondError(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, ErrorCode::BadRequest, "request body larger than 1 MiB");
}

// Set on a request whose chunked body grew past kMaxRequestBody.
constexpr const char* kOversizeKey = "tessera-oversize";

// A chunked body announces no length: it is measured as it arrives. A
// status set before the body is in would not stop libsoup reading it, so
// past the bound the rest is read and dropped (not buffered), and
// onRequest answers 413.
void boundChunkedBody(SoupServerMessage* msg) {
    g_signal_connect(msg, "got-chunk", G_CALLBACK(+[](SoupServerMessage* message, GBytes*, gpointer) noexcept {
                         glib::guarded("request body chunk", [message] {
                             SoupMessageBody* body = soup_server_message_get_request_body(message);
                             if (body->length <= kMaxRequestBody) return;
                             soup_message_body_set_accumulate(body, FALSE);
                             soup_message_body_truncate(body);
                             g_object_set_data(G_OBJECT(message), kOversizeKey, GINT_TO_POINTER(1));
                         });
                     }),
                     nullptr);
}

const char* contentType(const fs::path& file) {
    static const std::map<std::string, const char*, std::less<>> types = {
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".webp", "image/webp"},
        {".ico", "image/x-icon"},
        {".wasm", "application/wasm"},
        {".woff2", "font/woff2"},
        {".webm", "video/webm"},
        {".mp4", "video/mp4"},
        {".wav", "audio/wav"},
    };
    std::string extension = file.extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return static_cast<char>(g_ascii_tolower(static_cast<gchar>(c))); });
    const auto found = types.find(extension);
    return found != types.end() ? found->second : "application/octet-stream";
}

bool isUnder(const fs::path& file, const fs::path& root) {
    const auto [rootEnd, fileAt] = std::mismatch(root.begin(), root.end(), file.begin(), file.end());
    return rootEnd == root.end();
}

// The certificate and key in config.tls, checked: a server that starts (or
// reloads) with a bad pair would fail every handshake instead.
Ref<GTlsCertificate> loadCertificate(const TlsConfig& tls) {
    if (!g_tls_backend_supports_tls(g_tls_backend_get_default())) {
        throw Error(ErrorCode::Internal, "TLS needs GLib's TLS backend: install glib-networking");
    }
    GError* error = nullptr;
    GTlsCertificate* certificate = g_tls_certificate_new_from_files(tls.cert.c_str(), tls.key.c_str(), &error);
    if (certificate == nullptr) {
        const GErrorPtr owned(error);
        throw Error(ErrorCode::Internal,
                    "cannot load the certificate " + tls.cert + " with the key " + tls.key + ": " + error->message);
    }
    return Ref<GTlsCertificate>::adopt(certificate);
}

class Session;

// What a session needs from the server that owns it.
class SessionHost {
public:
    virtual room::Rooms& rooms() noexcept = 0;
    virtual const Config& config() const noexcept = 0;
    // Throws Error(RateLimited) when `address` has joined too often this minute.
    virtual void countJoin(std::string_view address) = 0;
    // The session's socket closed: destroy it soon, but not now (it is on the stack).
    virtual void sessionClosed(Session& session) = 0;

protected:
    ~SessionHost() = default;
};

// One WebSocket connection: signaling for at most one participant at a time.
class Session final : public room::ClientSink {
public:
    Session(SessionHost& server, SoupWebsocketConnection* connection, std::string address)
        : m_server(server), m_connection(Ref<SoupWebsocketConnection>::borrow(connection)),
          m_address(std::move(address)),
          m_messages(server.config().limits.messagesPerSecond, server.config().limits.messageBurst),
          m_onMessage(connection, g_signal_connect(connection, "message", G_CALLBACK(&Session::messageThunk), this)),
          m_onClosed(connection, g_signal_connect(connection, "closed", G_CALLBACK(&Session::closedThunk), this)) {
        // Frames larger than the protocol allows are read up to this size, so
        // that an oversize message gets an `error` reply (docs/protocol.md) and
        // the connection lives on; beyond it libsoup closes the connection (1009).
        soup_websocket_connection_set_max_incoming_payload_size(connection, server.config().limits.maxFrameBytes);
        soup_websocket_connection_set_keepalive_interval(connection, kKeepaliveSeconds);
    }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // The client's IP address (connections per address are limited).
    const std::string& address() const noexcept { return m_address; }

    // Server shutdown: leave the room and say goodbye.
    void shutdown() {
        leaveRoom();
        close(SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "server shutting down");
    }

    // Thread: main.
    void send(const protocol::ServerMessage& message) override {
        if (soup_websocket_connection_get_state(m_connection.get()) != SOUP_WEBSOCKET_STATE_OPEN) return;
        try {
            soup_websocket_connection_send_text(m_connection.get(), protocol::serialize(message).c_str());
        } catch (const std::exception& e) {
            // One client's unsendable message must not fail the room operation for everyone else.
            g_warning("cannot send to %s: %s", participant().c_str(), e.what());
        }
    }

    void disconnect(const std::string& reason) override {
        // Rooms removed the participant already.
        m_participantId.reset();
        close(SOUP_WEBSOCKET_CLOSE_NORMAL, reason);
    }

private:
    // Thread: main (libsoup).
    static void messageThunk(SoupWebsocketConnection*, gint type, GBytes* bytes, gpointer self) noexcept {
        glib::guarded("websocket message", [&] { static_cast<Session*>(self)->onMessage(type, bytes); });
    }
    // Thread: main (libsoup).
    static void closedThunk(SoupWebsocketConnection*, gpointer self) noexcept {
        glib::guarded("websocket closed", [&] { static_cast<Session*>(self)->onClosed(); });
    }

    // Thread: main.
    void onMessage(gint type, GBytes* bytes) noexcept {
        // Closing (kicked, flooding): whatever still arrives is not acted on.
        if (!m_open) return;
        // libsoup (3.2) bounds each frame, not a message it reassembled from
        // fragments: such a message gets what one frame that large gets.
        if (g_bytes_get_size(bytes) >= m_server.config().limits.maxFrameBytes) {
            g_info("%s: closing the connection after a fragmented message of %zu bytes", participant().c_str(),
                   g_bytes_get_size(bytes));
            close(SOUP_WEBSOCKET_CLOSE_TOO_BIG, "message too big");
            return;
        }
        try {
            // Counted before anything else: a flood of bad frames costs as much as one of good ones.
            if (!m_messages.take(g_get_monotonic_time())) {
                throw Error(ErrorCode::RateLimited, "more than " +
                                                        std::to_string(m_server.config().limits.messagesPerSecond) +
                                                        " messages per second: this one was dropped");
            }
            if (type != SOUP_WEBSOCKET_DATA_TEXT) {
                throw Error(ErrorCode::BadRequest, "binary frames are not part of the protocol: send JSON text");
            }
            gsize size = 0;
            const auto* data = static_cast<const char*>(g_bytes_get_data(bytes, &size));
            handle(protocol::parseClientMessage(std::string_view(data != nullptr ? data : "", size)));
        } catch (const Error& e) {
            replyError(e.code(), e.what());
        } catch (const std::exception& e) {
            g_warning("%s: unexpected failure: %s", participant().c_str(), e.what());
            replyError(ErrorCode::Internal, "internal error");
        } catch (...) {
            replyError(ErrorCode::Internal, "internal error");
        }
    }

    // Thread: main.
    void onClosed() noexcept {
        m_open = false;
        try {
            leaveRoom();
        } catch (const std::exception& e) {
            g_warning("%s: leaving on close failed: %s", participant().c_str(), e.what());
        }
        m_server.sessionClosed(*this);
    }

    void handle(const protocol::ClientMessage& message) {
        room::Rooms& rooms = m_server.rooms();
        std::visit(
            Overloaded{
                [&](const protocol::Join& join) {
                    if (m_participantId) throw Error(ErrorCode::BadRequest, "already joined");
                    m_server.countJoin(m_address);
                    std::string id = rooms.join(join, *this);
                    // The socket may have closed while joining (a failed send):
                    // nobody will leave for this participant later, so leave now.
                    if (m_open) {
                        m_participantId = std::move(id);
                    } else {
                        rooms.leave(id);
                    }
                },
                [&](const protocol::Offer& offer) { rooms.offer(joinedId(), offer.sdp); },
                [&](const protocol::Candidate& candidate) { rooms.candidate(joinedId(), candidate.candidate); },
                [&](const protocol::Leave&) { leaveRoom(joinedId()); },
                [&](const protocol::AudioOnlyRequest& request) { rooms.setAudioOnly(joinedId(), request.enabled); },
            },
            message);
    }

    const std::string& joinedId() const {
        if (!m_participantId) throw Error(ErrorCode::NotJoined, "join a room first");
        return *m_participantId;
    }

    void leaveRoom() {
        if (m_participantId) leaveRoom(*m_participantId);
    }
    // By value: the id must survive forgetting it.
    void leaveRoom(std::string id) {
        // Forget first: leaving sends messages, which may re-enter this session.
        m_participantId.reset();
        m_server.rooms().leave(id);
    }

    void replyError(ErrorCode code, std::string_view message) {
        const gint64 now = g_get_monotonic_time();
        while (!m_recentErrors.empty() && now - m_recentErrors.front() > kErrorWindowUs) m_recentErrors.pop_front();
        m_recentErrors.push_back(now);
        if (m_recentErrors.size() > kMaxErrorsPerWindow) {
            g_info("%s: closing the connection after too many bad requests", participant().c_str());
            close(SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, "too many bad requests");
            return;
        }
        send(protocol::ErrorMessage{code, std::string(message)});
    }

    void close(gushort code, std::string_view reason) {
        m_open = false;
        if (soup_websocket_connection_get_state(m_connection.get()) == SOUP_WEBSOCKET_STATE_OPEN) {
            soup_websocket_connection_close(m_connection.get(), code, closeReason(reason).c_str());
        }
    }

    std::string participant() const { return m_participantId ? "participant " + *m_participantId : "a session"; }

    SessionHost& m_server;                     // Borrowed; owns this.
    Ref<SoupWebsocketConnection> m_connection; // Owned.
    const std::string m_address;
    policy::TokenBucket m_messages;             // incoming frames
    std::optional<std::string> m_participantId; // set while joined
    bool m_open = true;
    std::deque<gint64> m_recentErrors; // monotonic µs of recent error replies
    SignalConnection m_onMessage;
    SignalConnection m_onClosed;
};

// Whether joining needs a bearer token (Rooms::admit's two cases).
bool tokensRequired(const Config& config) { return !config.joinToken.empty() || !config.tokenSecret.empty(); }

} // namespace

class Server::Impl final : public SessionHost {
public:
    Impl(const Config& config, room::Rooms& rooms)
        : m_config(config), m_rooms(rooms),
          m_joins(config.limits.joinsPerAddressPerMinute, std::int64_t{60} * G_USEC_PER_SEC),
          m_whip(std::make_unique<Whip>(Whip::Kind::Publish, rooms, 0, tokensRequired(config),
                                        [this](std::string_view address) { countJoin(address); })),
          m_whep(std::make_unique<Whip>(Whip::Kind::View, rooms, config.limits.viewersPerAddress,
                                        tokensRequired(config),
                                        [this](std::string_view address) { countJoin(address); })) {}
    ~Impl();

    void start();
    void reloadCertificate();
    bool tls() const noexcept { return !m_config.tls.cert.empty(); }
    std::uint16_t port() const noexcept { return m_port; }
    const std::string& host() const noexcept { return m_config.host; }
    room::Rooms& rooms() noexcept override { return m_rooms; }
    const Config& config() const noexcept override { return m_config; }
    void sessionClosed(Session& session) override;
    void countJoin(std::string_view address) override;

private:
    // Thread: main (libsoup callbacks).
    void onWebSocket(SoupServerMessage* msg, SoupWebsocketConnection* connection) noexcept;
    void onRequest(SoupServerMessage* msg, const char* path) noexcept;
    // Once the headers are in, before any body is read or a WebSocket accepted.
    void screen(SoupServerMessage* msg, std::string_view path);

    void route(SoupServerMessage* msg, std::string_view path);
    void allowCrossOrigin(SoupServerMessage* msg);
    // Whether the request may use the API: the admin token, or for `room`'s
    // endpoints a room token of that room with the admin grant. Answers 401 if not.
    bool authorized(SoupServerMessage* msg, std::string_view room);
    bool roomAdmin(std::string_view bearer, std::string_view room) const;
    void routeApi(SoupServerMessage* msg, const std::vector<std::string>& segments);
    void serveStatic(SoupServerMessage* msg, std::string_view path);
    std::optional<fs::path> staticFile(std::string_view path) const;
    void reapSessions();

    Config m_config;
    room::Rooms& m_rooms; // Borrowed; outlives this.
    LoopWatch m_loopWatch;
    fs::path m_wwwRoot; // canonical; empty: no web client to serve
    std::uint16_t m_port = 0;
    std::map<Session*, std::unique_ptr<Session>> m_sessions;    // Owned.
    std::map<std::string, unsigned, std::less<>> m_connections; // open sessions per client address
    policy::WindowCounter m_joins;                              // joins per client address this minute
    // Closed sessions die from an idle source, never inside their own "closed" emission.
    std::vector<std::unique_ptr<Session>> m_closedSessions;
    guint m_reapSource = 0;
    // Checked by answers that wait for a recording to finish.
    glib::Liveness m_liveness;
    // WHIP publishers and WHEP viewers; reset before the server goes (their POSTs may wait).
    std::unique_ptr<Whip> m_whip, m_whep;
    Ref<SoupServer> m_server; // Owned; last, so that it goes first.
};

Server::Impl::~Impl() {
    if (m_reapSource != 0) g_source_remove(m_reapSource);
    m_whep.reset();
    m_whip.reset();
    // Moved out first: closing may emit "closed" at once, and sessionClosed()
    // must not edit the map being walked.
    auto sessions = std::move(m_sessions);
    m_sessions.clear();
    m_connections.clear();
    for (auto& [key, session] : sessions) session->shutdown();
    sessions.clear();
    m_closedSessions.clear();
    if (m_server) soup_server_disconnect(m_server.get());
}

void Server::Impl::start() {
    m_server = Ref<SoupServer>::adopt(soup_server_new("server-header", "tessera", nullptr));
    soup_server_add_websocket_handler(
        m_server.get(), "/ws", nullptr, nullptr,
        // Thread: main (libsoup). onWebSocket catches.
        [](SoupServer*, SoupServerMessage* msg, const char*, SoupWebsocketConnection* connection,
           gpointer self) noexcept { static_cast<Impl*>(self)->onWebSocket(msg, connection); },
        this, nullptr);
    // Runs once the headers are in, before the body is read. libsoup calls
    // the early handler of the path's own entry only, so /ws (the WebSocket
    // handler's entry) needs it as well as every other path.
    for (const char* path : {static_cast<const char*>(nullptr), "/ws"}) {
        soup_server_add_early_handler(
            m_server.get(), path,
            // Thread: main (libsoup).
            [](SoupServer*, SoupServerMessage* msg, const char* at, GHashTable*, gpointer self) noexcept {
                glib::guarded("early handler",
                              [&] { static_cast<Impl*>(self)->screen(msg, at != nullptr ? at : "/"); });
            },
            this, nullptr);
    }
    soup_server_add_handler(
        m_server.get(), nullptr,
        // Thread: main (libsoup). onRequest catches.
        [](SoupServer*, SoupServerMessage* msg, const char* path, GHashTable*, gpointer self) noexcept {
            static_cast<Impl*>(self)->onRequest(msg, path);
        },
        this, nullptr);

    std::error_code ec;
    m_wwwRoot = fs::canonical(m_config.wwwDir, ec);
    if (ec) {
        g_warning("web client directory %s: %s; only the API is served", m_config.wwwDir.c_str(), ec.message().c_str());
        m_wwwRoot.clear();
    }

    // "localhost" is what people type; SoupServer wants an address.
    const std::string host = m_config.host == "localhost" ? "127.0.0.1" : m_config.host;
    auto address = Ref<GInetAddress>::adopt(g_inet_address_new_from_string(host.c_str()));
    if (!address) throw Error(ErrorCode::Internal, "host '" + m_config.host + "' is not an IP address");
    auto socketAddress = Ref<GSocketAddress>::adopt(g_inet_socket_address_new(address.get(), m_config.port));
    if (tls()) {
        soup_server_set_tls_certificate(m_server.get(), loadCertificate(m_config.tls).get());
    } else if (!g_inet_address_get_is_loopback(address.get())) {
        g_warning("listening on %s without TLS: browsers give camera and microphone (getUserMedia) only to secure "
                  "pages, so the web client works on this host alone, and join tokens, the admin token and TURN "
                  "passwords cross the network in cleartext; set --cert and --key, or listen on loopback behind a "
                  "TLS reverse proxy (docs/security.md)",
                  m_config.host.c_str());
    }
    const auto options = tls() ? SOUP_SERVER_LISTEN_HTTPS : static_cast<SoupServerListenOptions>(0);
    GError* error = nullptr;
    if (!soup_server_listen(m_server.get(), socketAddress.get(), options, &error)) {
        const GErrorPtr owned(error);
        throw Error(ErrorCode::Internal,
                    "cannot listen on " + m_config.host + ":" + std::to_string(m_config.port) + ": " + error->message);
    }

    // With port 0 the system chose: read it back from the listening socket.
    GSList* listeners = soup_server_get_listeners(m_server.get());
    if (listeners != nullptr) {
        auto local = Ref<GSocketAddress>::adopt(g_socket_get_local_address(G_SOCKET(listeners->data), nullptr));
        if (local && G_IS_INET_SOCKET_ADDRESS(local.get())) {
            m_port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local.get()));
        }
    }
    g_slist_free(listeners);
}

void Server::Impl::reloadCertificate() {
    if (!tls() || !m_server) return;
    // The listener follows the server's property: the next handshake uses it.
    soup_server_set_tls_certificate(m_server.get(), loadCertificate(m_config.tls).get());
}

// A status set here answers the request: libsoup then reads no body and
// does not upgrade to a WebSocket.
void Server::Impl::screen(SoupServerMessage* msg, std::string_view path) {
    SoupMessageHeaders* headers = soup_server_message_get_request_headers(msg);
    if (soup_message_headers_get_content_length(headers) > kMaxRequestBody) {
        refuseOversize(msg);
        return;
    }
    if (soup_message_headers_get_encoding(headers) == SOUP_ENCODING_CHUNKED) boundChunkedBody(msg);
    // A browser sends the page's Origin with every WebSocket handshake and
    // every non-GET request: refuse pages of other sites, which would act
    // with the visitor's network position (a server on loopback or a LAN).
    const std::string_view m = method(msg);
    const bool changesState = m != "GET" && m != "HEAD" && m != "OPTIONS";
    const bool api = under(path, "/api") || under(path, "/whip") || under(path, "/whep");
    if (path == "/ws" || (changesState && api)) {
        const char* origin = soup_message_headers_get_one(headers, "Origin");
        const char* host = soup_message_headers_get_one(headers, "Host");
        if (!protocol::originAllowed(origin != nullptr ? std::optional<std::string_view>(origin) : std::nullopt,
                                     host != nullptr ? host : "", m_config.allowedOrigins)) {
            g_info("refused %s %s from origin %s", std::string(m).c_str(), std::string(path).c_str(), origin);
            respondError(msg, Error(ErrorCode::Forbidden,
                                    std::string("origin ") + origin + " is not allowed (config key allowedOrigins)"));
            return;
        }
    }
    const unsigned perAddress = m_config.limits.connectionsPerAddress;
    if (path == "/ws" && perAddress != 0) {
        const char* address = soup_server_message_get_remote_host(msg);
        const auto open = m_connections.find(address != nullptr ? address : "");
        if (open != m_connections.end() && open->second >= perAddress) {
            g_info("refused a WebSocket from %s: %u open already", address, open->second);
            respondError(msg, Error(ErrorCode::RateLimited,
                                    std::to_string(perAddress) + " connections from this address are open already"));
        }
    }
}

void Server::Impl::countJoin(std::string_view address) {
    if (!m_joins.take(address, g_get_monotonic_time())) {
        throw Error(ErrorCode::RateLimited, "more than " + std::to_string(m_config.limits.joinsPerAddressPerMinute) +
                                                " joins from this address this minute");
    }
}

void Server::Impl::sessionClosed(Session& session) {
    const auto found = m_sessions.find(&session);
    if (found == m_sessions.end()) return;
    if (const auto count = m_connections.find(session.address()); count != m_connections.end() && --count->second == 0)
        m_connections.erase(count);
    m_closedSessions.push_back(std::move(found->second));
    m_sessions.erase(found);
    if (m_reapSource == 0) {
        m_reapSource = g_idle_add(
            // Thread: main.
            [](gpointer self) noexcept -> gboolean {
                glib::guarded("reaping sessions", [self] { static_cast<Impl*>(self)->reapSessions(); });
                return G_SOURCE_REMOVE;
            },
            this);
    }
}

void Server::Impl::reapSessions() {
    m_reapSource = 0;
    m_closedSessions.clear();
}

void Server::Impl::onWebSocket(SoupServerMessage* msg, SoupWebsocketConnection* connection) noexcept {
    try {
        const char* address = soup_server_message_get_remote_host(msg);
        auto session = std::make_unique<Session>(*this, connection, address != nullptr ? address : "");
        Session* key = session.get();
        ++m_connections[key->address()];
        m_sessions.emplace(key, std::move(session));
        g_debug("WebSocket session opened (%zu open)", m_sessions.size());
    } catch (const std::exception& e) {
        g_warning("cannot start a WebSocket session: %s", e.what());
        soup_websocket_connection_close(connection, SOUP_WEBSOCKET_CLOSE_SERVER_ERROR, "internal error");
    }
}

void Server::Impl::onRequest(SoupServerMessage* msg, const char* path) noexcept {
    try {
        if (g_object_get_data(G_OBJECT(msg), kOversizeKey) != nullptr) {
            refuseOversize(msg);
            return;
        }
        route(msg, path != nullptr ? path : "/");
    } catch (const Error& e) {
        respondError(msg, e);
    } catch (const std::exception& e) {
        g_warning("%s %s: unexpected failure: %s", soup_server_message_get_method(msg), path, e.what());
        respondError(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error");
    } catch (...) {
        respondError(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error");
    }
}

void Server::Impl::route(SoupServerMessage* msg, std::string_view path) {
    if (path == "/healthz") {
        if (allowMethods(msg, "GET")) respond(msg, SOUP_STATUS_OK, "text/plain; charset=utf-8", "ok");
        return;
    }
    if (path == "/metrics") {
        if (m_config.metricsRequireToken && !authorized(msg, {})) return;
        if (allowMethods(msg, "GET")) {
            respond(msg, SOUP_STATUS_OK, std::string(kPrometheusContentType).c_str(),
                    formatPrometheus(m_rooms.metrics(), m_loopWatch.health()));
        }
        return;
    }
    if (path == "/api" || path.starts_with("/api/")) {
        const auto segments = pathSegments(path.substr(4));
        if (!segments) throw Error(ErrorCode::BadRequest, "bad escape in the path");
        const bool roomPath = segments->size() >= 2 && segments->front() == "rooms";
        if (!authorized(msg, roomPath ? (*segments)[1] : std::string_view{})) return;
        routeApi(msg, *segments);
        return;
    }
    if (path.starts_with("/live/")) {
        // Public, as the web client is: a room streams HLS for anyone to watch.
        const auto segments = pathSegments(path.substr(5));
        if (!segments) throw Error(ErrorCode::BadRequest, "bad escape in the path");
        serveLive(msg, m_rooms, *segments);
        return;
    }
    for (auto [prefix, handler] : {std::pair{"/whip", m_whip.get()}, std::pair{"/whep", m_whep.get()}}) {
        if (!under(path, prefix)) continue;
        const auto segments = pathSegments(path.substr(std::string_view(prefix).size()));
        if (!segments) throw Error(ErrorCode::BadRequest, "bad escape in the path");
        allowCrossOrigin(msg);
        handler->handle(msg, *segments);
        return;
    }
    serveStatic(msg, path);
}

// A page of an allowed origin (allowedOrigins, or the server's own) may
// publish by WHIP or watch by WHEP from a browser: CORS lets it read the answer and the
// resource's headers. Other pages get no CORS headers, so their browser
// hides the responses (and screen() refused their POST, PATCH, DELETE).
void Server::Impl::allowCrossOrigin(SoupServerMessage* msg) {
    SoupMessageHeaders* request = soup_server_message_get_request_headers(msg);
    const char* origin = soup_message_headers_get_one(request, "Origin");
    if (origin == nullptr) return;
    SoupMessageHeaders* response = soup_server_message_get_response_headers(msg);
    soup_message_headers_append(response, "Vary", "Origin");
    const char* host = soup_message_headers_get_one(request, "Host");
    if (!protocol::originAllowed(std::string_view(origin), host != nullptr ? host : "", m_config.allowedOrigins))
        return;
    soup_message_headers_replace(response, "Access-Control-Allow-Origin", origin);
    soup_message_headers_replace(response, "Access-Control-Expose-Headers", "Location, ETag, Link");
}

bool Server::Impl::authorized(SoupServerMessage* msg, std::string_view room) {
    if (m_config.adminToken.empty()) return true;
    const std::optional<std::string> token = bearer(msg);
    if (token && (tokensEqual(*token, m_config.adminToken) || roomAdmin(*token, room))) return true;
    const bool sent =
        soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Authorization") != nullptr;
    respondError(msg, SOUP_STATUS_UNAUTHORIZED, ErrorCode::Unauthorized,
                 sent ? "invalid admin token" : "this API needs \"Authorization: Bearer <token>\"");
    return false;
}

// A room token with the admin grant opens that room's part of the API.
bool Server::Impl::roomAdmin(std::string_view bearer, std::string_view room) const {
    if (room.empty() || m_config.tokenSecret.empty()) return false;
    try {
        const protocol::RoomTokenClaims claims = auth::verifyRoomToken(bearer, m_config.tokenSecret);
        protocol::checkRoomToken(claims, room, g_get_real_time() / G_USEC_PER_SEC);
        return claims.grants.admin;
    } catch (const Error&) {
        return false;
    }
}

void Server::Impl::routeApi(SoupServerMessage* msg, const std::vector<std::string>& segments) {
    const std::size_t n = segments.size();
    if (n == 2 && segments[0] == "layouts" && segments[1] == "reload") {
        // An extension (marked in docs/protocol.md): what SIGHUP does, with the outcome in the reply.
        if (allowMethods(msg, "POST"))
            respondJson(msg, SOUP_STATUS_OK, api::serializeLayoutNames(m_rooms.reloadLayouts()));
        return;
    }
    if (n == 0 || segments[0] != "rooms") throw Error(ErrorCode::NotFound, "no such endpoint");
    if (n == 1) {
        if (allowMethods(msg, "GET")) respondJson(msg, SOUP_STATUS_OK, api::serialize(m_rooms.list()));
        return;
    }
    const std::string& room = segments[1];
    if (n == 2) {
        if (allowMethods(msg, "GET")) respondJson(msg, SOUP_STATUS_OK, api::serialize(m_rooms.detail(room)));
    } else if (n == 3 && segments[2] == "layout") {
        if (!allowMethods(msg, "PUT")) return;
        m_rooms.setLayout(room, api::parseLayoutRequest(requestBody(msg)));
        // The room as it is now, so the caller sees the layout it set.
        respondJson(msg, SOUP_STATUS_OK, api::serialize(m_rooms.detail(room)));
    } else if (n == 3 && segments[2] == "recording") {
        if (!allowMethods(msg, "POST, DELETE")) return;
        if (method(msg) == "POST") {
            const std::string file = m_rooms.startRecording(room, api::parseRecordingStart(requestBody(msg)).format);
            respondJson(msg, SOUP_STATUS_CREATED, api::serializeRecordingStarted(file));
            return;
        }
        // The answer waits until the file is finalised; the main loop does not.
        auto held = Ref<SoupServerMessage>::borrow(msg);
        m_rooms.stopRecording(room, [alive = m_liveness.weak(), held](const media::RecordingResult& result) {
            if (!alive.lock()) return; // the server is gone: nobody to answer
            if (result.error.empty()) {
                respondJson(held.get(), SOUP_STATUS_OK, api::serializeRecordingStopped(result.file, result.duration));
            } else {
                respondError(held.get(), SOUP_STATUS_INTERNAL_SERVER_ERROR, ErrorCode::Internal, result.error);
            }
            soup_server_message_unpause(held.get());
        });
        // stopRecording never answers from inside the call, so this comes first.
        soup_server_message_pause(msg);
    } else if ((n == 3 || n == 4) && segments[2] == "live") {
        if (n == 3 && !allowMethods(msg, "GET, POST, DELETE")) return;
        if (n == 4 && !allowMethods(msg, "DELETE")) return;
        if (method(msg) == "GET") {
            respondJson(msg, SOUP_STATUS_OK, api::serializeLive(m_rooms.live(room)));
            return;
        }
        if (method(msg) == "POST") {
            respondJson(msg, SOUP_STATUS_CREATED,
                        api::serializeLive(m_rooms.startLive(room, api::parseLiveStart(requestBody(msg)))));
            return;
        }
        respondJson(msg, SOUP_STATUS_OK, api::serializeLive(m_rooms.stopLive(room, n == 4 ? segments[3] : "")));
    } else if (n == 4 && segments[2] == "participants") {
        if (!allowMethods(msg, "DELETE")) return;
        m_rooms.kick(room, segments[3]);
        respond(msg, SOUP_STATUS_NO_CONTENT, nullptr, {});
    } else {
        throw Error(ErrorCode::NotFound, "no such endpoint");
    }
}

void Server::Impl::serveStatic(SoupServerMessage* msg, std::string_view path) {
    if (!allowMethods(msg, "GET")) return;
    const std::optional<fs::path> file = staticFile(path);
    if (!file) throw Error(ErrorCode::NotFound, "not found");
    gchar* contents = nullptr;
    gsize length = 0;
    if (!g_file_get_contents(file->c_str(), &contents, &length, nullptr)) throw Error(ErrorCode::NotFound, "not found");
    soup_server_message_set_status(msg, SOUP_STATUS_OK, nullptr);
    SoupMessageHeaders* headers = soup_server_message_get_response_headers(msg);
    soup_message_headers_replace(headers, "X-Content-Type-Options", "nosniff");
    // The web client changes with the server: always revalidate.
    soup_message_headers_replace(headers, "Cache-Control", "no-cache");
    soup_server_message_set_response(msg, contentType(*file), SOUP_MEMORY_TAKE, contents, length);
}

// The file under the web root that `path` names, or nullopt. Only regular
// files whose real path (symlinks resolved) is inside the root qualify; "..",
// "." and hidden segments are refused outright.
std::optional<fs::path> Server::Impl::staticFile(std::string_view path) const {
    if (m_wwwRoot.empty()) return std::nullopt;
    const auto segments = pathSegments(path);
    if (!segments) return std::nullopt;
    fs::path file = m_wwwRoot;
    for (const std::string& segment : *segments) {
        if (segment.empty()) continue; // "//" and a trailing "/"
        if (segment.starts_with('.') || segment.find('\\') != std::string::npos) return std::nullopt;
        file /= segment;
    }
    std::error_code ec;
    if (fs::is_directory(file, ec)) file /= "index.html";
    // A page by its name alone: /watch is watch.html.
    if (!fs::exists(file, ec) && !file.has_extension()) file += ".html";
    const fs::path real = fs::canonical(file, ec);
    if (ec || !isUnder(real, m_wwwRoot) || !fs::is_regular_file(real, ec)) return std::nullopt;
    return real;
}

Server::Server(const Config& config, room::Rooms& rooms) : m_impl(std::make_unique<Impl>(config, rooms)) {}

Server::~Server() = default;

void Server::start() { m_impl->start(); }

void Server::reloadCertificate() { m_impl->reloadCertificate(); }

bool Server::tls() const noexcept { return m_impl->tls(); }

std::uint16_t Server::port() const noexcept { return m_impl->port(); }

std::string Server::url() const {
    const std::string& host = m_impl->host();
    return std::string(tls() ? "https://" : "http://") +
           (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port());
}

} // namespace tessera::server
