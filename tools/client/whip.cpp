// tessera-client --whip: publishes through WHIP (RFC 9725) over HTTP instead
// of Tessera's WebSocket, as an encoder (OBS, ffmpeg) does; --whep watches
// the room's mix through WHEP, as a player does, with the same exchange and
// a receive-only offer: the offer is POSTed, the 201 carries the answer
// (with every server candidate), the resource's Location and the ICE
// servers to use (Link headers: the offer becomes the local description,
// which starts gathering, only then), our candidates are PATCHed to the
// resource as application/trickle-ice-sdpfrag (RFC 8840), and DELETE
// leaves. There is no channel back: no room events. Thread: main.
#include "client_impl.h"

#include <utility>

#include "tessera/protocol/whip.h"

namespace tessera::client {

void Client::whipPublish(const GstSDPMessage* offer, const std::string& text) {
    // What the PATCH fragments repeat of the offer: its ICE credentials and
    // an m= line (with its mid) per section.
    m_whipMLines.clear();
    for (guint i = 0; i < gst_sdp_message_medias_len(offer); ++i) {
        const GstSDPMedia* media = gst_sdp_message_get_media(offer, i);
        std::string line = std::string("m=") + gst_sdp_media_get_media(media) + " 9 " + gst_sdp_media_get_proto(media);
        for (guint f = 0; f < gst_sdp_media_formats_len(media); ++f)
            line += std::string(" ") + gst_sdp_media_get_format(media, f);
        m_whipMLines.push_back(line);
        if (m_whipUfrag.empty()) {
            const char* ufrag = gst_sdp_media_get_attribute_val(media, "ice-ufrag");
            const char* pwd = gst_sdp_media_get_attribute_val(media, "ice-pwd");
            m_whipUfrag = ufrag ? ufrag : "";
            m_whipPwd = pwd ? pwd : "";
        }
    }
    m_whipPending.resize(m_whipMLines.size());
    event("open");
    httpSend("POST", m_options.whip, "application/sdp", text,
             [](Client& c, SoupMessage* message, GBytes* body, const std::string& error) {
                 c.onWhipPublished(message, body, error);
             });
}

void Client::onWhipPublished(SoupMessage* message, GBytes* body, const std::string& error) {
    const guint status = message ? soup_message_get_status(message) : 0;
    const char* location =
        message ? soup_message_headers_get_one(soup_message_get_response_headers(message), "Location") : nullptr;
    GUri* base = message ? soup_message_get_uri(message) : nullptr;
    GUri* resource = base && location
                         ? g_uri_parse_relative(base, location, static_cast<GUriFlags>(SOUP_HTTP_URI_FLAGS), nullptr)
                         : nullptr;
    const std::string answer = bodyText(body);
    if (status != SOUP_STATUS_CREATED || !resource) {
        if (resource) g_uri_unref(resource);
        // The server's refusal, as the WebSocket's `error` event reports one.
        if (status != 0) {
            m_errors.push_back(answer);
            event("error", {{"status", status}, {"message", answer}});
        }
        localError(std::string(whipLabel()) + " POST to " + m_options.whip + " failed: " +
                   (status != 0 ? "status " + std::to_string(status) + (location ? "" : ", no Location") : error));
        setState(State::Failed);
        finish();
        return;
    }
    GCharPtr url(g_uri_to_string(resource));
    g_uri_unref(resource);
    m_whipResource = url.get();
    // The ETag is the participant's id, quoted (docs/protocol.md); the
    // resource URL is a secret of its own.
    const char* etag = soup_message_headers_get_one(soup_message_get_response_headers(message), "ETag");
    m_id = etag != nullptr ? etag : "";
    if (m_id.size() >= 2 && m_id.front() == '"' && m_id.back() == '"') m_id = m_id.substr(1, m_id.size() - 2);
    // The STUN and TURN servers the server offers (RFC 9725 section 4.6), as
    // `joined`'s iceServers are on the WebSocket: ICE gathers once our offer
    // is the local description, with them.
    const char* links = soup_message_headers_get_list(soup_message_get_response_headers(message), "Link");
    const auto servers = proto::whip::parseIceServerLinks(links ? links : "");
    useIceServers(servers);
    event(
        "joined",
        {{"id", m_id}, {"resource", m_whipResource}, {"participants", Json::array()}, {"iceServers", servers.size()}});
    if (m_whipOffer) setLocalDescription(std::exchange(m_whipOffer, {}));
    handle(proto::Answer{answer});
    whipFlush(); // what was gathered while the POST was out
}

void Client::whipTrickle(unsigned mline, const std::string& candidate) {
    if (candidate.empty())
        m_whipEnd = true;
    else if (mline < m_whipPending.size())
        m_whipPending[mline].push_back("a=" + candidate);
    whipFlush();
}

// One PATCH with every candidate waiting, grouped by m= section, once the
// resource exists and the previous PATCH is answered.
void Client::whipFlush() {
    if (!whipResourceLive() || m_whipPatching || m_whipEndSent || m_leaving) return;
    std::string fragment = "a=ice-ufrag:" + m_whipUfrag + "\r\na=ice-pwd:" + m_whipPwd + "\r\n";
    std::size_t count = 0;
    for (std::size_t i = 0; i < m_whipPending.size(); ++i) {
        if (m_whipPending[i].empty() && !(m_whipEnd && i == 0)) continue;
        fragment += m_whipMLines[i] + "\r\na=mid:" + (i < m_mids.size() ? m_mids[i] : std::to_string(i)) + "\r\n";
        for (const auto& line : m_whipPending[i]) fragment += line + "\r\n";
        count += m_whipPending[i].size();
        m_whipPending[i].clear();
        if (m_whipEnd && i == 0) fragment += "a=end-of-candidates\r\n";
    }
    if (count == 0 && !m_whipEnd) return;
    m_whipPatching = true;
    m_whipEndSent = m_whipEnd;
    GST_DEBUG("%s PATCH %s\n%s", whipLabel(), m_whipResource.c_str(), fragment.c_str());
    httpSend("PATCH", m_whipResource, "application/trickle-ice-sdpfrag", fragment,
             [count, end = m_whipEnd](Client& c, SoupMessage* message, GBytes* body, const std::string& error) {
                 c.m_whipPatching = false;
                 const guint status = message ? soup_message_get_status(message) : 0;
                 if (status != SOUP_STATUS_NO_CONTENT && status != SOUP_STATUS_OK) {
                     c.localError(std::string(c.whipLabel()) + " PATCH failed: " +
                                  (status != 0 ? "status " + std::to_string(status) + ": " + bodyText(body) : error));
                     return;
                 }
                 c.event("trickled", {{"candidates", count}, {"end", end}});
                 c.whipFlush();
             });
}

// Ends the session; the client finishes once the server answers (or the
// leave bound passes).
void Client::whipDelete() {
    const std::string resource = std::exchange(m_whipResource, {});
    httpSend("DELETE", resource, nullptr, {}, [](Client& c, SoupMessage* message, GBytes*, const std::string& error) {
        const guint status = message ? soup_message_get_status(message) : 0;
        if (status != SOUP_STATUS_OK && status != SOUP_STATUS_NO_CONTENT)
            c.localError(std::string(c.whipLabel()) +
                         " DELETE failed: " + (status != 0 ? "status " + std::to_string(status) : error));
        c.finish();
    });
}

} // namespace tessera::client
