#include "tessera/protocol/origin.h"

#include <algorithm>
#include <cctype>

namespace tessera::protocol {
namespace {

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// "host" or "host:port" ("[v6]:port"), lower case, without `defaultPort`.
std::optional<std::string> authority(std::string_view text, std::string_view defaultPort) {
    if (text.empty()) return std::nullopt;
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (!std::isalnum(u) && c != '.' && c != '-' && c != ':' && c != '[' && c != ']' && c != '_') {
            return std::nullopt;
        }
    }
    std::string out = lower(text);
    const std::size_t bracket = out.rfind(']');
    const std::size_t colon = out.rfind(':');
    if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
        const std::string_view port = std::string_view(out).substr(colon + 1);
        if (port.empty() || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            return std::nullopt;
        }
        if (port == defaultPort) out.erase(colon);
    }
    return out;
}

} // namespace

std::optional<std::string> normaliseOrigin(std::string_view origin) {
    const std::size_t sep = origin.find("://");
    if (sep == std::string_view::npos) return std::nullopt;
    const std::string scheme = lower(origin.substr(0, sep));
    if (scheme != "http" && scheme != "https") return std::nullopt;
    std::string_view rest = origin.substr(sep + 3);
    if (rest.ends_with('/')) rest.remove_suffix(1);
    const auto host = authority(rest, scheme == "http" ? "80" : "443");
    if (!host) return std::nullopt;
    return scheme + "://" + *host;
}

bool originAllowed(const std::optional<std::string_view>& origin, std::string_view host,
                   const std::vector<std::string>& allowed) {
    if (!origin) return true;
    if (std::find(allowed.begin(), allowed.end(), "*") != allowed.end()) return true;
    const auto normal = normaliseOrigin(*origin);
    if (!normal) return false;
    if (std::find(allowed.begin(), allowed.end(), *normal) != allowed.end()) return true;
    const std::size_t sep = normal->find("://");
    const bool https = normal->compare(0, sep, "https") == 0;
    const auto requested = authority(host, https ? "443" : "80");
    return requested && *requested == normal->substr(sep + 3);
}

} // namespace tessera::protocol
