// PeerCore's data channels: the channels the client opens, by label, and
// messages both ways (docs/datachannels.md).
#include "peer.h"
#include "peer_detail.h"

#define GST_CAT_DEFAULT tessera_media_debug

namespace tessera::media {
using namespace peer_detail;

Ref<GstWebRTCDataChannel> PeerCore::channel(const std::string& label) const {
    std::lock_guard lock(m_mutex);
    const auto it = m_channels.find(label);
    return it != m_channels.end() ? it->second : Ref<GstWebRTCDataChannel>();
}

void PeerCore::sendData(const DataMessage& message) {
    const Ref<GstWebRTCDataChannel> channel = this->channel(message.label);
    if (!channel) {
        GST_CAT_INFO(tessera_media_debug, "peer %s has no '%s' channel; message dropped", m_id.c_str(),
                     message.label.c_str());
        return;
    }
    GError* raw = nullptr;
    gboolean ok;
    if (message.binary) {
        GBytes* bytes = g_bytes_new(message.data.data(), message.data.size());
        ok = gst_webrtc_data_channel_send_data_full(channel.get(), bytes, &raw);
        g_bytes_unref(bytes);
    } else {
        ok = gst_webrtc_data_channel_send_string_full(channel.get(), message.data.c_str(), &raw);
    }
    GErrorPtr err(raw);
    if (!ok)
        GST_CAT_INFO(tessera_media_debug, "peer %s: send on '%s' failed: %s", m_id.c_str(), message.label.c_str(),
                     err ? err->message : "?");
}

std::uint64_t PeerCore::dataBuffered(const std::string& label) const {
    const Ref<GstWebRTCDataChannel> channel = this->channel(label);
    guint64 amount = 0;
    if (channel) g_object_get(channel.get(), "buffered-amount", &amount, nullptr);
    return amount;
}

// Thread: streaming.
void PeerCore::prepareChannelThunk(GstElement*, GstWebRTCDataChannel* channel, gboolean local, gpointer data) noexcept {
    glib::guarded("prepare-data-channel", [&] {
        auto core = lockWeak(data);
        if (!core || local) return;
        g_signal_connect_data(channel, "on-message-string", G_CALLBACK(messageStringThunk), newWeak(core), freeWeak,
                              GConnectFlags(0));
        g_signal_connect_data(channel, "on-message-data", G_CALLBACK(messageDataThunk), newWeak(core), freeWeak,
                              GConnectFlags(0));
    });
}

// Thread: streaming.
void PeerCore::dataChannelThunk(GstElement*, GstWebRTCDataChannel* channel, gpointer data) noexcept {
    glib::guarded("on-data-channel", [&] {
        auto core = lockWeak(data);
        if (!core) return;
        gchar* label = nullptr;
        g_object_get(channel, "label", &label, nullptr);
        GCharPtr owned(label);
        std::lock_guard lock(core->m_mutex);
        if (!core->m_stopped) core->m_channels[label ? label : ""] = Ref<GstWebRTCDataChannel>::borrow(channel);
    });
}

// Thread: streaming (SCTP).
void PeerCore::deliver(gpointer data, GstWebRTCDataChannel* channel, bool binary, std::string payload) {
    gchar* label = nullptr;
    g_object_get(channel, "label", &label, nullptr);
    GCharPtr owned(label);
    DataMessage message{label ? label : "", binary, std::move(payload)};
    post(weakOf(data), [message = std::move(message)](PeerCore& core) {
        if (core.m_bin) core.m_listener.onDataMessage(message);
    });
}

// Thread: streaming (SCTP).
void PeerCore::messageStringThunk(GstWebRTCDataChannel* channel, gchar* text, gpointer data) noexcept {
    glib::guarded("on-message-string", [&] { deliver(data, channel, false, text ? text : ""); });
}

// Thread: streaming (SCTP).
void PeerCore::messageDataThunk(GstWebRTCDataChannel* channel, GBytes* bytes, gpointer data) noexcept {
    glib::guarded("on-message-data", [&] {
        gsize size = 0;
        const char* p = bytes ? static_cast<const char*>(g_bytes_get_data(bytes, &size)) : nullptr;
        deliver(data, channel, true, std::string(p ? p : "", size));
    });
}

} // namespace tessera::media
