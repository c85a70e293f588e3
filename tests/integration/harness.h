#pragma once
// Test harness for the integration suite: the real `tessera` server and real
// `tessera-client` processes (GStreamer webrtcbin peers) on loopback, driven
// through their stdin/stdout, plus raw WebSocket and HTTP access. Every wait
// is on an event or a polled condition with a deadline, never a fixed sleep.
#include <chrono>
#include <functional>
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

std::string tesseraBinary();
std::string clientBinary();

// A child process with piped stdin/stdout (stderr goes to a log file).
class Process {
public:
    Process(const std::vector<std::string>& argv, const std::string& logPath);
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    void writeLine(const std::string& line);
    // The next stdout line, or nullopt at the deadline or end of output.
    std::optional<std::string> readLine(Clock::time_point deadline);
    // Exit status, or nullopt if it did not exit by the deadline.
    std::optional<int> wait(Clock::time_point deadline);
    void kill(int signal);
    bool running();
    pid_t pid() const { return m_pid; }
    const std::string& logPath() const { return m_log; }

private:
    pid_t m_pid = -1;
    int m_in = -1, m_out = -1;
    std::string m_buffer;
    std::string m_log;
    std::optional<int> m_status;
};

// The tessera server on a free loopback port. With `loopbackIce` it gets
// --ice-address 127.0.0.1; without, it finds its ICE addresses itself.
class Server {
public:
    explicit Server(std::vector<std::string> extraArgs = {}, bool loopbackIce = true);
    std::string http() const { return "http://127.0.0.1:" + std::to_string(m_port); }
    std::string ws() const { return "ws://127.0.0.1:" + std::to_string(m_port) + "/ws"; }
    Process& process() { return m_process; }
    // Parsed GET /metrics: sample name with labels -> value.
    double metric(const std::string& sample);

private:
    Process m_process;
    int m_port = 0;
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

// A tessera-client process.
class Client {
public:
    Client(Server& server, const ClientOptions& options);
    // Waits for {"event": name}; returns it. Fails the test at the deadline.
    Json waitEvent(const std::string& name, Clock::duration timeout = kDeadline);
    // Sends "report" and returns the answer.
    Json report();
    // Sends a command line and returns its reply (the one whose "reply" is the verb).
    Json call(const std::string& line);
    // Polls reports until `done` holds; returns the last one. At the deadline
    // returns the last report anyway (the caller's REQUIRE shows it).
    Json waitReport(const std::function<bool(const Json&)>& done, Clock::duration timeout = kDeadline);
    void command(const std::string& line) { m_process.writeLine(line); }
    // Sends "leave" and waits for a clean exit.
    void leave();
    Process& process() { return m_process; }
    const ClientOptions& options() const { return m_options; }

private:
    std::optional<Json> nextJson(Clock::time_point deadline);
    ClientOptions m_options;
    Process m_process;
    std::vector<Json> m_pending; // lines read while waiting for something else
};

struct HttpResponse {
    int status = 0;
    std::string body;
};
HttpResponse httpRequest(const std::string& method, const std::string& url, const std::string& body = {},
                         const std::string& bearer = {});

// A raw WebSocket to /ws for protocol-level tests (bad input, races).
class RawSocket {
public:
    explicit RawSocket(const std::string& url);
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

private:
    struct Impl;
    Impl* m_impl;
};

// Decodes the client's report thumbnail and returns the colour at (fx, fy),
// fractions of the frame.
struct Rgb {
    int r = 0, g = 0, b = 0;
};
Rgb thumbColor(const Json& report, double fx, double fy);
bool near(Rgb a, Rgb b, int tolerance = 60);

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
