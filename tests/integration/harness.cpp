#include "harness.h"

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <libsoup/soup.h>

#include "files.h"
#include "tessera/analysis/frames.h"

namespace tessera::testing {
namespace {

std::string envOr(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

int remainingMs(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(left);
}

std::string artifactDir() {
    std::string dir = envOr("TESSERA_ARTIFACTS", "/tmp/tessera-test-logs");
    g_mkdir_with_parents(dir.c_str(), 0755);
    return dir;
}

} // namespace

std::string logFor(const std::string& what) {
    static int counter = 0;
    return artifactDir() + "/" + std::to_string(getpid()) + "-" + std::to_string(++counter) + "-" + what + ".log";
}

std::string logTail(const std::string& path, std::size_t lines) {
    std::ifstream in(path);
    std::deque<std::string> tail;
    for (std::string line; std::getline(in, line);) {
        tail.push_back(std::move(line));
        if (tail.size() > lines) tail.pop_front();
    }
    std::string text;
    for (const auto& line : tail) text += line + "\n";
    return text.empty() ? "(empty)\n" : text;
}

std::string sanitizerReport(const std::string& path, std::size_t lines) {
    // The first line of a report: "==PID==ERROR: AddressSanitizer: ...",
    // "==PID==ERROR: LeakSanitizer: ..." or UBSan's "file:line:col: runtime
    // error: ...".
    static const char* const kMarkers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", ": runtime error: "};
    std::ifstream in(path);
    std::string head;
    std::size_t taken = 0;
    for (std::string line; taken < lines && std::getline(in, line);) {
        if (taken == 0 && std::none_of(std::begin(kMarkers), std::end(kMarkers),
                                       [&](const char* marker) { return line.find(marker) != std::string::npos; }))
            continue;
        head += line + "\n";
        ++taken;
    }
    return head;
}

std::string describeStatus(int status) {
    if (status < 0) return "killed by signal " + std::to_string(-status) + " (" + strsignal(-status) + ")";
    return "exit " + std::to_string(status);
}

bool waitUntil(const std::function<bool()>& done, Clock::duration timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!done()) {
        if (Clock::now() > deadline) return false;
        std::this_thread::sleep_for(100ms);
    }
    return true;
}

std::string tesseraBinary() { return envOr("TESSERA_BIN", "build/src/app/tessera"); }
std::string clientBinary() { return envOr("TESSERA_CLIENT_BIN", "build/tools/client/tessera-client"); }

Process::Process(const std::vector<std::string>& argv, const std::string& logPath) : m_log(logPath) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    m_pid = fork();
    if (m_pid < 0) throw std::runtime_error("fork failed");
    if (m_pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        int log = open(logPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (log >= 0) dup2(log, STDERR_FILENO);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execv(args[0], args.data());
        std::fprintf(stderr, "exec %s failed: %s\n", args[0], std::strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    m_in = in[1];
    m_out = out[0];
    signal(SIGPIPE, SIG_IGN);
}

Process::~Process() {
    if (running()) {
        kill(SIGTERM);
        if (!wait(Clock::now() + 10s)) {
            kill(SIGKILL);
            wait(Clock::now() + 10s);
        }
    }
    close(m_in);
    close(m_out);
    // Non-fatal: this may run while a failed REQUIRE unwinds.
    if (const std::string report = takeSanitizerReport(); !report.empty())
        FAIL_CHECK(m_log << " has a sanitizer report:\n" << report);
}

std::string Process::takeSanitizerReport() {
    if (m_reportTaken) return {};
    std::string report = sanitizerReport(m_log);
    m_reportTaken = !report.empty();
    return report;
}

void Process::writeLine(const std::string& line) {
    std::string data = line + "\n";
    if (::write(m_in, data.data(), data.size()) < 0) WARN("write to child failed: " << std::strerror(errno));
}

std::optional<std::string> Process::readLine(Clock::time_point deadline) {
    for (;;) {
        auto nl = m_buffer.find('\n');
        if (nl != std::string::npos) {
            std::string line = m_buffer.substr(0, nl);
            m_buffer.erase(0, nl + 1);
            return line;
        }
        pollfd p{m_out, POLLIN, 0};
        int r = poll(&p, 1, remainingMs(deadline));
        if (r <= 0) return std::nullopt;
        char chunk[65536];
        ssize_t n = ::read(m_out, chunk, sizeof chunk);
        if (n <= 0) return std::nullopt;
        m_buffer.append(chunk, static_cast<size_t>(n));
    }
}

std::optional<int> Process::wait(Clock::time_point deadline) {
    while (!m_status) {
        int status = 0;
        pid_t r = waitpid(m_pid, &status, WNOHANG);
        if (r == m_pid) {
            m_status = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
            break;
        }
        if (Clock::now() >= deadline) return std::nullopt;
        // Child exit has no fd to poll here; a short poll on stdout (which
        // closes at exit) wakes us as soon as that happens.
        pollfd p{m_out, POLLIN, 0};
        if (poll(&p, 1, std::min(remainingMs(deadline), 50)) > 0) {
            char chunk[4096];
            ssize_t n = ::read(m_out, chunk, sizeof chunk);
            if (n > 0) m_buffer.append(chunk, static_cast<size_t>(n));
        }
    }
    return m_status;
}

void Process::kill(int sig) {
    if (!m_status) ::kill(m_pid, sig);
}

void Process::signalMainThread(int sig) {
    if (!m_status) syscall(SYS_tgkill, m_pid, m_pid, sig);
}

bool Process::running() { return !wait(Clock::now()).has_value(); }

Server::Server(std::vector<std::string> extraArgs, bool loopbackIce)
    : m_ca([&] {
          const auto cert = std::find(extraArgs.begin(), extraArgs.end(), "--cert");
          return cert != extraArgs.end() && cert + 1 != extraArgs.end() ? *(cert + 1) : std::string();
      }()),
      m_process(
          [&] {
              std::vector<std::string> argv = {tesseraBinary(), "--port", "0"};
              if (loopbackIce) argv.insert(argv.end(), {"--ice-address", "127.0.0.1"});
              argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
              return argv;
          }(),
          logFor("server")) {
    auto deadline = Clock::now() + kDeadline;
    while (auto line = m_process.readLine(deadline)) {
        const std::string marker = std::string("tessera listening on ") + (m_ca.empty() ? "http://" : "https://");
        auto at = line->find(marker);
        if (at != std::string::npos) {
            auto colon = line->rfind(':');
            m_port = std::atoi(line->c_str() + colon + 1);
            break;
        }
    }
    if (m_port == 0) FAIL("server did not start; log " << m_process.logPath() << ":\n" << logTail(m_process.logPath()));
}

Server::~Server() { stop(); }

// Only non-fatal assertions and no INFO (whose scope would outlive an
// unwinding test): this also runs from the destructor.
void Server::stop() {
    if (m_ended) return;
    m_ended = true;
    const std::optional<int> died = m_process.wait(Clock::now());
    std::optional<int> status = died;
    if (!died) {
        m_process.kill(SIGTERM);
        status = m_process.wait(Clock::now() + kStopBound);
        if (!status) {
            m_process.kill(SIGKILL);
            m_process.wait(Clock::now() + 10s);
        }
    }
    const auto where = [&] {
        return "; server log " + m_process.logPath() + ", its end:\n" + logTail(m_process.logPath());
    };
    if (const std::string report = m_process.takeSanitizerReport(); !report.empty())
        FAIL_CHECK("the server's log " << m_process.logPath() << " has a sanitizer report ("
                                       << (status ? describeStatus(*status) : "still running") << "):\n"
                                       << report);
    else if (died)
        FAIL_CHECK("the server died during the test: " << describeStatus(*died) << where());
    else if (!status)
        FAIL_CHECK("the server did not exit within " << kStopBound.count() << " s of SIGTERM" << where());
    else if (*status != 0)
        FAIL_CHECK("the server ended with " << describeStatus(*status) << " on SIGTERM" << where());
    else if (readText(m_process.logPath()).find(kStopOverran) != std::string::npos)
        FAIL_CHECK("the server's stop overran its bound on SIGTERM" << where());
}

void Server::signal(int signal) {
    m_ended = true;
    m_process.kill(signal);
}

std::optional<int> Server::crash(Clock::duration bound) {
    m_ended = true;
    m_process.signalMainThread(SIGSEGV);
    return waitOrKill(bound);
}

std::optional<int> Server::end(int signal, Clock::duration bound) {
    this->signal(signal);
    return waitOrKill(bound);
}

std::optional<int> Server::waitOrKill(Clock::duration bound) {
    auto status = m_process.wait(Clock::now() + bound);
    if (!status) {
        m_process.kill(SIGKILL);
        m_process.wait(Clock::now() + 10s);
    }
    return status;
}

double Server::metric(const std::string& sample) {
    auto r = httpRequest("GET", http() + "/metrics", {}, {}, m_ca);
    std::istringstream in(r.body);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(sample + " ", 0) == 0) return std::atof(line.c_str() + sample.size() + 1);
    }
    FAIL("no sample " << sample << " in GET /metrics (status " << r.status << "):\n" << r.body);
    return 0;
}

Client::Client(Server& server, const ClientOptions& options, const ClientPlace& place)
    : m_options(options),
      m_process(
          [&] {
              std::vector<std::string> argv = place.prefix;
              argv.insert(argv.end(),
                          {clientBinary(), "--server", place.serverUrl.empty() ? server.ws() : place.serverUrl,
                           "--room", options.room, "--name", options.name, "--color", options.color, "--tone",
                           std::to_string(options.tone), "--ice-address", place.iceAddress});
              if (!options.detect.empty()) {
                  std::string list;
                  for (int f : options.detect) list += (list.empty() ? "" : ",") + std::to_string(f);
                  argv.insert(argv.end(), {"--detect", list});
              }
              if (options.receiveOnly) argv.push_back("--receive-only");
              if (!server.ca().empty()) argv.insert(argv.end(), {"--ca", server.ca()});
              argv.insert(argv.end(), options.extra.begin(), options.extra.end());
              return argv;
          }(),
          logFor("client-" + options.name)) {}

std::optional<Json> Client::nextJson(Clock::time_point deadline) {
    while (auto line = m_process.readLine(deadline)) {
        try {
            return Json::parse(*line);
        } catch (const Json::exception&) {
            WARN("client " << m_options.name << " printed non-JSON: " << *line);
        }
    }
    return std::nullopt;
}

Json Client::waitEvent(const std::string& name, Clock::duration timeout) {
    for (auto it = m_pending.begin(); it != m_pending.end(); ++it) {
        if (it->value("event", "") == name) {
            Json e = *it;
            m_pending.erase(it);
            return e;
        }
    }
    auto deadline = Clock::now() + timeout;
    while (auto j = nextJson(deadline)) {
        if (j->value("event", "") == name) return *j;
        if (j->contains("event")) m_pending.push_back(*j);
    }
    FAIL("client " << m_options.name << " never reported event '" << name << "'; log: " << m_process.logPath());
    return {};
}

Json Client::report() { return call("report"); }

Json Client::call(const std::string& line) {
    const std::string verb = line.substr(0, line.find(' '));
    m_process.writeLine(line);
    // kDeadline, not less: with other suites running, load averages of 30 on
    // 2 cores were seen here, and a starved client answered after > 20 s.
    auto deadline = Clock::now() + kDeadline;
    while (auto j = nextJson(deadline)) {
        if (j->contains("event"))
            m_pending.push_back(*j);
        else if (j->value("reply", "") == verb)
            return *j;
        // else: the reply to an earlier command() nobody waited for.
    }
    FAIL("client " << m_options.name << " did not answer '" << verb << "'; log: " << m_process.logPath());
    return {};
}

Json Client::waitReport(const std::function<bool(const Json&)>& done, Clock::duration timeout) {
    auto deadline = Clock::now() + timeout;
    Json last;
    do {
        last = report();
        if (done(last)) return last;
        // Reports are cheap; between polls wait for any new output (an event)
        // for up to 200 ms rather than spinning.
        if (auto j = nextJson(Clock::now() + 200ms); j && j->contains("event")) m_pending.push_back(*j);
    } while (Clock::now() < deadline);
    return last;
}

Json Client::waitWidth(int width, Clock::duration timeout) {
    return waitReport([width](const Json& j) { return j.value("width", 0) == width; }, timeout);
}

void Client::leave() {
    m_process.writeLine("leave");
    auto status = m_process.wait(Clock::now() + 20s);
    INFO("client " << m_options.name << " log " << m_process.logPath() << ", its end:\n"
                   << logTail(m_process.logPath()));
    REQUIRE(status.has_value());
    REQUIRE(describeStatus(*status) == describeStatus(0));
}

int Client::waitExit(Clock::duration timeout) {
    auto status = m_process.wait(Clock::now() + timeout);
    INFO("client " << m_options.name << " log " << m_process.logPath() << ", its end:\n"
                   << logTail(m_process.logPath()));
    REQUIRE(status.has_value());
    return *status;
}

HttpResponse httpRequest(const std::string& method, const std::string& url, const std::string& body,
                         const std::string& bearer, const std::string& ca, const std::string& origin,
                         const std::string& contentType, const std::map<std::string, std::string>& headers) {
    SoupSession* session = soup_session_new();
    if (!ca.empty()) {
        GError* error = nullptr;
        GTlsDatabase* database = g_tls_file_database_new(ca.c_str(), &error);
        if (database == nullptr) FAIL("cannot read the CA file " << ca << ": " << (error ? error->message : "?"));
        soup_session_set_tls_database(session, database);
        g_object_unref(database);
    }
    SoupMessage* msg = soup_message_new(method.c_str(), url.c_str());
    if (!body.empty()) {
        GBytes* bytes = g_bytes_new(body.data(), body.size());
        soup_message_set_request_body_from_bytes(msg, contentType.c_str(), bytes);
        g_bytes_unref(bytes);
    }
    if (!bearer.empty())
        soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization",
                                     ("Bearer " + bearer).c_str());
    if (!origin.empty()) soup_message_headers_replace(soup_message_get_request_headers(msg), "Origin", origin.c_str());
    for (const auto& [name, value] : headers)
        soup_message_headers_replace(soup_message_get_request_headers(msg), name.c_str(), value.c_str());
    GError* error = nullptr;
    GBytes* reply = soup_session_send_and_read(session, msg, nullptr, &error);
    HttpResponse r;
    if (reply) {
        gsize size = 0;
        const char* data = static_cast<const char*>(g_bytes_get_data(reply, &size));
        r.body.assign(data ? data : "", size);
        r.status = static_cast<int>(soup_message_get_status(msg));
        const char* location = soup_message_headers_get_one(soup_message_get_response_headers(msg), "Location");
        r.location = location != nullptr ? location : "";
        soup_message_headers_foreach(
            soup_message_get_response_headers(msg),
            [](const char* name, const char* value, gpointer headers) {
                gchar* lower = g_ascii_strdown(name, -1);
                static_cast<std::multimap<std::string, std::string>*>(headers)->emplace(lower, value);
                g_free(lower);
            },
            &r.headers);
        g_bytes_unref(reply);
        if (GTlsCertificate* peer = soup_message_get_tls_peer_certificate(msg)) {
            gchar* pem = nullptr;
            g_object_get(peer, "certificate-pem", &pem, nullptr);
            r.peerCertificate = pem != nullptr ? pem : "";
            g_free(pem);
        }
    } else {
        WARN("HTTP " << method << " " << url << " failed: " << (error ? error->message : "?"));
        g_clear_error(&error);
    }
    g_object_unref(msg);
    g_object_unref(session);
    return r;
}

Run runTessera(const std::vector<std::string>& args) {
    const std::string log = freshDir("tessera-run") + "/stderr.log";
    std::vector<std::string> argv = {tesseraBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    Process process(argv, log);
    Run run;
    const auto deadline = Clock::now() + kDeadline;
    while (auto line = process.readLine(deadline)) run.out.push_back(*line);
    const auto status = process.wait(deadline);
    REQUIRE(status.has_value());
    run.status = *status;
    run.err = readText(log);
    return run;
}

// libsoup attaches its sources to the thread-default context of the call:
// every operation runs with this socket's own context pushed.
struct ContextScope {
    explicit ContextScope(GMainContext* c) : context(c) { g_main_context_push_thread_default(context); }
    ~ContextScope() { g_main_context_pop_thread_default(context); }
    GMainContext* context;
};

struct RawSocket::Impl {
    GMainContext* context = g_main_context_new();
    SoupSession* session = nullptr;
    SoupWebsocketConnection* ws = nullptr;
    std::deque<std::string> inbox;
    bool closed = false;
    bool connectDone = false;
};

namespace {

// Connects on `impl`'s context; returns the handshake's HTTP status.
int connectWebSocket(RawSocket::Impl& impl, const std::string& url, const std::string& origin) {
    ContextScope scope(impl.context);
    impl.session = soup_session_new();
    SoupMessage* msg = soup_message_new("GET", url.c_str());
    // What a browser sends: libsoup's `origin` argument becomes the Origin header.
    soup_session_websocket_connect_async(
        impl.session, msg, origin.empty() ? nullptr : origin.c_str(), nullptr, G_PRIORITY_DEFAULT, nullptr,
        [](GObject* source, GAsyncResult* result, gpointer data) {
            auto* impl = static_cast<RawSocket::Impl*>(data);
            impl->ws = soup_session_websocket_connect_finish(SOUP_SESSION(source), result, nullptr);
            impl->connectDone = true;
        },
        &impl);
    auto deadline = Clock::now() + 20s;
    while (!impl.connectDone && Clock::now() < deadline) g_main_context_iteration(impl.context, TRUE);
    const int status = static_cast<int>(soup_message_get_status(msg));
    g_object_unref(msg);
    return status;
}

} // namespace

int RawSocket::handshake(const std::string& url, const std::string& origin) {
    Impl impl;
    const int status = connectWebSocket(impl, url, origin);
    {
        ContextScope scope(impl.context);
        if (impl.ws) {
            soup_websocket_connection_close(impl.ws, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
            g_object_unref(impl.ws);
        }
        g_object_unref(impl.session);
        while (g_main_context_iteration(impl.context, FALSE)) {}
    }
    g_main_context_unref(impl.context);
    return status;
}

RawSocket::RawSocket(const std::string& url, const std::string& origin) : m_impl(new Impl) {
    const int status = connectWebSocket(*m_impl, url, origin);
    INFO("handshake status " << status);
    REQUIRE(m_impl->ws != nullptr);
    soup_websocket_connection_set_max_incoming_payload_size(m_impl->ws, 0);
    g_signal_connect(m_impl->ws, "message",
                     G_CALLBACK(+[](SoupWebsocketConnection*, gint type, GBytes* bytes, gpointer data) {
                         if (type != SOUP_WEBSOCKET_DATA_TEXT) return;
                         gsize size = 0;
                         const char* p = static_cast<const char*>(g_bytes_get_data(bytes, &size));
                         static_cast<Impl*>(data)->inbox.emplace_back(p, size);
                     }),
                     m_impl);
    g_signal_connect(
        m_impl->ws, "closed",
        G_CALLBACK(+[](SoupWebsocketConnection*, gpointer data) { static_cast<Impl*>(data)->closed = true; }), m_impl);
}

RawSocket::~RawSocket() {
    close();
    {
        ContextScope scope(m_impl->context);
        if (m_impl->ws) g_object_unref(m_impl->ws);
        g_object_unref(m_impl->session);
        while (g_main_context_iteration(m_impl->context, FALSE)) {}
    }
    g_main_context_unref(m_impl->context);
    delete m_impl;
}

void RawSocket::send(const std::string& text) {
    ContextScope scope(m_impl->context);
    // Closing (the server's close frame is in, ours not yet sent) counts as
    // closed: libsoup refuses, loudly, to send then.
    if (!m_impl->closed && soup_websocket_connection_get_state(m_impl->ws) == SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_send_text(m_impl->ws, text.c_str());
    while (g_main_context_iteration(m_impl->context, FALSE)) {}
}

std::optional<Json> RawSocket::receive(Clock::duration timeout) {
    ContextScope scope(m_impl->context);
    auto deadline = Clock::now() + timeout;
    while (m_impl->inbox.empty() && !m_impl->closed && Clock::now() < deadline) {
        // Wake at least every 50 ms to check the deadline.
        GSource* tick = g_timeout_source_new(50);
        g_source_set_callback(
            tick, [](gpointer) -> gboolean { return G_SOURCE_REMOVE; }, nullptr, nullptr);
        g_source_attach(tick, m_impl->context);
        g_main_context_iteration(m_impl->context, TRUE);
        g_source_destroy(tick);
        g_source_unref(tick);
    }
    if (m_impl->inbox.empty()) return std::nullopt;
    std::string text = std::move(m_impl->inbox.front());
    m_impl->inbox.pop_front();
    return Json::parse(text);
}

std::optional<Json> RawSocket::receiveType(const std::string& type, Clock::duration timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        auto j = receive(deadline - Clock::now());
        if (!j) return std::nullopt;
        if (j->value("type", "") == type) return j;
    }
    return std::nullopt;
}

bool RawSocket::closed() const { return m_impl->closed; }

void RawSocket::close() {
    ContextScope scope(m_impl->context);
    if (m_impl->ws && !m_impl->closed && soup_websocket_connection_get_state(m_impl->ws) == SOUP_WEBSOCKET_STATE_OPEN) {
        soup_websocket_connection_close(m_impl->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
        auto deadline = Clock::now() + 5s;
        while (!m_impl->closed && Clock::now() < deadline) g_main_context_iteration(m_impl->context, FALSE);
    }
}

Rgb thumbColor(const Json& report, double fx, double fy) {
    if (!report.contains("thumb") || !report["thumb"].is_object())
        return {-255, -255, -255}; // no frame yet: near() nothing
    const auto& t = report.at("thumb");
    const int w = t.at("w"), h = t.at("h");
    const std::string hex = t.at("rgb");
    int x = std::min(w - 1, static_cast<int>(fx * w));
    int y = std::min(h - 1, static_cast<int>(fy * h));
    size_t at = static_cast<size_t>((y * w + x) * 3 * 2);
    if (hex.size() < at + 6) return {};
    auto byte = [&](size_t i) { return std::stoi(hex.substr(at + i * 2, 2), nullptr, 16); };
    return {byte(0), byte(1), byte(2)};
}

std::string brief(const Json& report) {
    Json out = report;
    std::function<void(Json&)> shrink = [&](Json& j) {
        if (j.is_object() && j.contains("thumb") && j["thumb"].is_object() && j["thumb"].contains("rgb")) {
            Json& t = j["thumb"];
            const auto thumb =
                analysis::thumbnailFromHex(t.value("w", 0), t.value("h", 0), t["rgb"].get_ref<const std::string&>());
            Json grid = "undecodable";
            if (thumb && thumb->width > 0 && thumb->height > 0) {
                grid = Json::array();
                for (int row = 0; row < 4; ++row) {
                    std::string line;
                    for (int col = 0; col < 8; ++col)
                        line += (col ? " " : "") +
                                analysis::toString(thumb->at(col * thumb->width / 8 + thumb->width / 16,
                                                             row * thumb->height / 4 + thumb->height / 8));
                    grid.push_back(line);
                }
            }
            t.erase("rgb");
            t["grid"] = grid;
        }
        if (j.is_structured())
            for (auto& child : j) shrink(child);
    };
    shrink(out);
    return out.dump();
}

bool near(Rgb a, Rgb b, int tolerance) {
    return std::abs(a.r - b.r) <= tolerance && std::abs(a.g - b.g) <= tolerance && std::abs(a.b - b.b) <= tolerance;
}

const std::vector<Participant> kTrio = {
    {"red", "0xff0000", {255, 0, 0}, 440},
    {"green", "0x00ff00", {0, 255, 0}, 660},
    {"blue", "0x0000ff", {0, 0, 255}, 880},
};

std::vector<std::unique_ptr<Client>> joinAll(Server& server, const std::string& room,
                                             const std::vector<Participant>& who) {
    std::vector<int> tones;
    for (const auto& p : who) tones.push_back(p.tone);
    std::vector<std::unique_ptr<Client>> clients;
    for (const auto& p : who) {
        clients.push_back(
            std::make_unique<Client>(server, ClientOptions{room, p.name, p.color, p.tone, tones, false, {}}));
        clients.back()->waitEvent("joined");
    }
    return clients;
}

std::vector<std::pair<double, double>> gridCentres(size_t n) {
    // Written out from the documented grid (data/layouts/README.md: 2 -> 2x1,
    // 3-4 -> 2x2, the last row centred), not computed by the server's own
    // geometry code, which would agree with the server however wrong both are.
    switch (n) {
    case 1: return {{0.5, 0.5}};
    case 2: return {{0.25, 0.5}, {0.75, 0.5}};
    case 3: return {{0.25, 0.25}, {0.75, 0.25}, {0.5, 0.75}};
    case 4: return {{0.25, 0.25}, {0.75, 0.25}, {0.25, 0.75}, {0.75, 0.75}};
    default: FAIL("no grid written out for " << n << " tiles"); return {};
    }
}

double tone(const Json& report, int hz) { return report.at("tones").value(std::to_string(hz), -200.0); }

} // namespace tessera::testing
