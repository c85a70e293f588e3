// tessera-client: the commands on stdin, one per line (docs/client.md);
// each answers with a JSON line on stdout.
#include <cstdio>
#include <cstdlib>

#include "client_impl.h"
#include "tessera/analysis/stamp.h"

namespace tessera::client {

// 20 requests a second: ten times what the server honours.
constexpr guint kKeyframeRequestMs = 50;

// Input ended: with --duration the run goes on to its end; otherwise the
// controlling process is gone, so leave.
void Client::onStdinEnd() {
    if (m_options.duration <= 0 && !m_leaving) {
        GST_INFO("stdin closed: leaving");
        leave();
    }
}

void Client::command(std::string_view line) {
    if (m_leaving) return;
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (line.empty()) return;
    const auto space = line.find(' ');
    const std::string_view verb = line.substr(0, space);
    const std::string_view rest = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
    const auto reply = [&](bool ok, const std::string& error = {}) {
        Json j = {{"reply", std::string(verb)}, {"ok", ok}};
        if (!error.empty()) j["error"] = error;
        out(j);
    };

    if (verb == "report") {
        out(report());
    } else if (verb == "reset-gap") {
        {
            std::lock_guard lock(m_video.mutex);
            m_video.maxGapUs = 0;
            m_frameGaps.reset();
        }
        for (RtpMeasure* m : {&m_rtpVideo, &m_rtpAudio}) {
            std::lock_guard lock(m->mutex);
            m->gaps.reset();
        }
        reply(true);
    } else if (verb == "reset-peaks") {
        {
            std::lock_guard lock(m_audio.mutex);
            m_audio.peaks.clear();
        }
        reply(true);
    } else if (verb == "tone") {
        const std::string text(rest);
        char* end = nullptr;
        const double volume = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0' || !(volume >= 0 && volume <= 1)) {
            reply(false, "tone takes a volume, 0 to 1");
            return;
        }
        auto tone =
            m_pipeline ? ElementRef::adopt(gst_bin_get_by_name(GST_BIN(m_pipeline.get()), "tone")) : ElementRef();
        if (!tone) {
            reply(false, "no tone is being sent (it needs --tone and no --stamp or --send-file, once joined)");
            return;
        }
        // audiotestsrc reads its volume for every buffer it fills.
        g_object_set(tone.get(), "volume", volume, nullptr);
        reply(true);
    } else if (verb == "watch") {
        // watch FX FY COLOUR: a `watch-seen` event (with `ts`) at the first
        // decoded frame whose point (FX, FY) shows COLOUR; a new watch replaces one armed.
        const std::string text(rest);
        double fx = -1, fy = -1;
        char color[32] = {};
        int used = 0;
        const auto parsed = std::sscanf(text.c_str(), "%lf %lf %31s%n", &fx, &fy, color, &used);
        const auto rgb = parsed == 3 ? analysis::parseColor(color) : std::nullopt;
        if (!rgb || static_cast<std::size_t>(used) != text.size() || !(fx >= 0 && fx <= 1) || !(fy >= 0 && fy <= 1)) {
            reply(false, "watch takes FX FY COLOUR (fractions 0-1, 0xRRGGBB)");
            return;
        }
        {
            std::lock_guard lock(m_watch.mutex);
            m_watch.armed = true;
            m_watch.fx = fx;
            m_watch.fy = fy;
            m_watch.color = *rgb;
        }
        reply(true);
    } else if (verb == "send") {
        if (!m_ws || soup_websocket_connection_get_state(m_ws.get()) != SOUP_WEBSOCKET_STATE_OPEN) {
            reply(false, "the WebSocket is not open");
            return;
        }
        // As-is, even if it is not JSON or not UTF-8: tests send garbage.
        GBytes* bytes = g_bytes_new(rest.data(), rest.size());
        soup_websocket_connection_send_message(m_ws.get(), SOUP_WEBSOCKET_DATA_TEXT, bytes);
        g_bytes_unref(bytes);
        reply(true);
    } else if (verb == "chat") {
        GstWebRTCDataChannelState state = GST_WEBRTC_DATA_CHANNEL_STATE_CLOSED;
        if (m_chat) g_object_get(m_chat.get(), "ready-state", &state, nullptr);
        if (state != GST_WEBRTC_DATA_CHANNEL_STATE_OPEN) {
            reply(false, "the chat channel is not open");
            return;
        }
        const std::string message =
            Json{{"text", std::string(rest)}}.dump(-1, ' ', false, Json::error_handler_t::replace);
        GError* error = nullptr;
        const bool ok = gst_webrtc_data_channel_send_string_full(m_chat.get(), message.c_str(), &error);
        GErrorPtr owned(error);
        reply(ok, ok ? std::string() : std::string(error ? error->message : "send failed"));
    } else if (verb == "file-text" || verb == "file-data") {
        // Framing-agnostic: the caller speaks the "file" channel's framing.
        GstWebRTCDataChannelState state = GST_WEBRTC_DATA_CHANNEL_STATE_CLOSED;
        if (m_file) g_object_get(m_file.get(), "ready-state", &state, nullptr);
        if (state != GST_WEBRTC_DATA_CHANNEL_STATE_OPEN) {
            reply(false, "the file channel is not open");
            return;
        }
        GError* error = nullptr;
        bool ok = false;
        if (verb == "file-text") {
            ok = gst_webrtc_data_channel_send_string_full(m_file.get(), std::string(rest).c_str(), &error);
        } else {
            auto bytes = analysis::fromHex(rest);
            if (!bytes) {
                reply(false, "file-data takes hex");
                return;
            }
            GBytes* data = g_bytes_new(bytes->data(), bytes->size());
            ok = gst_webrtc_data_channel_send_data_full(m_file.get(), data, &error);
            g_bytes_unref(data);
        }
        GErrorPtr owned(error);
        reply(ok, ok ? std::string() : std::string(error ? error->message : "send failed"));
    } else if (verb == "loss") {
        const std::string text(rest);
        char* end = nullptr;
        const unsigned long percent = std::strtoul(text.c_str(), &end, 10);
        if (text.empty() || *end != '\0' || percent > 100) {
            reply(false, "loss takes a percentage, 0 to 100");
            return;
        }
        m_lossPercent = static_cast<unsigned>(percent);
        if (!m_lossProbes && m_webrtc) addLossProbes();
        reply(true);
    } else if (verb == "keyframe-requests") {
        if (rest != "on" && rest != "off") {
            reply(false, "keyframe-requests takes on or off");
            return;
        }
        if (rest == "off" && m_keyframeTimer) {
            g_source_remove(m_keyframeTimer);
            m_keyframeTimer = 0;
        } else if (rest == "on" && !m_keyframeTimer) {
            m_keyframeTimer = g_timeout_add(
                kKeyframeRequestMs,
                // Thread: main.
                [](gpointer user) noexcept -> gboolean {
                    glib::guarded("key-frame request", [&] { static_cast<Client*>(user)->requestKeyframe(); });
                    return G_SOURCE_CONTINUE;
                },
                this);
        }
        reply(true);
    } else if (verb == "stall-data") {
        if (rest != "on" && rest != "off") {
            reply(false, "stall-data takes on or off");
            return;
        }
        m_stallData = rest == "on";
        if (!m_lossProbes && m_webrtc) addLossProbes();
        reply(true);
    } else if (verb == "audio-only") {
        if (rest != "on" && rest != "off") {
            reply(false, "audio-only takes on or off");
            return;
        }
        if (!m_ws || soup_websocket_connection_get_state(m_ws.get()) != SOUP_WEBSOCKET_STATE_OPEN) {
            reply(false, "the WebSocket is not open");
            return;
        }
        send(proto::AudioOnlyRequest{rest == "on"});
        reply(true);
    } else if (verb == "share") {
        // share COLOUR: a screen share of that colour (startShare).
        const auto rgb = analysis::parseColor(rest);
        if (!rgb) {
            reply(false, "share takes a COLOUR (0xRRGGBB)");
            return;
        }
        const std::string why = startShare(*rgb);
        reply(why.empty(), why);
    } else if (verb == "offer") {
        if (!m_offerHeld) {
            reply(false, "no offer is held: it needs --hold-offer and 'joined', once");
            return;
        }
        m_offerHeld = false;
        createOffer();
        reply(true);
    } else if (verb == "leave") {
        reply(true);
        leave();
    } else if (verb == "quit") {
        reply(true);
        quit();
    } else {
        reply(
            false,
            "unknown command; use report, reset-gap, reset-peaks, tone VOLUME, watch FX FY COLOUR, send RAW, chat TEXT, "
            "file-text TEXT, file-data HEX, loss PERCENT, keyframe-requests on|off, stall-data on|off, audio-only on|off, share COLOUR, offer, leave or quit");
    }
}

// Thread: main. The event a depayloader sends after loss: webrtcbin's RTP
// session turns it into a PLI for the stream's sender.
void Client::requestKeyframe() {
    PadRef pad;
    {
        std::lock_guard lock(m_video.mutex);
        pad = m_videoIncoming;
    }
    if (pad) gst_pad_send_event(pad.get(), gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
}

// Drops packets as they arrive from the network, before webrtcbin: on the
// source pad of each of its nicesrc elements.
void Client::addLossProbes() {
    m_lossProbes = true;
    GstIterator* it = gst_bin_iterate_recurse(GST_BIN(m_webrtc));
    GValue item = G_VALUE_INIT;
    while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
        auto* element = GST_ELEMENT(g_value_get_object(&item));
        GstElementFactory* factory = gst_element_get_factory(element);
        if (factory && g_str_equal(GST_OBJECT_NAME(factory), "nicesrc")) {
            auto src = PadRef::adopt(gst_element_get_static_pad(element, "src"));
            gst_pad_add_probe(src.get(), GST_PAD_PROBE_TYPE_BUFFER, onLossCb, this, nullptr);
        }
        g_value_reset(&item);
    }
    g_value_unset(&item);
    gst_iterator_free(it);
}

// Thread: streaming (nicesrc). Nothing here can throw.
GstPadProbeReturn Client::onLossCb(GstPad*, GstPadProbeInfo* info, gpointer user) noexcept {
    auto* self = static_cast<Client*>(user);
    // RFC 7983: a first byte of 20-63 is DTLS; RTP and RTCP are 128-191.
    guint8 first = 0;
    if (self->m_stallData.load() && gst_buffer_extract(GST_PAD_PROBE_INFO_BUFFER(info), 0, &first, 1) == 1 &&
        first >= 20 && first <= 63)
        return GST_PAD_PROBE_DROP;
    // Spread evenly: the first N of every 100 packets.
    return self->m_lossCounter++ % 100 < self->m_lossPercent.load() ? GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK;
}

} // namespace tessera::client
