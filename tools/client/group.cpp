// tessera-client --count N: N sessions in one process, the cheap load
// clients of the benchmark and of large-call tests. Each session is a peer
// of its own (its own webrtcbin, signaling WebSocket or WHEP exchange, the
// name NAME-i); they share the main loop and, with --send-file, one
// FileSource. They start a few at a time (kInFlight), the next once one
// has its answer (or has failed), so that the server is not handed N
// offers at once. stdin takes `report` (every session's report in one line), `leave`
// and `quit`; every other line a session prints carries its "session".
#include <glib-unix.h>

#include "client_impl.h"

namespace tessera::client {
namespace {

// Sessions started and not yet answered: a busy server answers slowly, so
// one at a time makes a large group's start-up long.
constexpr int kInFlight = 2;

class Group {
public:
    Group(const Options& options, GMainLoop* loop, std::shared_ptr<FileSource> file)
        : m_options(options), m_loop(loop), m_file(std::move(file)) {
        m_stdin = std::make_unique<StdinLines>([this](std::string_view line) { command(line); },
                                               [this] {
                                                   // As one session does: without --duration, leave.
                                                   if (m_options.duration <= 0) leaveAll();
                                               });
        // Thread: main. First signal: leave cleanly; the next: stop waiting.
        const auto onSignal = [](gpointer user) noexcept -> gboolean {
            auto* self = static_cast<Group*>(user);
            glib::guarded("signal", [self] {
                if (self->m_leaving)
                    g_main_loop_quit(self->m_loop);
                else
                    self->leaveAll();
            });
            return G_SOURCE_CONTINUE;
        };
        m_sigint = g_unix_signal_add(SIGINT, onSignal, this);
        m_sigterm = g_unix_signal_add(SIGTERM, onSignal, this);
    }
    Group(const Group&) = delete;
    Group& operator=(const Group&) = delete;

    // Thread: main.
    void startNext() {
        while (!m_leaving && m_inFlight < kInFlight && m_clients.size() < static_cast<std::size_t>(m_options.count)) {
            const int index = static_cast<int>(m_clients.size());
            Options options = m_options;
            options.count = 1;
            if (!options.name.empty()) options.name += "-" + std::to_string(index);
            Membership membership{index,
                                  [this] {
                                      --m_inFlight;
                                      startNext();
                                  },
                                  [this] { onDone(); }};
            auto client = std::make_shared<Client>(std::move(options), m_loop, m_file, std::move(membership));
            m_clients.push_back(client);
            if (client->start()) {
                ++m_inFlight; // until it calls `answered`
                continue;
            }
            ++m_done; // a setup failure, already on stderr
            ++m_setupFailures;
        }
        quitIfDone();
    }

    int exitCode() const {
        if (m_setupFailures > 0) return 2;
        for (const auto& c : m_clients)
            if (!c->everConnected()) return 1;
        return m_clients.size() == static_cast<std::size_t>(m_options.count) ? 0 : 1;
    }

private:
    void command(std::string_view line) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
        while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
        if (line.empty()) return;
        if (line == "report") {
            Json sessions = Json::array();
            for (std::size_t i = 0; i < m_clients.size(); ++i) {
                Json r = m_clients[i]->report();
                r["session"] = i;
                sessions.push_back(std::move(r));
            }
            emit({{"reply", "report"}, {"count", m_options.count}, {"sessions", std::move(sessions)}});
        } else if (line == "leave" || line == "quit") {
            emit({{"reply", std::string(line)}, {"ok", true}});
            if (line == "leave") {
                leaveAll();
            } else {
                m_leaving = true;
                for (const auto& c : std::vector(m_clients)) c->quit();
            }
        } else {
            const std::string verb(line.substr(0, line.find(' ')));
            emit({{"reply", verb}, {"ok", false}, {"error", "with --count: report, leave or quit"}});
        }
    }

    void leaveAll() {
        m_leaving = true;
        // A copy: a session that finishes at once may start no other now.
        for (const auto& c : std::vector(m_clients)) c->leave();
        quitIfDone();
    }

    void onDone() {
        ++m_done;
        quitIfDone();
    }

    void quitIfDone() {
        const bool allStarted = m_leaving || m_clients.size() == static_cast<std::size_t>(m_options.count);
        if (allStarted && m_done == m_clients.size()) g_main_loop_quit(m_loop);
    }

    Options m_options;
    GMainLoop* m_loop; // Borrowed.
    std::shared_ptr<FileSource> m_file;
    std::vector<std::shared_ptr<Client>> m_clients;
    std::size_t m_done = 0;
    int m_inFlight = 0;
    int m_setupFailures = 0;
    bool m_leaving = false;
    std::unique_ptr<StdinLines> m_stdin;
    guint m_sigint = 0;
    guint m_sigterm = 0;
};

} // namespace

int runGroup(const Options& options, GMainLoop* loop, const std::shared_ptr<FileSource>& file) {
    // Not destroyed: when the loop ends every session has left (or given
    // up), and the process ends without teardown (main.cpp). Stopping N
    // webrtcbin pipelines one after another took over 20 s for 28 on a
    // loaded machine, after the leaves had all gone out.
    auto* group = new Group(options, loop, file);
    group->startNext();
    g_main_loop_run(loop);
    return group->exitCode();
}

} // namespace tessera::client
