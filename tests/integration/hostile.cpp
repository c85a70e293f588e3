#include "hostile.h"

#include <cstdio>

#include <catch2/catch.hpp>
#include <gio/gio.h>

namespace tessera::testing {

namespace {

// A plain TCP connection to the server of `http` (http://HOST:PORT), for
// bytes no well-behaved client library would send; nullptr on failure.
GSocketConnection* connectTcp(const std::string& http) {
    const std::string hostPort = http.substr(http.find("//") + 2);
    GSocketClient* client = g_socket_client_new();
    GError* error = nullptr;
    GSocketConnection* connection = g_socket_client_connect_to_host(client, hostPort.c_str(), 80, nullptr, &error);
    g_object_unref(client);
    if (connection == nullptr) WARN("connect " << hostPort << ": " << (error ? error->message : "?"));
    g_clear_error(&error);
    return connection;
}

} // namespace

Json joinMessage(const std::string& room, const std::string& name) {
    return Json{{"type", "join"}, {"room", room}, {"name", name}};
}

void keepsReceiving(Client& client) {
    const auto before = client.report().value("frames", 0);
    const auto later = client.waitReport([&](const Json& r) { return r.value("frames", 0) > before + 30; });
    INFO("client " << client.options().name << ", log " << client.process().logPath());
    CHECK(later.value("frames", 0) > before + 30);
}

int chunkedPut(const std::string& http, const std::string& path, const std::string& body) {
    const std::string hostPort = http.substr(http.find("//") + 2);
    GSocketConnection* connection = connectTcp(http);
    if (connection == nullptr) return 0;
    GError* error = nullptr;
    GOutputStream* out = g_io_stream_get_output_stream(G_IO_STREAM(connection));
    const auto write = [&](const std::string& bytes) {
        return error == nullptr && g_output_stream_write_all(out, bytes.data(), bytes.size(), nullptr, nullptr, &error);
    };
    write("PUT " + path + " HTTP/1.1\r\nHost: " + hostPort +
          "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    constexpr std::size_t kChunk = 64 * 1024;
    for (std::size_t at = 0; at < body.size(); at += kChunk) {
        const std::string chunk = body.substr(at, kChunk);
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
        write(size + chunk + "\r\n");
    }
    write("0\r\n\r\n");
    int status = 0;
    if (error == nullptr) {
        GDataInputStream* in = g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(connection)));
        if (char* line = g_data_input_stream_read_line(in, nullptr, nullptr, &error)) {
            std::sscanf(line, "HTTP/1.%*d %d", &status);
            g_free(line);
        }
        g_object_unref(in);
    }
    if (error != nullptr) WARN("chunked PUT " << path << ": " << error->message);
    g_clear_error(&error);
    g_object_unref(connection);
    return status;
}

int fragmentedMessage(const std::string& http, int fragments) {
    GSocketConnection* connection = connectTcp(http);
    if (connection == nullptr) return -1;
    GError* error = nullptr;
    GOutputStream* out = g_io_stream_get_output_stream(G_IO_STREAM(connection));
    GDataInputStream* in = g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(connection)));
    const auto write = [&](const std::string& bytes) {
        return error == nullptr && g_output_stream_write_all(out, bytes.data(), bytes.size(), nullptr, nullptr, &error);
    };
    write("GET /ws HTTP/1.1\r\nHost: " + http.substr(http.find("//") + 2) +
          "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
          "Sec-WebSocket-Version: 13\r\n\r\n");
    // The 101 response ends with an empty line.
    bool upgraded = false;
    while (char* line = g_data_input_stream_read_line(in, nullptr, nullptr, &error)) {
        const std::string text(line);
        g_free(line);
        if (text.starts_with("HTTP/1.1 101")) upgraded = true;
        if (text.empty() || text == "\r") break;
    }
    int result = -1;
    if (upgraded) {
        constexpr std::size_t kFragment = 60000;
        // Client frames are masked; a zero mask leaves the payload as it is.
        const std::string payload(kFragment, ' ');
        for (int i = 0; i < fragments && error == nullptr; ++i) {
            const bool last = i == fragments - 1;
            std::string frame;
            frame += static_cast<char>((last ? 0x80 : 0x00) | (i == 0 ? 0x1 : 0x0));
            frame += static_cast<char>(0x80 | 126);
            frame += static_cast<char>(kFragment >> 8);
            frame += static_cast<char>(kFragment & 0xff);
            frame += std::string(4, '\0');
            write(frame + payload);
        }
        // A write error is the server closing: its close frame is still readable.
        g_clear_error(&error);
        guint8 header[4] = {};
        gsize got = 0;
        if (g_input_stream_read_all(G_INPUT_STREAM(in), header, sizeof header, &got, nullptr, &error) && got >= 2) {
            result = (header[0] & 0x0f) == 0x8 && got == 4 ? (header[2] << 8) | header[3] : 0;
        }
    }
    g_clear_error(&error);
    g_object_unref(in);
    g_object_unref(connection);
    return result;
}

} // namespace tessera::testing
