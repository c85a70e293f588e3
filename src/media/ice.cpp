#include "ice.h"

#include <gio/gio.h>
#include <interfaces.h>

#include "gst_util.h"

namespace tessera::media {
namespace {

bool isLoopback(const std::string& host) {
    if (host == "localhost") return true;
    Ref<GInetAddress> address = Ref<GInetAddress>::adopt(g_inet_address_new_from_string(host.c_str()));
    return address && g_inet_address_get_is_loopback(address.get());
}

// libnice's own list of this host's addresses.
std::vector<std::string> localAddresses(bool withLoopback) {
    std::vector<std::string> out;
    GList* ips = nice_interfaces_get_local_ips(withLoopback);
    for (GList* i = ips; i; i = i->next) {
        out.emplace_back(static_cast<const char*>(i->data));
        g_free(i->data);
    }
    g_list_free(ips);
    return out;
}

} // namespace

std::vector<std::string> iceAddresses(const Config& config) {
    if (!config.iceAddresses.empty()) return config.iceAddresses;
    if (isLoopback(config.host)) return localAddresses(true);
    return {};
}

std::string iceProblem(const Config& config) {
    if (!iceAddresses(config).empty() || !localAddresses(false).empty()) return "";
    return "the server has no address to offer ICE candidates on: this host has no network interface but loopback, "
           "and the server listens on " +
           config.host +
           ", not on loopback; start it with --ice-address 127.0.0.1 (or --host 127.0.0.1) for clients "
           "on this host";
}

} // namespace tessera::media
