// Recording rules docs/recording.md promises beyond the happy path: a stop
// that cannot finish in 15 s, shutdown with a recording that cannot finish,
// file names within one second, a failure in the metadata, --record-all,
// finalising when the last participant leaves, and segmentBytes.
#include <chrono>
#include <csignal>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <future>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <glib.h>
#include <gst/gst.h>

#include "files.h"
#include "harness.h"

using namespace tessera::testing;
namespace fs = std::filesystem;

namespace {

// The stems the server gives a room's recording started within `seconds`
// from one second ago (docs/recording.md: <room>-<YYYYMMDD>T<HHMMSS>Z).
std::vector<std::string> upcomingStems(const std::string& room, int seconds) {
    std::vector<std::string> stems;
    const std::time_t now = std::time(nullptr);
    for (std::time_t t = now - 1; t <= now + seconds; ++t) {
        std::tm utc{};
        gmtime_r(&t, &utc);
        char text[32];
        std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &utc);
        stems.push_back(room + "-" + text);
    }
    return stems;
}

// A storage that stops taking data: FIFOs where the next recordings' files
// will be, each with a reader that reads nothing until told to, and a 4 KiB
// pipe. The recorder's writes block once that is full, as on a hung network
// file system; drain() lets them go on (read to the end, so the server never
// writes to a pipe without a reader).
class StalledStorage {
public:
    StalledStorage(const std::string& dir, const std::string& room, const std::string& extension) {
        for (const std::string& stem : upcomingStems(room, 30)) {
            const std::string path = dir + "/" + stem + "." + extension;
            REQUIRE(mkfifo(path.c_str(), 0644) == 0);
            const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
            REQUIRE(fd >= 0);
            fcntl(fd, F_SETPIPE_SZ, 4096);
            m_readers.emplace_back(path, fd);
        }
    }
    ~StalledStorage() {
        drain();
        if (m_drainer.joinable()) m_drainer.join();
        for (const auto& reader : m_readers) close(reader.second);
    }
    // Waits until the recorder has filled the pipe of `file`: it is blocked.
    // A write that does not fit waits whole, so "full" is over half the pipe
    // and no growth for a second (the recorder writes ~10 kB/s or more).
    bool waitBlocked(const std::string& file) {
        const int fd = readerOf(file);
        const auto deadline = Clock::now() + kDeadline;
        int queued = 0, previous = -1;
        while (Clock::now() < deadline) {
            if (ioctl(fd, FIONREAD, &queued) != 0) return false;
            if (queued > 2048 && queued == previous) return true;
            previous = queued;
            std::this_thread::sleep_for(1s);
        }
        WARN(queued << " bytes in the pipe of " << file);
        return false;
    }
    // From now on, reads every pipe to its end (the writer closed it).
    void drain() {
        if (m_drainer.joinable()) return;
        m_drainer = std::thread([fds = fds()] {
            std::vector<pollfd> open;
            for (int fd : fds) open.push_back({fd, POLLIN, 0});
            const auto deadline = Clock::now() + 2 * kDeadline;
            char buffer[65536];
            while (Clock::now() < deadline) {
                if (poll(open.data(), open.size(), 100) < 0) break;
                bool writer = false;
                for (pollfd& p : open) {
                    if (p.fd < 0) continue;
                    const ssize_t n = read(p.fd, buffer, sizeof buffer);
                    // 0: no writer now. Only the recording's FIFO ever had one;
                    // keep reading it until the server is gone.
                    if (n > 0 || (n < 0 && errno == EAGAIN)) writer = true;
                }
                if (!writer) break;
            }
        });
    }

private:
    int readerOf(const std::string& file) const {
        for (const auto& [path, fd] : m_readers) {
            if (path == file) return fd;
        }
        FAIL("the server's file " << file << " is not one of the FIFOs made for it");
        return -1;
    }
    std::vector<int> fds() const {
        std::vector<int> out;
        for (const auto& reader : m_readers) out.push_back(reader.second);
        return out;
    }
    std::vector<std::pair<std::string, int>> m_readers;
    std::thread m_drainer;
};

Json metadataOf(const std::string& file) {
    const std::string text = readText(metadataFor(file));
    INFO("metadata of " << file << ": " << text);
    REQUIRE_FALSE(text.empty());
    return Json::parse(text);
}

// Polls the metadata beside `file` until `done` holds; returns it.
Json waitMetadata(const std::string& file, const std::function<bool(const Json&)>& done) {
    const auto deadline = Clock::now() + kDeadline;
    Json last;
    while (Clock::now() < deadline) {
        const std::string text = readText(metadataFor(file));
        if (!text.empty()) {
            last = Json::parse(text);
            if (done(last)) break;
        }
        std::this_thread::sleep_for(100ms);
    }
    return last;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The server writes its log at this level: the shutdown tests read its steps.
struct AppLog {
    AppLog() { g_setenv("GST_DEBUG", "tessera-app:4", TRUE); }
    ~AppLog() { g_unsetenv("GST_DEBUG"); }
};

bool waitLog(const std::string& path, const std::string& text) {
    const auto deadline = Clock::now() + kDeadline;
    while (Clock::now() < deadline) {
        if (readText(path).find(text) != std::string::npos) return true;
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

} // namespace

TEST_CASE("a stop that cannot finish within 15 s answers 500 and the call goes on", "[recording][stall]") {
    const std::string dir = freshDir("recordings");
    StalledStorage storage(dir, "stall", "mkv");
    Server server(recorderArgs(dir));
    Client client(server, ClientOptions{"stall", "red", "0xff0000", 440, {}, false, {}});
    client.waitEvent("first-frame");
    const std::string url = server.http() + "/api/rooms/stall/recording";
    const auto start = httpRequest("POST", url);
    REQUIRE(start.status == 201);
    const std::string file = jsonOf(start).value("file", "");
    REQUIRE(storage.waitBlocked(file));

    const auto stopping = Clock::now();
    auto stop = std::async(std::launch::async, [&] { return httpRequest("DELETE", url); });
    // The documented limit is the thing under test: nothing may answer before it.
    CHECK(stop.wait_for(14s) == std::future_status::timeout);
    std::this_thread::sleep_until(stopping + 16s);
    // Let the blocked write return, or the recorder could not be torn down.
    storage.drain();
    REQUIRE(stop.wait_for(kDeadline) == std::future_status::ready);
    const HttpResponse answer = stop.get();
    INFO("answered after " << seconds(Clock::now() - stopping) << " s: " << answer.body);
    CHECK(answer.status == 500);
    CHECK(jsonOf(answer).value("error", "") == "internal");
    CHECK_THAT(jsonOf(answer).value("message", ""), Catch::Matchers::Contains("15 s"));

    const Json room = jsonOf(httpRequest("GET", server.http() + "/api/rooms/stall"));
    CHECK_FALSE(room.value("recording", true));
    CHECK_THAT(room.value("recordingError", ""), Catch::Matchers::Contains("15 s"));
    CHECK(metadataOf(file).value("state", "") == "failed");
    const auto before = client.report().value("frames", 0);
    const auto after = client.waitReport([&](const Json& r) { return r.value("frames", 0) > before + 30; });
    CHECK(after.value("frames", 0) > before + 30);
    client.leave();
}

namespace {

// A SIGTERM, then maybe a second one, with the recorder's writes blocked.
void shutDownStalled(bool second) {
    INFO((second ? "a second SIGTERM" : "one SIGTERM"));
    const std::string dir = freshDir("recordings");
    StalledStorage storage(dir, "grace", "mkv");
    AppLog log;
    Server server(recorderArgs(dir));
    Client client(server, ClientOptions{"grace", "red", "0xff0000", 440, {}, false, {}});
    client.waitEvent("first-frame");
    const auto start = httpRequest("POST", server.http() + "/api/rooms/grace/recording");
    REQUIRE(start.status == 201);
    const std::string file = jsonOf(start).value("file", "");
    REQUIRE(storage.waitBlocked(file));

    const auto signalled = Clock::now();
    server.signal(SIGTERM);
    const std::string& serverLog = server.process().logPath();
    REQUIRE(waitLog(serverLog, "finishing recordings and shutting down"));
    if (second) {
        server.signal(SIGTERM);
        REQUIRE(waitLog(serverLog, "second signal, quitting now"));
        CHECK(seconds(Clock::now() - signalled) < 10);
    } else {
        // Still waiting for the recording well into the grace period ...
        std::this_thread::sleep_until(signalled + 18s);
        CHECK(server.process().running());
        // ... and gives up at its end.
        REQUIRE(waitLog(serverLog, "recordings did not finish within 20 s"));
        CHECK(seconds(Clock::now() - signalled) >= 19.5);
    }
    // The write is still blocked: it holds up neither the teardown nor the exit.
    const auto status = server.process().wait(Clock::now() + kDeadline);
    storage.drain();
    REQUIRE(status.has_value());
    INFO("exited " << seconds(Clock::now() - signalled) << " s after the first signal; log " << serverLog);
    CHECK(*status == 0);
    // Left as after a crash: the recording was never finished.
    const Json meta = metadataOf(file);
    CHECK(meta.value("state", "") == "recording");
    CHECK_FALSE(meta.contains("stopped"));
}

} // namespace

TEST_CASE("shutdown with a recording that cannot finish: a second signal quits at once",
          "[recording][shutdown][stall]") {
    shutDownStalled(true);
}

// At 15 s the recorder's stop limit takes the recorder out of the room while
// its write is still blocked: the main loop goes on to the grace's end.
TEST_CASE("shutdown with a recording that cannot finish: quits after the 20 s grace", "[recording][shutdown][stall]") {
    shutDownStalled(false);
}

TEST_CASE("a second recording in the same second gets -2; the first's metadata is kept", "[recording][names]") {
    const std::string dir = freshDir("recordings");
    // A recording of this room already exists for each of the next seconds
    // (written before a restart, or just stopped).
    const std::string earlier = R"({"room": "twice", "state": "finished"})";
    for (const std::string& stem : upcomingStems("twice", 30)) std::ofstream(dir + "/" + stem + ".json") << earlier;
    Server server(recorderArgs(dir));
    Client client(server, ClientOptions{"twice", "red", "0xff0000", 440, {}, false, {}});
    client.waitEvent("first-frame");
    const std::string url = server.http() + "/api/rooms/twice/recording";
    const auto start = httpRequest("POST", url);
    REQUIRE(start.status == 201);
    const std::string file = jsonOf(start).value("file", "");
    const std::string stem = fs::path(file).stem().string();
    INFO("file " << file);
    CHECK(fs::path(file).parent_path() == fs::path(dir));
    REQUIRE(stem.ends_with("-2"));
    const std::string first = stem.substr(0, stem.size() - 2);
    CHECK(readText(dir + "/" + first + ".json") == earlier);
    CHECK(waitMetadata(file, [](const Json& m) { return !m.at("segments").empty(); }).value("room", "") == "twice");
    const auto stop = httpRequest("DELETE", url);
    CHECK(stop.status == 200);
    CHECK(readText(dir + "/" + first + ".json") == earlier);
    CHECK(metadataOf(file).value("state", "") == "finished");
    client.leave();
}

TEST_CASE("a recorder failure while recording is \"state\": \"failed\" with the error in the metadata",
          "[recording][fault]") {
    const std::string dir = freshDir("recordings");
    // The media file cannot be opened: a directory has its name. The
    // metadata beside it can still be written.
    for (const std::string& stem : upcomingStems("broken", 30)) fs::create_directory(dir + "/" + stem + ".mkv");
    Server server(recorderArgs(dir));
    Client client(server, ClientOptions{"broken", "red", "0xff0000", 440, {}, false, {}});
    client.waitEvent("first-frame");
    const auto start = httpRequest("POST", server.http() + "/api/rooms/broken/recording");
    INFO("start " << start.status << " " << start.body);
    REQUIRE(start.status == 201);
    const std::string file = jsonOf(start).value("file", "");
    const Json meta = waitMetadata(file, [](const Json& m) { return m.value("state", "") == "failed"; });
    INFO("metadata " << meta.dump());
    CHECK(meta.value("state", "") == "failed");
    CHECK_FALSE(meta.value("error", "").empty());
    CHECK(meta.contains("stopped"));
    const Json room = waitRoom(server, "broken", [](const Json& r) { return !r.value("recording", true); });
    CHECK(room.value("recordingError", "") == meta.value("error", ""));
    CHECK(server.metric("tessera_recording_errors_total") == 1);
    client.leave();
}

TEST_CASE("--record-all records a room from its creation and finalises it when the last participant leaves",
          "[recording][auto]") {
    const std::string dir = freshDir("recordings");
    auto args = recorderArgs(dir);
    args.push_back("--record-all");
    Server server(args);
    Client first(server, ClientOptions{"always", "red", "0xff0000", 440, {}, false, {}});
    first.waitEvent("joined");
    // Recording from the start, nobody asked.
    const Json room = jsonOf(httpRequest("GET", server.http() + "/api/rooms/always"));
    CHECK(room.value("recording", false));
    const std::string file = room.value("recordingFile", "");
    REQUIRE_FALSE(file.empty());
    CHECK(fs::path(file).parent_path() == fs::path(dir));
    CHECK(server.metric("tessera_recording{room=\"always\"}") == 1);
    Client second(server, ClientOptions{"always", "green", "0x00ff00", 660, {}, false, {}});
    second.waitEvent("first-frame");
    CHECK(waitMetadata(file, [](const Json& m) { return m.at("timeline").size() == 2; }).at("timeline").size() == 2);
    const auto joined = Clock::now();
    first.waitEvent("first-frame");
    std::this_thread::sleep_until(joined + 3s); // some seconds of media

    first.leave();
    // One left: still recording.
    CHECK(waitRoom(server, "always", [](const Json& r) {
              return r.at("participants").size() == 1;
          }).value("recording", false));
    second.leave();
    const Json meta = waitMetadata(file, [](const Json& m) { return m.value("state", "") == "finished"; });
    INFO("metadata " << meta.dump());
    CHECK(meta.value("state", "") == "finished");
    CHECK(meta.value("duration", 0.0) > 2.0);
    CHECK(fs::file_size(file) > 10'000);
    // And the room goes away after.
    const auto deadline = Clock::now() + kDeadline;
    while (Clock::now() < deadline && !jsonOf(httpRequest("GET", server.http() + "/api/rooms")).empty())
        std::this_thread::sleep_for(100ms);
    CHECK(jsonOf(httpRequest("GET", server.http() + "/api/rooms")).empty());
    CHECK(httpRequest("GET", server.http() + "/api/rooms/always").status == 404);
}

TEST_CASE("segmentBytes: a new file each time one reaches about that size", "[recording][segments]") {
    // Camera-like (noisy) video, so that the recorder reaches its bit rate: a
    // solid colour would take minutes to fill a segment.
    const std::string dir = freshDir("recordings");
    const std::string media = dir + "/noise.mkv";
    {
        gst_init(nullptr, nullptr);
        const std::string description =
            "videotestsrc num-buffers=150 pattern=snow ! video/x-raw,width=640,height=360,framerate=30/1 "
            "! vp8enc deadline=1 cpu-used=8 threads=1 end-usage=cbr target-bitrate=2000000 keyframe-max-dist=30 "
            "! queue ! mux. audiotestsrc num-buffers=250 samplesperbuffer=960 wave=sine freq=440 volume=0.3 "
            "! audio/x-raw,rate=48000,channels=1 ! opusenc frame-size=20 ! queue ! mux. "
            "matroskamux name=mux ! filesink location=" +
            media;
        GError* error = nullptr;
        GstElement* pipeline = gst_parse_launch(description.c_str(), &error);
        REQUIRE(pipeline);
        gst_element_set_state(pipeline, GST_STATE_PLAYING);
        GstBus* bus = gst_element_get_bus(pipeline);
        GstMessage* done =
            gst_bus_timed_pop_filtered(bus, 120 * GST_SECOND, GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
        REQUIRE(done);
        CHECK(GST_MESSAGE_TYPE(done) == GST_MESSAGE_EOS);
        gst_message_unref(done);
        gst_object_unref(bus);
        gst_element_set_state(pipeline, GST_STATE_NULL);
        gst_object_unref(pipeline);
    }
    constexpr std::uint64_t kLimit = 1'000'000;
    auto args = recorderArgs(dir);
    args.insert(args.end(), {"--record-segment-bytes", std::to_string(kLimit), "--record-bitrate", "4000000"});
    Server server(args);
    Client client(server, ClientOptions{"bytes", "noise", "0xff0000", 440, {}, false, {"--send-file", media}});
    client.waitEvent("first-frame");
    const std::string url = server.http() + "/api/rooms/bytes/recording";
    const auto start = httpRequest("POST", url);
    REQUIRE(start.status == 201);
    const std::string first = jsonOf(start).value("file", "");
    CHECK(first.ends_with("-00000.mkv"));
    const Json meta = waitMetadata(first, [](const Json& m) { return m.at("segments").size() >= 4; });
    REQUIRE(meta.at("segments").size() >= 4);
    const auto stop = httpRequest("DELETE", url);
    REQUIRE(stop.status == 200);
    const Json segments = metadataOf(first).at("segments");
    // Every file but the last was closed for its size: no larger than the
    // limit (split at a key frame before it), and not much smaller either.
    for (std::size_t i = 0; i + 1 < segments.size(); ++i) {
        const std::string file = segments[i].value("file", "");
        const auto size = fs::file_size(file);
        INFO(file << ": " << size << " bytes");
        CHECK(size <= kLimit * 11 / 10);
        CHECK(size >= kLimit * 3 / 10);
    }
    client.leave();
}
