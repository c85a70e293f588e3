#include "stdin_lines.h"

#include "output.h"
#include "tessera/glib/raii.h"

namespace tessera::client {
namespace {

constexpr std::size_t kMaxCommandBytes = 4 * 1024 * 1024;

} // namespace

StdinLines::StdinLines(std::function<void(std::string_view)> line, std::function<void()> end)
    : m_line(std::move(line)), m_end(std::move(end)) {
    m_channel = g_io_channel_unix_new(0);
    g_io_channel_set_encoding(m_channel, nullptr, nullptr);
    g_io_channel_set_flags(m_channel, G_IO_FLAG_NONBLOCK, nullptr);
    m_watch = g_io_add_watch(m_channel, static_cast<GIOCondition>(G_IO_IN | G_IO_HUP | G_IO_ERR), onReadableCb, this);
}

StdinLines::~StdinLines() {
    if (m_watch) g_source_remove(m_watch);
    // stdin's file description may be shared (a terminal): leave it blocking.
    g_io_channel_set_flags(m_channel, static_cast<GIOFlags>(0), nullptr);
    g_io_channel_unref(m_channel);
}

// Thread: main (stdin watch).
gboolean StdinLines::onReadableCb(GIOChannel*, GIOCondition condition, gpointer user) noexcept {
    auto* self = static_cast<StdinLines*>(user);
    glib::guarded("stdin", [&] {
        self->onReadable((condition & (G_IO_HUP | G_IO_ERR | G_IO_NVAL)) != 0 && (condition & G_IO_IN) == 0);
    });
    return self->m_watch != 0 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

void StdinLines::onReadable(bool eof) {
    // One read per wake-up, so that an endless input cannot starve the loop;
    // lines longer than kMaxCommandBytes are dropped with an error reply.
    if (!eof) {
        char chunk[64 * 1024];
        gsize got = 0;
        GError* error = nullptr;
        const GIOStatus status = g_io_channel_read_chars(m_channel, chunk, sizeof chunk, &got, &error);
        const glib::GErrorPtr ownedError(error);
        if (status == G_IO_STATUS_NORMAL || status == G_IO_STATUS_AGAIN) {
            m_buffer.append(chunk, got);
            std::size_t newline;
            while ((newline = m_buffer.find('\n')) != std::string::npos) {
                const std::string line = m_buffer.substr(0, newline);
                m_buffer.erase(0, newline + 1);
                if (m_discardingLine) {
                    m_discardingLine = false;
                    continue;
                }
                m_line(line);
            }
            if (m_buffer.size() > kMaxCommandBytes) {
                m_buffer.clear();
                if (!m_discardingLine) emit({{"reply", "error"}, {"ok", false}, {"error", "command line too long"}});
                m_discardingLine = true;
            }
            return;
        }
        eof = true; // EOF or a read error
    }
    // A last line without a newline still counts.
    if (!m_buffer.empty() && !m_discardingLine) m_line(m_buffer);
    m_buffer.clear();
    m_watch = 0;
    m_end();
}

} // namespace tessera::client
