#pragma once
// Test harness for the integration suite: the real `tessera` server and real
// `tessera-client` processes (GStreamer webrtcbin peers) on loopback, driven
// through their stdin/stdout, plus raw WebSocket and HTTP access. Every wait
// is on an event or a polled condition with a deadline, never a fixed sleep.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <sys/types.h>

namespace tessera::testing {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Generous: ICE and start-up on a loaded 2-core machine are slow.
inline constexpr auto kDeadline = 60s;
// How long the server may take to exit on SIGTERM: it finalises running
// recordings first, for at most its 20 s grace period.
inline constexpr auto kStopBound = 30s;
// What the server logs when a stop overran its own bound and it exited
// anyway (src/app/signals.cpp): status 0, but a bug.
inline constexpr const char* kStopOverran = "STOP OVERRAN ITS BOUND";

// Polls `done` every 100 ms until it holds (true) or `timeout` passes (false).
bool waitUntil(const std::function<bool()>& done, Clock::duration timeout = kDeadline);

std::string tesseraBinary();
std::string clientBinary();

// A fresh log file path in the artifacts directory (TESSERA_ARTIFACTS), named after `what`.
std::string logFor(const std::string& what);
// The last lines of a log file, for failure messages.
std::string logTail(const std::string& path, std::size_t lines = 40);
// The head of the first AddressSanitizer, LeakSanitizer or
// UndefinedBehaviorSanitizer report in a log ("" if it has none): what a
// sanitizer build (scripts/test's integration-asan) writes to stderr.
std::string sanitizerReport(const std::string& path, std::size_t lines = 40);
// An exit status as Process::wait returns it, in words ("exit 0", "killed by signal 11 (Segmentation fault)").
std::string describeStatus(int status);

// A child process with piped stdin/stdout (stderr goes to a log file).
// Whoever ends it, a sanitizer report in its log fails the test (once).
class Process {
public:
    Process(const std::vector<std::string>& argv, const std::string& logPath);
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    void writeLine(const std::string& line);
    // The next stdout line, or nullopt at the deadline or end of output.
    std::optional<std::string> readLine(Clock::time_point deadline);
    // Exit status (-N when killed by signal N), or nullopt if it did not
    // exit by the deadline.
    std::optional<int> wait(Clock::time_point deadline);
    void kill(int signal);
    // To the main thread only (tgkill): a signal it blocks stays pending.
    void signalMainThread(int signal);
    bool running();
    pid_t pid() const { return m_pid; }
    const std::string& logPath() const { return m_log; }
    // The head of a sanitizer report in the log the first time it is asked
    // for, then "" (the destructor fails the test with it unless someone
    // else already did).
    std::string takeSanitizerReport();

private:
    pid_t m_pid = -1;
    bool m_reportTaken = false;
    int m_in = -1, m_out = -1;
    std::string m_buffer;
    std::string m_log;
    std::optional<int> m_status;
};

// The tessera server on a free loopback port. With `loopbackIce` it gets
// --ice-address 127.0.0.1; without, it finds its ICE addresses itself. With
// "--cert FILE" among the arguments it serves HTTPS/WSS, and that file (a
// self-signed certificate) is what its clients and requests trust.
//
// Every test checks that its server survived: the destructor (after the
// test's clients, declared later, are gone) checks that the server is still
// running and exits 0 on SIGTERM within kStopBound, and reports otherwise as
// a Catch2 failure with the server's log tail. It uses only non-fatal
// assertions, so it never throws, also while a failed REQUIRE unwinds.
class Server {
public:
    explicit Server(std::vector<std::string> extraArgs = {}, bool loopbackIce = true);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    // The survival check, at a point the test chooses (the destructor then
    // checks nothing more).
    void stop();
    // Ends the server on purpose (a crash test's SIGKILL, a shutdown test's
    // SIGTERM): sends `signal`, waits up to `bound` and returns the exit
    // status (nullopt: still running, then killed). The destructor then
    // checks nothing; the caller checks the status.
    std::optional<int> end(int signal, Clock::duration bound);
    // A crash: SIGSEGV to the main thread, then as end(). Sent to the
    // process, it went to any thread that had it unblocked: once, while the
    // main thread was creating a thread (pthread_create blocks every signal
    // around it), to the new thread, still in start_thread, whose report had
    // one frame to show.
    std::optional<int> crash(Clock::duration bound);
    // Sends `signal` on purpose and leaves the waiting to the caller, who
    // checks how the server ends (the destructor checks nothing).
    void signal(int signal);
    std::string http() const { return (m_ca.empty() ? "http" : "https") + std::string("://127.0.0.1:") + port(); }
    std::string ws() const { return (m_ca.empty() ? "ws" : "wss") + std::string("://127.0.0.1:") + port() + "/ws"; }
    // The certificate file to trust; "" without TLS.
    const std::string& ca() const { return m_ca; }
    Process& process() { return m_process; }
    // The value of one sample of GET /metrics, named with its labels
    // (`tessera_recording{room="a"}`); fails the test if there is no such sample.
    double metric(const std::string& sample);

private:
    // Waits up to `bound` for the exit status; kills the server if it is still running.
    std::optional<int> waitOrKill(Clock::duration bound);
    std::string port() const { return std::to_string(m_port); }
    std::string m_ca;
    Process m_process;
    int m_port = 0;
    bool m_ended = false;
};

struct ClientOptions {
    std::string room = "test";
    std::string name;
    std::string color = "0xff0000";
    int tone = 440;
    std::vector<int> detect;
    bool receiveOnly = false;
    std::vector<std::string> extra;
};

// Where a client runs, when not beside the server on loopback.
struct ClientPlace {
    // A command it runs under (e.g. one that gives it a network namespace of
    // its own); empty: none.
    std::vector<std::string> prefix;
    std::string serverUrl;                // empty: the server's loopback URL
    std::string iceAddress = "127.0.0.1"; // the address its ICE gathers on
};

// A tessera-client process.
class Client {
public:
    Client(Server& server, const ClientOptions& options, const ClientPlace& place = {});
    // Waits for {"event": name}; returns it. Fails the test at the deadline.
    Json waitEvent(const std::string& name, Clock::duration timeout = kDeadline);
    // Sends "report" and returns the answer.
    Json report();
    // Sends a command line and returns its reply (the one whose "reply" is the verb).
    Json call(const std::string& line);
    // Polls reports until `done` holds; returns the last one. At the deadline
    // returns the last report anyway (the caller's REQUIRE shows it).
    Json waitReport(const std::function<bool(const Json&)>& done, Clock::duration timeout = kDeadline);
    // Polls reports until the decoded picture is `width` wide; returns the
    // last one. A receiver whose link the server can probe starts on the
    // lowest quality tier and steps up once a probe passed
    // (docs/architecture.md, "A probe before every up-step").
    Json waitWidth(int width, Clock::duration timeout = kDeadline);
    void command(const std::string& line) { m_process.writeLine(line); }
    // Sends "leave" and requires a clean exit (status 0).
    void leave();
    // Waits for the client to exit by itself (after the server closed its
    // socket) and returns its exit status; fails the test if it does not.
    int waitExit(Clock::duration timeout = 20s);
    Process& process() { return m_process; }
    const ClientOptions& options() const { return m_options; }

private:
    std::optional<Json> nextJson(Clock::time_point deadline);
    ClientOptions m_options;
    Process m_process;
    std::vector<Json> m_pending; // lines read while waiting for something else
};

struct HttpResponse {
    int status = 0; // 0: no response (refused, TLS failure)
    std::string body;
    std::string peerCertificate;                     // https: the server's certificate, PEM
    std::string location;                            // the Location header, if any
    std::multimap<std::string, std::string> headers; // every response header, names in lower case
};
// `ca`: for https, trust only the certificates in this PEM file.
// `origin`: sent as the Origin header, as a browser page would (empty: none).
// `headers`: more request headers.
HttpResponse httpRequest(const std::string& method, const std::string& url, const std::string& body = {},
                         const std::string& bearer = {}, const std::string& ca = {}, const std::string& origin = {},
                         const std::string& contentType = "application/json",
                         const std::map<std::string, std::string>& headers = {});

struct Run {
    int status = -1;
    std::vector<std::string> out; // stdout lines
    std::string err;              // stderr
};
// Runs the tessera binary with `args` to its exit.
Run runTessera(const std::vector<std::string>& args);

// A raw WebSocket to /ws for protocol-level tests (bad input, races).
class RawSocket {
public:
    // Fails the test unless the handshake succeeds; `origin` is sent as the
    // Origin header (empty: none).
    explicit RawSocket(const std::string& url, const std::string& origin = {});
    // The HTTP status of a handshake the server refused (0: it did not
    // answer); 101 when it was accepted.
    static int handshake(const std::string& url, const std::string& origin);
    ~RawSocket();
    RawSocket(const RawSocket&) = delete;
    RawSocket& operator=(const RawSocket&) = delete;
    void send(const std::string& text);
    // Next text message as JSON (nullopt at the deadline or on close).
    std::optional<Json> receive(Clock::duration timeout = 20s);
    // Waits for a message of the given type, skipping others.
    std::optional<Json> receiveType(const std::string& type, Clock::duration timeout = 20s);
    bool closed() const;
    void close();

    struct Impl; // harness.cpp

private:
    Impl* m_impl;
};

// Decodes the client's report thumbnail and returns the colour at (fx, fy),
// fractions of the frame.
struct Rgb {
    int r = 0, g = 0, b = 0;
};
Rgb thumbColor(const Json& report, double fx, double fy);
bool near(Rgb a, Rgb b, int tolerance = 60);
// A client's report for a failure message: each thumbnail's pixels (tens of
// kilobytes of hex, which would push the rest of a run's output out of CI's
// view) replaced by its colours on a coarse 8 x 4 grid, row by row.
std::string brief(const Json& report);

// A participant the tests can tell apart: its colour in the grid and its tone.
struct Participant {
    std::string name;
    std::string color;
    Rgb rgb;
    int tone;
};
// Red 440 Hz, green 660 Hz, blue 880 Hz.
extern const std::vector<Participant> kTrio;

// Starts clients one after the other (so join order, hence tile order, is
// fixed) and waits until each has joined.
std::vector<std::unique_ptr<Client>> joinAll(Server& server, const std::string& room,
                                             const std::vector<Participant>& who);
// Tile centres of the default grid, as fractions of the canvas, in join order.
std::vector<std::pair<double, double>> gridCentres(size_t n);
// A report's level of a detected tone, dBFS (-200 when not measured).
double tone(const Json& report, int hz);

} // namespace tessera::testing
