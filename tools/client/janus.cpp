// tessera-client --janus: joins a Janus AudioBridge room through Janus's
// JSON API over HTTP instead of Tessera's WebSocket (the benchmark's
// audio-MCU peer). Thread: main.
#include "client_impl.h"

namespace tessera::client {
namespace {

struct JanusCall {
    std::weak_ptr<Client> client;
    std::function<void(Client&, const Json&)> then;
};

} // namespace

// session -> attach the AudioBridge plugin -> create the room (an "already
// exists" error is fine: another client made it) -> "joined" -> offer.
void Client::janusStart() {
    janusPost("", {{"janus", "create"}}, [](Client& c, const Json& r) {
        c.m_janusSessionPath = "/" + std::to_string(r.at("data").at("id").get<std::uint64_t>());
        c.janusPost(c.m_janusSessionPath, {{"janus", "attach"}, {"plugin", "janus.plugin.audiobridge"}},
                    [](Client& c, const Json& r) {
                        const auto handle = r.at("data").at("id").get<std::uint64_t>();
                        c.m_janusPath = c.m_janusSessionPath + "/" + std::to_string(handle);
                        c.janusPoll();
                        emitEvent("open");
                        Json create = {{"janus", "message"},
                                       {"body",
                                        {{"request", "create"},
                                         {"room", c.m_options.janusRoom},
                                         {"sampling_rate", 48000},
                                         {"permanent", false}}}};
                        c.janusPost(c.m_janusPath, std::move(create), [handle](Client& c, const Json&) {
                            c.m_id = std::to_string(handle);
                            emitEvent("joined", {{"id", c.m_id},
                                                 {"room", std::to_string(c.m_options.janusRoom)},
                                                 {"participants", Json::array()}});
                            c.createOffer();
                        });
                    });
    });
}

void Client::janusPost(const std::string& path, Json body, JanusReply then) {
    body["transaction"] = "t" + std::to_string(++m_janusTransaction);
    const std::string text = body.dump();
    GST_DEBUG("janus -> %s %s", path.c_str(), text.c_str());
    SoupMessage* message = soup_message_new("POST", (m_options.janus + path).c_str());
    if (!message) {
        localError("bad --janus URL " + m_options.janus);
        return;
    }
    GBytes* bytes = g_bytes_new(text.data(), text.size());
    soup_message_set_request_body_from_bytes(message, "application/json", bytes);
    g_bytes_unref(bytes);
    soup_session_send_and_read_async(m_session.get(), message, G_PRIORITY_DEFAULT, m_cancellable.get(), onJanusReplyCb,
                                     new JanusCall{weak_from_this(), std::move(then)});
    g_object_unref(message);
}

// Long poll for the plugin's events (the join's answer); it also keeps the
// Janus session alive.
void Client::janusPoll() {
    if (m_finishing || m_janusSessionPath.empty()) return;
    SoupMessage* message = soup_message_new("GET", (m_options.janus + m_janusSessionPath + "?maxev=10").c_str());
    if (!message) return;
    soup_session_send_and_read_async(m_session.get(), message, G_PRIORITY_DEFAULT, m_cancellable.get(), onJanusReplyCb,
                                     new JanusCall{weak_from_this(), [](Client& c, const Json& r) {
                                                       if (r.is_array())
                                                           for (const auto& e : r) c.onJanusEvent(e);
                                                       else
                                                           c.onJanusEvent(r);
                                                       c.janusPoll();
                                                   }});
    g_object_unref(message);
}

void Client::onJanusEvent(const Json& event) {
    GST_DEBUG("janus <- %s", event.dump().c_str());
    const std::string kind = event.value("janus", "");
    if (event.contains("jsep") && event["jsep"].value("type", "") == "answer") {
        handle(proto::Answer{event["jsep"].value("sdp", "")});
    } else if (kind == "hangup" || kind == "detached") {
        localError("janus: " + kind);
    } else if (event.contains("plugindata")) {
        const Json& data = event["plugindata"].value("data", Json::object());
        if (data.contains("error")) m_errors.push_back(data.value("error", ""));
    }
}

// Thread: main (libsoup).
void Client::onJanusReplyCb(GObject* source, GAsyncResult* result, gpointer user) noexcept {
    const std::unique_ptr<JanusCall> call(static_cast<JanusCall*>(user));
    glib::guarded("janus reply", [&] {
        GError* error = nullptr;
        GBytes* bytes = soup_session_send_and_read_finish(SOUP_SESSION(source), result, &error);
        const GErrorPtr owned(error);
        auto self = call->client.lock();
        if (!self || self->m_finishing) {
            if (bytes) g_bytes_unref(bytes);
            return;
        }
        if (!bytes) {
            self->localError(std::string("janus: ") + (error ? error->message : "request failed"));
            return;
        }
        gsize size = 0;
        const auto* data = static_cast<const char*>(g_bytes_get_data(bytes, &size));
        const Json reply = Json::parse(std::string_view(data ? data : "", size), nullptr, false);
        g_bytes_unref(bytes);
        if (reply.is_object() && reply.value("janus", "") == "error") {
            self->localError("janus: " + reply.dump());
            return;
        }
        call->then(*self, reply);
    });
}

} // namespace tessera::client
