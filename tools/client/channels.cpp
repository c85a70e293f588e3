// tessera-client: the data channels. "chat" and "file" are opened with the
// offer; the server may open more.
#include "client_impl.h"

namespace tessera::client {
namespace {

std::string channelLabel(GstWebRTCDataChannel* channel) {
    gchar* label = nullptr;
    g_object_get(channel, "label", &label, nullptr);
    const GCharPtr owned(label);
    return label ? label : "";
}

} // namespace

// Thread: streaming.
void Client::onDataChannelCb(GstElement*, GstWebRTCDataChannel* channel, gpointer user) noexcept {
    glib::guarded("on-data-channel", [&] {
        glib::post(static_cast<Client*>(user)->weak_from_this(),
                   [ref = Ref<GstWebRTCDataChannel>::borrow(channel)](Client& c) { c.onRemoteDataChannel(ref); });
    });
}

// Thread: streaming (SCTP).
void Client::onChannelOpenCb(GstWebRTCDataChannel* channel, gpointer user) noexcept {
    glib::guarded("channel open", [&] {
        glib::post(static_cast<Client*>(user)->weak_from_this(),
                   [label = channelLabel(channel)](Client& c) { c.onChannelEvent(label, "open", {}, 0); });
    });
}

// Thread: streaming (SCTP).
void Client::onChannelCloseCb(GstWebRTCDataChannel* channel, gpointer user) noexcept {
    glib::guarded("channel close", [&] {
        glib::post(static_cast<Client*>(user)->weak_from_this(),
                   [label = channelLabel(channel)](Client& c) { c.onChannelEvent(label, "close", {}, 0); });
    });
}

// Thread: streaming (SCTP).
void Client::onChannelErrorCb(GstWebRTCDataChannel* channel, GError* error, gpointer user) noexcept {
    glib::guarded("channel error", [&] {
        glib::post(static_cast<Client*>(user)->weak_from_this(),
                   [label = channelLabel(channel), msg = std::string(error ? error->message : "")](Client& c) {
                       c.onChannelEvent(label, "error", msg, 0);
                   });
    });
}

// Thread: streaming (SCTP).
void Client::onChannelStringCb(GstWebRTCDataChannel* channel, gchar* text, gpointer user) noexcept {
    glib::guarded("channel string", [&] {
        std::string s = text ? text : "";
        glib::post(static_cast<Client*>(user)->weak_from_this(),
                   [label = channelLabel(channel), s = std::move(s)](Client& c) {
                       c.onChannelEvent(label, "string", s, s.size());
                   });
    });
}

// Thread: streaming (SCTP).
void Client::onChannelDataCb(GstWebRTCDataChannel* channel, GBytes* data, gpointer user) noexcept {
    glib::guarded("channel data", [&] {
        std::string label = channelLabel(channel);
        // Shared so that the task stays copyable; unref'd with the last copy.
        std::shared_ptr<GBytes> bytes(data ? g_bytes_ref(data) : g_bytes_new(nullptr, 0), g_bytes_unref);
        glib::post(static_cast<Client*>(user)->weak_from_this(), [label = std::move(label), bytes](Client& c) {
            if (label == "file")
                c.onFileData(bytes.get());
            else
                c.onChannelEvent(label, "binary", {}, g_bytes_get_size(bytes.get()));
        });
    });
}

void Client::setupChannel(GstWebRTCDataChannel* channel) {
    g_signal_connect(channel, "on-open", G_CALLBACK(onChannelOpenCb), this);
    g_signal_connect(channel, "on-close", G_CALLBACK(onChannelCloseCb), this);
    g_signal_connect(channel, "on-error", G_CALLBACK(onChannelErrorCb), this);
    g_signal_connect(channel, "on-message-string", G_CALLBACK(onChannelStringCb), this);
    g_signal_connect(channel, "on-message-data", G_CALLBACK(onChannelDataCb), this);
}

void Client::onRemoteDataChannel(Ref<GstWebRTCDataChannel> channel) {
    const std::string label = channelLabel(channel.get());
    event("channel", {{"label", label}, {"remote", true}});
    if (m_finishing) return;
    setupChannel(channel.get());
    // A channel the server opened is already open when announced.
    onChannelEvent(label, "open", {}, 0);
    m_remoteChannels.push_back(std::move(channel));
}

void Client::onChannelEvent(const std::string& label, const std::string& kind, const std::string& text,
                            std::size_t bytes) {
    if (kind == "open" || kind == "close") {
        event(std::string("channel-") + kind, {{"label", label}});
    } else if (kind == "error") {
        event("channel-error", {{"label", label}, {"message", text}});
    } else if (kind == "binary") {
        event("channel-data", {{"label", label}, {"bytes", bytes}});
    } else if (label == "chat") {
        ++m_chatReceived;
        Json chat = {{"event", "chat"}};
        const Json parsed = Json::parse(text, nullptr, false);
        if (parsed.is_object()) {
            for (const auto& [k, v] : parsed.items())
                if (k != "event") chat[k] = v;
        } else {
            chat["raw"] = text;
        }
        out(chat);
    } else if (label == "file") {
        ++m_fileMessages;
        event("file-message", {{"text", text}});
    } else {
        event("channel-message", {{"label", label}, {"text", text}});
    }
}

void Client::onFileData(GBytes* data) {
    gsize size = 0;
    const void* bytes = g_bytes_get_data(data, &size);
    ++m_fileMessages;
    m_fileBytes += size;
    if (m_fileOut && size > 0) {
        std::fwrite(bytes, 1, size, m_fileOut);
        std::fflush(m_fileOut);
    }
    event("file-data", {{"bytes", size}, {"total", m_fileBytes}});
}

} // namespace tessera::client
