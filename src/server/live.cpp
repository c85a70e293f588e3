#define G_LOG_DOMAIN "tessera-server"
#include "live.h"

#include <glib.h>

#include <string_view>

#include "http.h"
#include "tessera/glib/raii.h"
#include "tessera/protocol/error.h"

namespace tessera::server {
namespace {

// The only names hlssink2 writes for us (pipelines/live-hls.pipeline; the
// server sets them): a request for anything else never reaches the file
// system, so no path, link or other room's file can be named.
bool isPlaylist(std::string_view name) { return name == "index.m3u8"; }
bool isSegment(std::string_view name) {
    constexpr std::string_view kPrefix = "segment", kSuffix = ".ts";
    if (!name.starts_with(kPrefix) || !name.ends_with(kSuffix)) return false;
    const std::string_view digits = name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
    if (digits.empty() || digits.size() > 10) return false;
    for (const char c : digits)
        if (!g_ascii_isdigit(c)) return false;
    return true;
}

} // namespace

void serveLive(SoupServerMessage* msg, const room::Rooms& rooms, const std::vector<std::string>& segments) {
    if (!http::allowMethods(msg, "GET")) return;
    if (segments.size() != 2 || (!isPlaylist(segments[1]) && !isSegment(segments[1])))
        throw Error(ErrorCode::NotFound, "not found");
    const std::optional<std::string> directory = rooms.hlsDirectory(segments[0]);
    if (!directory) throw Error(ErrorCode::NotFound, "room '" + segments[0].substr(0, 64) + "' does not stream HLS");
    const std::string path = *directory + "/" + segments[1];
    // Mapped, not read: a segment is ~0.5 MB and many viewers ask for the same one.
    GError* error = nullptr;
    GMappedFile* mapped = g_mapped_file_new(path.c_str(), FALSE, &error);
    if (!mapped) {
        g_clear_error(&error);
        // Not written yet (the first segment takes a few seconds) or deleted (older than the playlist).
        throw Error(ErrorCode::NotFound, "not found");
    }
    GBytes* bytes = g_mapped_file_get_bytes(mapped);
    g_mapped_file_unref(mapped);
    soup_server_message_set_status(msg, SOUP_STATUS_OK, nullptr);
    SoupMessageHeaders* headers = soup_server_message_get_response_headers(msg);
    soup_message_headers_replace(headers, "X-Content-Type-Options", "nosniff");
    // Players on other sites (hls.js on a page elsewhere) may read the stream.
    soup_message_headers_replace(headers, "Access-Control-Allow-Origin", "*");
    // The playlist changes every segment; a segment never changes once listed.
    soup_message_headers_replace(headers, "Cache-Control", isPlaylist(segments[1]) ? "no-cache" : "max-age=60");
    soup_message_headers_set_content_type(
        headers, isPlaylist(segments[1]) ? "application/vnd.apple.mpegurl" : "video/mp2t", nullptr);
    soup_message_body_append_bytes(soup_server_message_get_response_body(msg), bytes);
    g_bytes_unref(bytes);
}

} // namespace tessera::server
