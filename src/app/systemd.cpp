#include "systemd.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

namespace tessera::app {

void notifyServiceManager(const char* state) noexcept {
    const char* path = g_getenv("NOTIFY_SOCKET");
    if (path == nullptr || (path[0] != '/' && path[0] != '@')) return;
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::size_t length = std::strlen(path);
    if (length >= sizeof address.sun_path) return;
    std::memcpy(address.sun_path, path, length);
    if (path[0] == '@') address.sun_path[0] = '\0'; // an abstract socket name
    const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    if (sendto(fd, state, std::strlen(state), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&address),
               static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length)) < 0) {
        g_warning("notifying the service manager on %s failed: %s", path, g_strerror(errno));
    }
    close(fd);
}

// systemd.exec(5): $JOURNAL_STREAM is "DEVICE:INODE" of the stream it
// connected stderr to; a child that inherited it with stderr redirected
// elsewhere sees another file. (GLib's g_log_writer_is_journald looks at the
// socket's peer instead, which a test cannot stand in for.)
bool stderrIsJournal() noexcept {
    const char* stream = g_getenv("JOURNAL_STREAM");
    unsigned long long device = 0, inode = 0;
    struct stat status {};
    return stream != nullptr && std::sscanf(stream, "%llu:%llu", &device, &inode) == 2 &&
           fstat(STDERR_FILENO, &status) == 0 && status.st_dev == device && status.st_ino == inode;
}

void logToJournal(GstDebugCategory* category, GstDebugLevel level, const gchar*, const gchar*, gint, GObject*,
                  GstDebugMessage* message, gpointer) noexcept {
    // syslog priorities: err, warning, notice, info, debug.
    const int priority = level <= GST_LEVEL_ERROR     ? 3
                         : level == GST_LEVEL_WARNING ? 4
                         : level == GST_LEVEL_FIXME   ? 5
                         : level == GST_LEVEL_INFO    ? 6
                                                      : 7;
    const gchar* text = gst_debug_message_get(message);
    if (text == nullptr) return;
    try {
        std::string line = "<" + std::to_string(priority) + ">" + gst_debug_category_get_name(category) + ": " + text;
        // One journal entry per message: a newline would start an entry without the prefix.
        std::replace(line.begin(), line.end(), '\n', ' ');
        line += '\n';
        // One write, so that lines from streaming threads do not interleave.
        if (::write(STDERR_FILENO, line.data(), line.size()) < 0) {
            // stderr is gone: there is nowhere left to say so.
        }
    } catch (...) {
        // Out of memory while logging: drop the line rather than throw into GStreamer.
    }
}

} // namespace tessera::app
