#pragma once
// What a systemd service needs from tessera, without linking libsystemd:
// readiness on $NOTIFY_SOCKET and log lines the journal files at their level.
#include <gst/gst.h>

namespace tessera::app {

// Sends `state` ("READY=1", "STOPPING=1", ...) to the service manager when
// $NOTIFY_SOCKET names one (Type=notify); nothing otherwise. Never throws.
void notifyServiceManager(const char* state) noexcept;

// True when stderr is connected to the journal ($JOURNAL_STREAM names it).
bool stderrIsJournal() noexcept;

// A GstLogFunction writing "<priority>category: message" lines to stderr,
// the prefix journald reads as the syslog priority (sd-daemon(3)).
void logToJournal(GstDebugCategory* category, GstDebugLevel level, const gchar* file, const gchar* function, gint line,
                  GObject* object, GstDebugMessage* message, gpointer data) noexcept;

} // namespace tessera::app
