#pragma once
// HTTP helpers the server's handlers share (libsoup 3). Thread: main.
#include <libsoup/soup.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/protocol/error.h"

namespace tessera::server::http {

std::string_view method(SoupServerMessage* msg);
// Sets the status and, with a content type, the body.
void respond(SoupServerMessage* msg, guint status, const char* contentType, std::string_view body);
void respondJson(SoupServerMessage* msg, guint status, std::string_view body);
// {"error": {code, message}} (docs/protocol.md, HTTP API).
void respondError(SoupServerMessage* msg, guint status, ErrorCode code, std::string_view message);
// With the status that belongs to the error's code.
void respondError(SoupServerMessage* msg, const Error& error);
// Answers 405 unless the request's method is one of `allowed` (a
// comma-separated list, as the Allow header wants it). GET allows HEAD.
bool allowMethods(SoupServerMessage* msg, std::string_view allowed);
std::string requestBody(SoupServerMessage* msg);
// The token of an `Authorization: Bearer <token>` header (the scheme name in
// any case, RFC 9110 11.1); nullopt without one.
std::optional<std::string> bearer(SoupServerMessage* msg);
// Splits "/a/b%20c" into {"a", "b c"} ("" into {}); nullopt for a bad
// escape, an escaped '/' or an escaped NUL.
std::optional<std::vector<std::string>> pathSegments(std::string_view path);

} // namespace tessera::server::http
