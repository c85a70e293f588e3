#pragma once
// The `Origin` check of the WebSocket upgrade and of state-changing API
// requests (docs/protocol.md "Origin"): a page from another site must not
// drive the server through a visitor's browser. Pure string logic.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::protocol {

// "scheme://host[:port]" in lower case without a default port (80 for http,
// 443 for https) or trailing slash; nullopt for anything else ("null", a
// path, another scheme, userinfo).
std::optional<std::string> normaliseOrigin(std::string_view origin);

// Whether a request may go on: it has no Origin (not a browser, or a
// same-origin GET), its Origin's host and port are the request's Host
// header's, or its Origin is in `allowed` (normalised origins; "*" allows any).
// `origin` and `host` are the raw header values, nullopt when absent.
bool originAllowed(const std::optional<std::string_view>& origin, std::string_view host,
                   const std::vector<std::string>& allowed);

} // namespace tessera::protocol
