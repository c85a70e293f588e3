#pragma once
// The HTTP front door (libsoup 3 on the GLib main context): the signaling
// WebSocket at /ws, the REST API, /healthz, /metrics and the static web
// client. Main thread only.
#include <cstdint>
#include <memory>
#include <string>

#include "tessera/protocol/config.h"
#include "tessera/room/rooms.h"

namespace tessera::server {

class Server {
public:
    // Borrows `rooms`, which must outlive the server.
    Server(const Config& config, room::Rooms& rooms);
    // Closes every WebSocket session (each leaves its room) and stops listening.
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Listens on config host:port, HTTPS and WSS when config.tls names a
    // certificate. Throws Error(Internal) when it cannot.
    void start();
    // Re-reads config.tls's files (SIGHUP): new connections get the new
    // certificate, open ones keep theirs. Throws Error(Internal), keeping the
    // old one, when they cannot be loaded. Without TLS does nothing.
    void reloadCertificate();
    bool tls() const noexcept;
    // The port actually listened on (config port 0 picks a free one); 0 before start().
    std::uint16_t port() const noexcept;
    // "http://HOST:PORT" ("https://" with TLS), IPv6 hosts in brackets.
    std::string url() const;

private:
    class Impl;
    std::unique_ptr<Impl> m_impl;
};

} // namespace tessera::server
