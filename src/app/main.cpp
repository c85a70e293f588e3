// tessera: wires config, media, rooms and the HTTP server, then runs the
// GLib main loop until SIGINT or SIGTERM. `tessera validate FILE...` checks
// layout specs and pipeline fragments without serving; `tessera token` mints
// a room token.
#include <gst/gst.h>

#include <malloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crash.h"
#include "options.h"
#include "signals.h"
#include "systemd.h"
#include "tessera-build.h"
#include "tessera/auth/jwt.h"
#include "tessera/glib/raii.h"
#include "tessera/media/engine.h"
#include "tessera/protocol/error.h"
#include "tessera/protocol/messages.h"
#include "tessera/protocol/room_token.h"
#include "tessera/room/layout_library.h"
#include "tessera/room/rooms.h"
#include "tessera/server/server.h"

GST_DEBUG_CATEGORY(tessera_app_debug); // also signals.cpp's
#define GST_CAT_DEFAULT tessera_app_debug
GST_DEBUG_CATEGORY_STATIC(tessera_room_debug);
GST_DEBUG_CATEGORY_STATIC(tessera_server_debug);

namespace tessera::app {
namespace {

constexpr int kExitInvalid = 1; // validate found a bad file
constexpr int kExitFailure = 2; // bad usage or configuration, or startup failed

// room and server log through GLib (they link no GStreamer); a category per
// domain carries their messages into GST_DEBUG like every other module's, so
// GST_DEBUG=tessera-*:5 shows them all.
void forwardGLog(const gchar* domain, GLogLevelFlags level, const gchar* message, gpointer data) {
    auto* category = static_cast<GstDebugCategory*>(data);
    GstDebugLevel gstLevel = GST_LEVEL_DEBUG;
    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) {
        gstLevel = GST_LEVEL_ERROR;
    } else if (level & G_LOG_LEVEL_WARNING) {
        gstLevel = GST_LEVEL_WARNING;
    } else if (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO)) {
        gstLevel = GST_LEVEL_INFO;
    }
    // Shown at logLevel like every other message (warnings by default).
    gst_debug_log(category, gstLevel, domain, "", 0, nullptr, "%s", message);
}

void forwardDomain(const char* domain, GstDebugCategory* category) {
    g_log_set_handler(domain, static_cast<GLogLevelFlags>(G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION),
                      forwardGLog, category);
}

GstDebugLevel debugLevel(const std::string& logLevel) {
    if (logLevel == "error") return GST_LEVEL_ERROR;
    if (logLevel == "info") return GST_LEVEL_INFO;
    if (logLevel == "debug") return GST_LEVEL_DEBUG;
    return GST_LEVEL_WARNING;
}

// Tessera's categories log at the configured level; what GST_DEBUG names
// explicitly (someone debugging, e.g. tessera-media:6) wins over it. Under
// systemd each line carries its priority, so that the journal files it at
// the right level.
void initLogging(const Config& config) {
    gst_debug_set_threshold_for_name("tessera-*", debugLevel(config.logLevel));
    // The latest pattern wins: GST_DEBUG again, on top.
    if (const gchar* env = g_getenv("GST_DEBUG")) gst_debug_set_threshold_from_string(env, FALSE);
    const bool journal = stderrIsJournal();
    reportCrashes(journal);
    if (journal) {
        // Parenthesised: the functions, not gstinfo.h's macros of the same
        // name (their void* comparison is not valid C++).
        (gst_debug_remove_log_function)(gst_debug_log_default);
        (gst_debug_add_log_function)(logToJournal, nullptr, nullptr);
    }
    GST_DEBUG_CATEGORY_INIT(tessera_app_debug, "tessera-app", 0, "Tessera wiring and main loop");
    GST_DEBUG_CATEGORY_INIT(tessera_room_debug, "tessera-room", 0, "Tessera rooms (GLib log domain tessera-room)");
    GST_DEBUG_CATEGORY_INIT(tessera_server_debug, "tessera-server", 0,
                            "Tessera HTTP and WebSocket (GLib log domain tessera-server)");
    forwardDomain("tessera-room", tessera_room_debug);
    forwardDomain("tessera-server", tessera_server_debug);
}

// Prints "FILE: ok" or "FILE: error: ..." per file; 1 if any is bad.
int validate(const std::vector<std::string>& files) {
    if (files.empty()) {
        std::fprintf(stderr, "tessera validate: no files given (layout specs *.json, pipeline fragments *.pipeline)\n");
        return kExitFailure;
    }
    int status = 0;
    for (const std::string& file : files) {
        const std::string extension = std::filesystem::path(file).extension().string();
        try {
            if (extension == ".json") {
                room::loadLayoutFile(file);
            } else if (extension == ".pipeline") {
                media::validateFragmentFile(file);
            } else {
                throw Error(ErrorCode::BadRequest, "unknown kind of file (expected *.json or *.pipeline)");
            }
            std::printf("%s: ok\n", file.c_str());
        } catch (const std::exception& e) {
            std::printf("%s: error: %s\n", file.c_str(), e.what());
            status = kExitInvalid;
        }
    }
    return status;
}

// Prints a room token for `request`, signed with the configured secret.
int mintToken(const Config& config, const TokenRequest& request) {
    try {
        if (config.tokenSecret.empty()) {
            throw Error(ErrorCode::BadRequest, "no tokenSecret: set it in the config file or with --token-secret");
        }
        if (!protocol::isValidRoomName(request.room)) {
            throw Error(ErrorCode::BadRequest, "--room: 1-64 characters of [A-Za-z0-9_-]");
        }
        if (!protocol::isValidName(request.name)) {
            throw Error(ErrorCode::BadRequest, "--name: 1-64 characters, no control characters");
        }
        const std::optional<std::int64_t> ttl = protocol::parseDuration(request.ttl);
        if (!ttl) throw Error(ErrorCode::BadRequest, "--ttl: a duration up to a year, e.g. 90s, 15m, 1h, 7d");
        const std::int64_t now = g_get_real_time() / G_USEC_PER_SEC;
        // A fresh id: two tokens minted alike in one second still differ, so
        // that revoking one (a kick) leaves the other valid.
        const glib::GCharPtr id(g_uuid_string_random());
        const protocol::RoomTokenClaims claims{
            request.room, request.name, now + *ttl, now, now, id.get(), protocol::parseGrants(request.grants)};
        std::printf("%s\n", auth::mintRoomToken(claims, config.tokenSecret).c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tessera token: %s\n", e.what());
        return kExitFailure;
    }
}

constexpr guint kShutdownGraceSeconds = 20;
// Once the main loop has stopped, tearing down connections and rooms takes
// well under a second; past this the signal thread ends the process (the
// grace and this stay under the 30 s that tests and service managers allow).
constexpr std::chrono::seconds kTeardownBound{8};

struct Shutdown {
    GMainLoop* loop;    // Borrowed.
    room::Rooms* rooms; // Borrowed; outlives the loop.
    bool requested = false;
};

// The first SIGINT/SIGTERM finalises running recordings (their files get
// their index) and then quits; a second one, or the grace period, quits at once.
// Thread: main.
void onQuit(Shutdown* shutdown) {
    if (shutdown->requested) {
        GST_INFO("second signal, quitting now");
        g_main_loop_quit(shutdown->loop);
        return;
    }
    shutdown->requested = true;
    notifyServiceManager("STOPPING=1");
    GST_INFO("signal received, finishing recordings and shutting down");
    g_timeout_add_seconds(
        kShutdownGraceSeconds,
        [](gpointer loop) -> gboolean {
            GST_WARNING("recordings did not finish within %u s; quitting anyway", kShutdownGraceSeconds);
            g_main_loop_quit(static_cast<GMainLoop*>(loop));
            return G_SOURCE_REMOVE;
        },
        shutdown->loop);
    try {
        shutdown->rooms->stopAllRecordings([loop = shutdown->loop] { g_main_loop_quit(loop); });
    } catch (const std::exception& e) {
        GST_WARNING("finishing recordings failed: %s", e.what());
        g_main_loop_quit(shutdown->loop);
    }
}

// What SIGHUP reloads: the layouts, re-applied to rooms whose layout changed,
// and the TLS certificate (renewed by certbot and the like while we run).
struct ReloadTarget {
    room::Rooms& rooms;
    const room::LayoutLibrary& layouts;
    server::Server& server;
    const TlsConfig& tls;
};

// Thread: main.
void onReload(ReloadTarget* target) {
    const room::LayoutLibrary* layouts = &target->layouts;
    try {
        std::string names;
        for (const std::string& name : target->rooms.reloadLayouts()) names += (names.empty() ? "" : ", ") + name;
        GST_INFO("layouts reloaded: %s", names.c_str());
        std::fprintf(stderr, "tessera: layouts reloaded from %s: %s\n", layouts->directory().c_str(), names.c_str());
    } catch (const std::exception& e) {
        GST_WARNING("layout reload failed, keeping the old set: %s", e.what());
        std::fprintf(stderr, "tessera: layout reload failed, keeping the old set: %s\n", e.what());
    }
    if (!target->server.tls()) return;
    try {
        target->server.reloadCertificate();
        GST_INFO("certificate reloaded from %s", target->tls.cert.c_str());
        std::fprintf(stderr, "tessera: certificate reloaded from %s\n", target->tls.cert.c_str());
    } catch (const std::exception& e) {
        GST_WARNING("certificate reload failed, keeping the old one: %s", e.what());
        std::fprintf(stderr, "tessera: certificate reload failed, keeping the old one: %s\n", e.what());
    }
}

int serve(const Config& config) {
    // Recordings and their metadata hold what participants said and showed:
    // never readable by other users of the machine, whatever umask the
    // server was started with (files 0640 at most, directories 0750).
    umask(umask(0) | 027);
    // Declared in dependency order, and torn down in reverse at the end: the
    // server (its sessions leave their rooms) before the rooms (their peers
    // and pipelines) before the engine.
    std::unique_ptr<room::LayoutLibrary> layouts;
    std::unique_ptr<media::Engine> engine;
    std::unique_ptr<room::Rooms> rooms;
    std::unique_ptr<server::Server> server;
    try {
        layouts = std::make_unique<room::LayoutLibrary>(config.layoutsDir, config.limits.maxCanvasPixels);
        engine = media::createGstEngine(config);
        rooms = std::make_unique<room::Rooms>(config, *engine, *layouts);
        server = std::make_unique<server::Server>(config, *rooms);
        server->start();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tessera: %s\n", e.what());
        return kExitFailure;
    }
    std::unique_ptr<GMainLoop, decltype(&g_main_loop_unref)> loop(g_main_loop_new(nullptr, FALSE), &g_main_loop_unref);
    Shutdown shutdown{loop.get(), rooms.get()};
    ReloadTarget reload{*rooms, *layouts, *server, config.tls};
    // Posted work runs only while the loop runs, so `shutdown` and `reload`
    // outlive every use.
    SignalWatch signals(
        [&shutdown, &reload](int signal) {
            glib::post([&shutdown, &reload, signal] {
                if (signal == SIGHUP) {
                    onReload(&reload);
                } else {
                    onQuit(&shutdown);
                }
            });
        },
        std::chrono::seconds(kShutdownGraceSeconds), kTeardownBound);
    // Tests and scripts read the port from this line (config port 0), and
    // may signal the server as soon as they see it: the signals have been
    // blocked since main() began and wait for the thread.
    std::printf("tessera listening on %s\n", server->url().c_str());
    std::fflush(stdout);
    GST_INFO("listening on %s", server->url().c_str());
    notifyServiceManager(("READY=1\nSTATUS=listening on " + server->url()).c_str());
    g_main_loop_run(loop.get());
    signals.tearingDown();
    server.reset();
    rooms.reset();
    engine.reset();
    layouts.reset();
    GST_INFO("stopped");
    return 0;
}

} // namespace
} // namespace tessera::app

int main(int argc, char** argv) {
    using namespace tessera::app;
    // Before any thread starts, so that every thread inherits it: only the
    // signal thread takes these (serve()).
    const sigset_t unblocked = SignalWatch::block();
    // Memory a call used goes back to the system when it ends (with the
    // trim after each room, docs/architecture.md): GLib 2.74's slice
    // allocator never returns its slabs, and glibc's default 8 arenas per
    // core keep each streaming thread's frees in an arena of its own.
    g_setenv("G_SLICE", "always-malloc", FALSE);
    mallopt(M_ARENA_MAX, std::max(2, static_cast<int>(g_get_num_processors())));
    // malloc_trim() gives back free pages inside an arena but never the free
    // top of a thread's arena: that goes only when a free leaves it above the
    // trim threshold, which glibc raises to twice the largest mmapped block
    // freed so far (up to 64 MB). A closed room left 24 MB there. Fixed
    // thresholds stop that drift: blocks up to 8 MB (video frames up to
    // 1080p) still come from the arenas, as they did once the dynamic
    // threshold had risen (mmapping each frame cost a third more CPU), and a
    // top above 4 MB goes back.
    mallopt(M_MMAP_THRESHOLD, 8 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024);
    g_set_prgname("tessera");
    Options options;
    try {
        options = parseOptions(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tessera: %s\n", e.what());
        return kExitFailure;
    }
    if (options.version) {
        std::printf("tessera %s\n", TESSERA_VERSION);
        return 0;
    }
    initLogging(options.config);
    if (options.command.empty()) return serve(options.config);
    pthread_sigmask(SIG_SETMASK, &unblocked, nullptr);
    if (options.command.front() == "validate") {
        return validate(std::vector<std::string>(options.command.begin() + 1, options.command.end()));
    }
    if (options.command == std::vector<std::string>{"token"}) return mintToken(options.config, options.token);
    std::fprintf(stderr, "tessera: unknown command '%s' (try --help)\n", options.command.front().c_str());
    return kExitFailure;
}
