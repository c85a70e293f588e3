#include "http.h"

#include "tessera/glib/raii.h"
#include "tessera/protocol/api.h"

namespace tessera::server::http {

using glib::GCharPtr;

std::string_view method(SoupServerMessage* msg) { return soup_server_message_get_method(msg); }

void respond(SoupServerMessage* msg, guint status, const char* contentType, std::string_view body) {
    soup_server_message_set_status(msg, status, nullptr);
    SoupMessageHeaders* headers = soup_server_message_get_response_headers(msg);
    soup_message_headers_replace(headers, "X-Content-Type-Options", "nosniff");
    if (contentType != nullptr) {
        soup_server_message_set_response(msg, contentType, SOUP_MEMORY_COPY, body.data(), body.size());
    }
}

void respondJson(SoupServerMessage* msg, guint status, std::string_view body) {
    respond(msg, status, "application/json", body);
}

void respondError(SoupServerMessage* msg, guint status, ErrorCode code, std::string_view message) {
    // Every 401 names the scheme that gets past it (RFC 9110 11.6.1): the API's
    // admin token and WHIP/WHEP's join or room token are all bearer tokens.
    if (status == SOUP_STATUS_UNAUTHORIZED)
        soup_message_headers_replace(soup_server_message_get_response_headers(msg), "WWW-Authenticate",
                                     "Bearer realm=\"tessera\"");
    respondJson(msg, status, api::serializeError(code, message));
}

void respondError(SoupServerMessage* msg, const Error& error) {
    respondError(msg, static_cast<guint>(httpStatus(error.code())), error.code(), error.what());
}

bool allowMethods(SoupServerMessage* msg, std::string_view allowed) {
    const std::string_view m = method(msg);
    const std::string_view asked = m == "HEAD" ? "GET" : m;
    std::string_view rest = allowed;
    while (!rest.empty()) {
        const std::size_t comma = rest.find(',');
        std::string_view item = rest.substr(0, comma);
        while (item.starts_with(' ')) item.remove_prefix(1);
        if (item == asked) return true;
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow", std::string(allowed).c_str());
    respondError(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, ErrorCode::BadRequest,
                 std::string(m) + " is not allowed here (allowed: " + std::string(allowed) + ")");
    return false;
}

std::string requestBody(SoupServerMessage* msg) {
    SoupMessageBody* body = soup_server_message_get_request_body(msg);
    GBytes* bytes = soup_message_body_flatten(body);
    gsize size = 0;
    const auto* data = static_cast<const char*>(g_bytes_get_data(bytes, &size));
    std::string out(data != nullptr ? data : "", size);
    g_bytes_unref(bytes);
    return out;
}

std::optional<std::string> bearer(SoupServerMessage* msg) {
    const char* header = soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Authorization");
    constexpr std::string_view kScheme = "Bearer ";
    const std::string_view value = header != nullptr ? header : "";
    if (value.size() <= kScheme.size() || g_ascii_strncasecmp(value.data(), kScheme.data(), kScheme.size()) != 0)
        return std::nullopt;
    return std::string(value.substr(kScheme.size()));
}

std::optional<std::vector<std::string>> pathSegments(std::string_view path) {
    std::vector<std::string> out;
    if (path.empty()) return out;
    if (!path.starts_with('/')) return std::nullopt;
    path.remove_prefix(1);
    for (;;) {
        const std::size_t slash = path.find('/');
        const std::string raw(path.substr(0, slash));
        GCharPtr decoded(g_uri_unescape_string(raw.c_str(), "/"));
        if (!decoded) return std::nullopt;
        out.emplace_back(decoded.get());
        if (slash == std::string_view::npos) return out;
        path.remove_prefix(slash + 1);
    }
}

} // namespace tessera::server::http
