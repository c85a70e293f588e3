#include "tessera/protocol/turn_credentials.h"

#include <glib.h>

#include <algorithm>
#include <memory>

#include "tessera/glib/raii.h"
#include "tessera/protocol/config.h"

namespace tessera::protocol {

TurnCredential turnCredential(std::string_view secret, std::int64_t expiresAt, std::string_view who) {
    TurnCredential out;
    out.username = std::to_string(expiresAt) + ":" + std::string(who);
    std::unique_ptr<GHmac, decltype(&g_hmac_unref)> hmac(
        g_hmac_new(G_CHECKSUM_SHA1, reinterpret_cast<const guchar*>(secret.data()), secret.size()), g_hmac_unref);
    g_hmac_update(hmac.get(), reinterpret_cast<const guchar*>(out.username.data()),
                  static_cast<gssize>(out.username.size()));
    guint8 digest[20];
    gsize length = sizeof digest;
    g_hmac_get_digest(hmac.get(), digest, &length);
    const glib::GCharPtr base64(g_base64_encode(digest, length));
    out.credential = base64.get();
    return out;
}

std::vector<IceServer> iceServersFor(const Config& config, std::string_view who, std::int64_t now) {
    if (config.turn.secret.empty()) return config.iceServers;
    const auto minted = [&](const std::string& url) {
        return std::find(config.turn.urls.begin(), config.turn.urls.end(), url) != config.turn.urls.end();
    };
    std::vector<IceServer> servers;
    for (IceServer server : config.iceServers) {
        std::erase_if(server.urls, minted);
        if (!server.urls.empty()) servers.push_back(std::move(server));
    }
    const TurnCredential c = turnCredential(config.turn.secret, now + config.turn.ttlSeconds, who);
    servers.push_back(IceServer{config.turn.urls, c.username, c.credential});
    return servers;
}

} // namespace tessera::protocol
