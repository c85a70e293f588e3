// tessera-client --janus: joins a Janus AudioBridge room through Janus's
// JSON API over HTTP instead of Tessera's WebSocket (the benchmark's
// audio-MCU peer). Thread: main.
#include "client_impl.h"

namespace tessera::client {

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
                        c.event("open");
                        Json create = {{"janus", "message"},
                                       {"body",
                                        {{"request", "create"},
                                         {"room", c.m_options.janusRoom},
                                         {"sampling_rate", 48000},
                                         {"permanent", false}}}};
                        c.janusPost(c.m_janusPath, std::move(create), [handle](Client& c, const Json&) {
                            c.m_id = std::to_string(handle);
                            c.event("joined", {{"id", c.m_id},
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
    httpSend("POST", m_options.janus + path, "application/json", text,
             [then = std::move(then)](Client& c, SoupMessage*, GBytes* reply, const std::string& error) {
                 c.onJanusReply(reply, error, then);
             });
}

// Long poll for the plugin's events (the join's answer); it also keeps the
// Janus session alive.
void Client::janusPoll() {
    if (m_finishing || m_janusSessionPath.empty()) return;
    httpSend("GET", m_options.janus + m_janusSessionPath + "?maxev=10", nullptr, {},
             [](Client& c, SoupMessage*, GBytes* reply, const std::string& error) {
                 c.onJanusReply(reply, error, [](Client& c, const Json& r) {
                     if (r.is_array())
                         for (const auto& e : r) c.onJanusEvent(e);
                     else
                         c.onJanusEvent(r);
                     c.janusPoll();
                 });
             });
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

void Client::onJanusReply(GBytes* body, const std::string& error, const JanusReply& then) {
    if (!body) {
        localError("janus: " + error);
        return;
    }
    const Json reply = Json::parse(bodyText(body), nullptr, false);
    if (reply.is_object() && reply.value("janus", "") == "error") {
        localError("janus: " + reply.dump());
        return;
    }
    then(*this, reply);
}

} // namespace tessera::client
