// Live streaming of the mix (issue 14): a real room of tessera-clients goes
// live to HLS, read back over HTTP with ffprobe and decoded, and to RTMP, a
// local ffmpeg RTMP server started by the test (in the test's loopback-only
// namespace); killing that server fails only its target.
#include <cctype>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <regex>
#include <sstream>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "decode.h"
#include "files.h"
#include "harness.h"

using namespace tessera::testing;
namespace fs = std::filesystem;

namespace {

constexpr const char* kFfmpeg = "/usr/bin/ffmpeg";
constexpr const char* kFfprobe = "/usr/bin/ffprobe";
constexpr const char* kRtmpUrl = "rtmp://127.0.0.1:19350/live/test";

// A small call (smallCall) streamed at its own size, which decodeFile reads;
// `extraConfig`: more top-level keys of the config file (",\"key\": ...").
std::vector<std::string> liveArgs(const std::string& dir, const std::string& extraConfig = {}) {
    const std::string config = dir + "/config.json";
    std::ofstream(config) << R"({"live": {"dir": ")" << dir
                          << R"(/live", "width": 640, "height": 360, "bitrate": 600000, "audioBitrate": 96000})"
                          << extraConfig << "}";
    return smallCall({"--config", config});
}

// An RTMP server that hangs: a TCP port whose connections the kernel accepts
// (from the listen backlog) but nobody reads or answers. An RTMP client's
// handshake goes out and nothing comes back.
class HungServer {
public:
    HungServer() {
        m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(m_fd >= 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t size = sizeof address;
        REQUIRE(::bind(m_fd, reinterpret_cast<sockaddr*>(&address), size) == 0);
        REQUIRE(::listen(m_fd, 8) == 0);
        REQUIRE(::getsockname(m_fd, reinterpret_cast<sockaddr*>(&address), &size) == 0);
        m_port = ntohs(address.sin_port);
    }
    ~HungServer() { ::close(m_fd); }
    HungServer(const HungServer&) = delete;
    HungServer& operator=(const HungServer&) = delete;
    std::string url(const std::string& key) const {
        return "rtmp://127.0.0.1:" + std::to_string(m_port) + "/live/" + key;
    }

private:
    int m_fd = -1;
    int m_port = 0;
};

// The server's pipelines, copied into `dir`, with `edit` applied to one fragment.
std::string pipelinesWith(const std::string& dir, const std::string& fragment,
                          const std::function<std::string(std::string)>& edit) {
    fs::path source = "pipelines";
    if (!fs::is_directory(source)) source = fs::path(TESSERA_SOURCE_DIR) / "pipelines";
    const fs::path target = fs::path(dir) / "pipelines";
    fs::create_directories(target);
    for (const auto& entry : fs::directory_iterator(source)) {
        if (entry.path().extension() != ".pipeline") continue;
        std::string text = readText(entry.path().string());
        if (entry.path().stem() == fragment) {
            const std::string edited = edit(text);
            REQUIRE(edited != text);
            text = edited;
        }
        std::ofstream(target / entry.path().filename()) << text;
    }
    return target.string();
}

// How many lines of the log file have `text`.
std::size_t linesWith(const std::string& log, const std::string& text) {
    std::ifstream in(log);
    std::size_t n = 0;
    for (std::string line; std::getline(in, line);)
        if (line.find(text) != std::string::npos) ++n;
    return n;
}

// Runs a program to its exit; returns its stdout.
std::string output(const std::vector<std::string>& argv, const std::string& log) {
    Process process(argv, log);
    std::string out;
    const auto deadline = Clock::now() + kDeadline;
    while (auto line = process.readLine(deadline)) out += *line + "\n";
    const auto status = process.wait(deadline);
    INFO(argv[0] << ": " << logTail(log));
    CHECK(status == 0);
    return out;
}

// The seconds the HLS playlist has streamed so far: what it lists, and what
// it no longer lists (EXT-X-MEDIA-SEQUENCE segments of live.segmentSeconds).
double streamedSeconds(const std::string& playlist) {
    static const std::regex sequence(R"(#EXT-X-MEDIA-SEQUENCE:(\d+))"), extinf(R"(#EXTINF:([0-9.]+))");
    double seconds = 0;
    std::smatch m;
    if (std::regex_search(playlist, m, sequence)) seconds += 2.0 * std::stod(m[1].str());
    for (std::sregex_iterator it(playlist.begin(), playlist.end(), extinf), end; it != end; ++it)
        seconds += std::stod((*it)[1].str());
    return seconds;
}

double streamed(Server& server, const std::string& room) {
    const auto r = httpRequest("GET", server.http() + "/live/" + room + "/index.m3u8");
    return r.status == 200 ? streamedSeconds(r.body) : 0;
}

// Whether the room's served HLS playlist is a finished stream.
bool ended(Server& server, const std::string& room) {
    const auto r = httpRequest("GET", server.http() + "/live/" + room + "/index.m3u8");
    return r.status == 200 && r.body.find("#EXT-X-ENDLIST") != std::string::npos;
}

// ffprobe's duration of a playlist: "N/A" while it is live (ffmpeg's HLS
// demuxer knows one only for a finished playlist).
std::string probedDuration(const std::string& url) {
    std::string out = output(
        {kFfprobe, "-v", "error", "-show_entries", "format=duration", "-of", "default=noprint_wrappers=1:nokey=1", url},
        logFor("ffprobe"));
    while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
    return out;
}

// ffprobe finds H.264 video and AAC audio in the stream at `url`.
void checkH264Aac(const std::string& url) {
    const std::string probe =
        output({kFfprobe, "-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "compact", url},
               logFor("ffprobe"));
    INFO("ffprobe: " << probe);
    CHECK(probe.find("codec_name=h264|codec_type=video") != std::string::npos);
    CHECK(probe.find("codec_name=aac|codec_type=audio") != std::string::npos);
}

// The frames each client has received so far.
std::vector<int> framesOf(const std::vector<std::unique_ptr<Client>>& clients) {
    std::vector<int> frames;
    for (const auto& c : clients) frames.push_back(c->report().value("frames", 0));
    return frames;
}

// The call goes on: each client receives 30 frames more than `before`.
void checkCallGoesOn(const std::vector<std::unique_ptr<Client>>& clients, const std::vector<int>& before) {
    for (std::size_t k = 0; k < clients.size(); ++k) {
        const int was = before[k];
        const Json r = clients[k]->waitReport([&](const Json& j) { return j.value("frames", 0) > was + 30; });
        CHECK(r.value("frames", 0) > was + 30);
    }
}

// The live target with this id in the room's details ({} when absent).
Json target(const Json& room, const std::string& id) {
    if (room.is_object())
        for (const auto& t : room.value("live", Json::array()))
            if (t.value("id", "") == id) return t;
    return Json::object();
}

// The two-participant grid's colours at their tiles, and their tones.
void checkMix(const Decoded& d, const std::vector<Participant>& who, const std::string& what) {
    INFO(what << ": " << d.frames.size() << " frames, " << d.chunks.size() << " audio chunks, error '" << d.error
              << "'");
    REQUIRE(d.frames.size() > 15);
    REQUIRE(d.chunks.size() > 20);
    const auto centres = gridCentres(who.size());
    const Decoded::Frame& frame = d.frames[d.frames.size() * 3 / 4];
    for (std::size_t k = 0; k < who.size(); ++k) {
        const auto c = colourAt(frame, centres[k].first, centres[k].second);
        INFO(who[k].name << "'s tile at " << frame.pts << " s: " << int(c.r) << "," << int(c.g) << "," << int(c.b));
        CHECK(looksLike(c, who[k].rgb));
    }
    const double from = d.chunks.front().pts, to = d.chunks.back().end;
    std::vector<double> tones;
    for (const auto& p : who) tones.push_back(p.tone);
    const auto levels = toneLevels(d, from + (to - from) / 4, to - (to - from) / 4, tones);
    for (std::size_t k = 0; k < who.size(); ++k) {
        INFO(who[k].tone << " Hz at " << levels[k] << " dBFS");
        CHECK(levels[k] > -30);
    }
}

// A local RTMP server: ffmpeg receiving one stream into a file.
std::unique_ptr<Process> rtmpServer(const std::string& file) {
    return std::make_unique<Process>(std::vector<std::string>{kFfmpeg, "-nostdin", "-hide_banner", "-loglevel", "info",
                                                              "-listen", "1", "-i", kRtmpUrl, "-c", "copy", "-y", file},
                                     logFor("rtmp-server"));
}

} // namespace

TEST_CASE("live HLS: ffprobe finds H.264 + AAC, the stream grows, a segment shows the room's colours and tones",
          "[live][hls]") {
    const std::string dir = freshDir("live");
    Server server(liveArgs(dir));
    const std::vector<Participant> duo = {kTrio[0], kTrio[1]};
    auto clients = joinAll(server, "hls", duo);
    for (auto& c : clients) c->waitEvent("first-frame");

    auto start = httpRequest("POST", server.http() + "/api/rooms/hls/live", R"({"hls": true})");
    REQUIRE(start.status == 201);
    const Json started = jsonOf(start);
    CHECK(started["live"][0]["url"] == "/live/hls/index.m3u8");
    CHECK(started["live"][0]["state"] == "running");

    // The playlist appears once the first segment is complete, and grows.
    double first = 0;
    REQUIRE(waitUntil([&] { return (first = streamed(server, "hls")) >= 4; }));
    const auto playlist = httpRequest("GET", server.http() + "/live/hls/index.m3u8");
    CHECK(playlist.headers.find("content-type")->second == "application/vnd.apple.mpegurl");
    double later = 0;
    REQUIRE(waitUntil([&] { return (later = streamed(server, "hls")) >= first + 4; }));
    INFO("streamed " << first << " s, then " << later << " s");

    checkH264Aac(server.http() + "/live/hls/index.m3u8");

    // The newest segment listed, fetched as a player would, decoded.
    static const std::regex segment(R"((segment\d+\.ts))");
    std::string name;
    for (std::sregex_iterator it(playlist.body.begin(), playlist.body.end(), segment), end; it != end; ++it)
        name = (*it)[1].str();
    REQUIRE(!name.empty());
    const auto ts = httpRequest("GET", server.http() + "/live/hls/" + name);
    REQUIRE(ts.status == 200);
    CHECK(ts.headers.find("content-type")->second == "video/mp2t");
    const std::string file = dir + "/" + name;
    std::ofstream(file, std::ios::binary) << ts.body;
    checkMix(decodeFile(file), duo, name);

    CHECK(server.metric(R"(tessera_live_targets{room="hls",kind="hls",state="running"})") == 1);
    auto stop = httpRequest("DELETE", server.http() + "/api/rooms/hls/live");
    CHECK(stop.status == 200);
    CHECK(jsonOf(stop)["live"].empty());
    // Stopped: the stream is still served, and ends (the next test case).
    CHECK(waitUntil([&] { return ended(server, "hls"); }));
    CHECK_FALSE(jsonOf(httpRequest("GET", server.http() + "/api/rooms/hls")).contains("live"));
    for (auto& c : clients) c->leave();
}

TEST_CASE("live HLS: a stopped stream ends its playlist, ffprobe reads it as finished, the call goes on",
          "[live][hls]") {
    const std::string dir = freshDir("live");
    Server server(liveArgs(dir));
    const std::vector<Participant> duo = {kTrio[0], kTrio[1]};
    auto clients = joinAll(server, "hlsend", duo);
    for (auto& c : clients) c->waitEvent("first-frame");
    const std::string api = server.http() + "/api/rooms/hlsend/live";
    const std::string url = server.http() + "/live/hlsend/index.m3u8";

    REQUIRE(httpRequest("POST", api, R"({"hls": true})").status == 201);
    double before = 0;
    REQUIRE(waitUntil([&] { return (before = streamed(server, "hlsend")) >= 4; }));
    CHECK(probedDuration(url) == "N/A"); // live: no end known
    const std::vector<int> framesBefore = framesOf(clients);

    const auto stop = httpRequest("DELETE", api);
    REQUIRE(stop.status == 200);
    CHECK(jsonOf(stop)["live"].empty());
    // The stream ends: its last segment (what came after the last one
    // listed), then the end tag; the whole stream is still listed (it is
    // shorter than the playlist) and served.
    std::string playlist;
    REQUIRE(waitUntil([&] {
        const auto r = httpRequest("GET", url);
        playlist = r.body;
        return r.status == 200 && playlist.find("#EXT-X-ENDLIST") != std::string::npos;
    }));
    INFO("streamed " << before << " s before the stop; playlist:\n" << playlist);
    CHECK(playlist.find("#EXT-X-MEDIA-SEQUENCE:0") != std::string::npos);
    CHECK(playlist.substr(playlist.find_last_not_of("\r\n") - 13, 14) == "#EXT-X-ENDLIST");
    const double listed = streamedSeconds(playlist);
    CHECK(listed > before);
    const std::string probed = probedDuration(url);
    INFO("ffprobe duration " << probed << ", listed " << listed << " s");
    REQUIRE(probed != "N/A");
    CHECK(std::abs(std::stod(probed) - listed) < 1.0);
    // Every listed segment is served.
    static const std::regex segment(R"((segment\d+\.ts))");
    for (std::sregex_iterator it(playlist.begin(), playlist.end(), segment), end; it != end; ++it)
        CHECK(httpRequest("GET", server.http() + "/live/hlsend/" + (*it)[1].str()).status == 200);

    // The call goes on.
    checkCallGoesOn(clients, framesBefore);

    // Started again: a new, live stream from segment 0; the room closing
    // ends it too (on disk: the room serves nothing any more).
    REQUIRE(httpRequest("POST", api, R"({"hls": true})").status == 201);
    CHECK_FALSE(ended(server, "hlsend"));
    REQUIRE(waitUntil([&] { return (before = streamed(server, "hlsend")) >= 4; }));
    for (auto& c : clients) c->leave();
    // Its own directory, the room's second stream's (the first one's is left as it ended).
    const std::string file = dir + "/live/hlsend/2/index.m3u8";
    std::string last;
    CHECK(waitUntil([&] {
        std::ifstream in(file);
        last.assign(std::istreambuf_iterator<char>(in), {});
        return last.find("#EXT-X-ENDLIST") != std::string::npos;
    }));
    INFO("streamed " << before << " s before the room closed; playlist:\n" << last);
    CHECK(streamedSeconds(last) > before);
    CHECK(httpRequest("GET", url).status == 404);
}

TEST_CASE("live HLS: started again right after a stop, the new stream grows, H.264 + AAC, and the old stream's end "
          "does not end it",
          "[live][hls]") {
    const std::string dir = freshDir("live");
    Server server(liveArgs(dir));
    const std::vector<Participant> duo = {kTrio[0], kTrio[1]};
    auto clients = joinAll(server, "hlsagain", duo);
    for (auto& c : clients) c->waitEvent("first-frame");
    const std::string api = server.http() + "/api/rooms/hlsagain/live";
    const std::string url = server.http() + "/live/hlsagain/index.m3u8";

    REQUIRE(httpRequest("POST", api, R"({"hls": true})").status == 201);
    REQUIRE(waitUntil([&] { return streamed(server, "hlsagain") >= 4; }));
    // Stopped and started at once: the first stream is still ending (its
    // last segment, then #EXT-X-ENDLIST) while the second begins.
    REQUIRE(httpRequest("DELETE", api).status == 200);
    const auto again = httpRequest("POST", api, R"({"hls": true})");
    REQUIRE(again.status == 201);
    CHECK(jsonOf(again)["live"][0]["state"] == "running");

    // Every poll of the served playlist from now on: it never ends.
    bool endedSeen = false;
    const auto poll = [&] {
        const auto r = httpRequest("GET", url);
        if (r.status == 200 && r.body.find("#EXT-X-ENDLIST") != std::string::npos) endedSeen = true;
        return r.status == 200 ? streamedSeconds(r.body) : 0.0;
    };
    // The first stream finished, in its own files.
    const std::string firstPlaylist = dir + "/live/hlsagain/1/index.m3u8";
    REQUIRE(waitUntil([&] {
        poll();
        std::ifstream in(firstPlaylist);
        const std::string text(std::istreambuf_iterator<char>(in), {});
        return text.find("#EXT-X-ENDLIST") != std::string::npos;
    }));
    // The new stream, from its segment 0, grows past it by two segments.
    double now = 0;
    REQUIRE(waitUntil([&] { return (now = poll()) >= 4; }));
    const double later = now + 4;
    REQUIRE(waitUntil([&] { return (now = poll()) >= later; }));
    INFO("the second stream has " << now << " s");
    CHECK_FALSE(endedSeen);
    CHECK(probedDuration(url) == "N/A"); // live: no end known
    checkH264Aac(url);
    CHECK_FALSE(ended(server, "hlsagain"));
    CHECK(target(jsonOf(httpRequest("GET", server.http() + "/api/rooms/hlsagain")), "hls").value("state", "") ==
          "running");
    REQUIRE(httpRequest("DELETE", api).status == 200);
    CHECK(waitUntil([&] { return ended(server, "hlsagain"); }));
    for (auto& c : clients) c->leave();
}

TEST_CASE("live RTMP: a local RTMP server gets the room's colours and tones; killed, only its target fails",
          "[live][rtmp]") {
    const std::string dir = freshDir("live");
    Server server(liveArgs(dir));
    const std::vector<Participant> duo = {kTrio[0], kTrio[1]};
    auto clients = joinAll(server, "rtmp", duo);
    for (auto& c : clients) c->waitEvent("first-frame");
    const std::string api = server.http() + "/api/rooms/rtmp/live";

    // HLS and RTMP at once, from one encode.
    const std::string flv = dir + "/out.flv";
    auto ffmpeg = rtmpServer(flv);
    // ffmpeg listens once it has started; a target started before that is
    // refused, and retries until it is not.
    auto start =
        httpRequest("POST", api, std::string(R"({"hls": true, "rtmp": ")") + kRtmpUrl + R"(", "retry": true})");
    REQUIRE(start.status == 201);
    REQUIRE(waitUntil([&] { return fs::exists(flv) && fs::file_size(flv) > 100'000; }));
    // Stopped, the RTMP stream ends and ffmpeg finishes its file.
    auto stop = httpRequest("DELETE", api + "/rtmp-1");
    REQUIRE(stop.status == 200);
    CHECK(jsonOf(stop)["live"].size() == 1); // HLS goes on
    REQUIRE(ffmpeg->wait(Clock::now() + kDeadline));
    checkMix(decodeFile(flv), duo, "out.flv");

    // A second server, killed mid-stream: only its target fails.
    const std::string flv2 = dir + "/out2.flv";
    ffmpeg = rtmpServer(flv2);
    start = httpRequest("POST", api, std::string(R"({"rtmp": ")") + kRtmpUrl + R"(", "retry": true})");
    REQUIRE(start.status == 201);
    const std::string id = jsonOf(start)["live"][1].value("id", "");
    CHECK(id == "rtmp-2");
    REQUIRE(waitUntil([&] { return fs::exists(flv2) && fs::file_size(flv2) > 0; }));
    REQUIRE(waitRoom(server, "rtmp", [&](const Json& r) {
                return target(r, id).value("state", "") == "running";
            }).is_object());
    const double before = streamed(server, "rtmp");
    const std::vector<int> framesBefore = framesOf(clients);
    ffmpeg->kill(SIGKILL);
    ffmpeg->wait(Clock::now() + kDeadline);
    const Json room = waitRoom(server, "rtmp", [&](const Json& r) {
        return target(r, id).value("failures", 0) >= 1 && target(r, id).value("state", "") != "running";
    });
    INFO("room: " << room.dump());
    const Json failed = target(room, id);
    CHECK(failed.value("state", "") == "retrying"); // it asked for retries
    CHECK_FALSE(failed.value("reason", "").empty());
    CHECK(target(room, "hls").value("state", "") == "running");
    CHECK(server.metric(R"(tessera_live_failures_total)") >= 1);
    // HLS goes on, and so does the call.
    CHECK(waitUntil([&] { return streamed(server, "rtmp") >= before + 4; }));
    checkCallGoesOn(clients, framesBefore);
    // Without a server it keeps failing, waiting longer each time; a server back: it runs again.
    CHECK(waitRoom(server, "rtmp", [&](const Json& r) { return target(r, id).value("failures", 0) >= 2; }).is_object());
    ffmpeg = rtmpServer(dir + "/out3.flv");
    const Json back =
        waitRoom(server, "rtmp", [&](const Json& r) { return target(r, id).value("state", "") == "running"; });
    INFO("room: " << back.dump());
    CHECK(target(back, id).value("state", "") == "running");
    CHECK(httpRequest("DELETE", api).status == 200);
    for (auto& c : clients) c->leave();
}

TEST_CASE("live: a stopped target whose sink hangs is taken out at the drain bound; HLS, the call and the room's "
          "close go on",
          "[live][rtmp][hls]") {
    const std::string dir = freshDir("live");
    // rtmp2sink without its I/O timeout (timeout=0): a server that stops
    // answering holds the sink for good, and only the drain bound ends it.
    const std::string pipelines = pipelinesWith(dir, "live-rtmp", [](std::string text) {
        const std::string sink = "rtmp2sink name=sink";
        const auto at = text.find(sink);
        if (at != std::string::npos) text.insert(at + sink.size(), " timeout=0");
        return text;
    });
    Server server(liveArgs(dir, R"(, "pipelinesDir": ")" + pipelines + "\""));
    const std::string log = server.process().logPath();
    const std::vector<Participant> duo = {kTrio[0], kTrio[1]};
    auto clients = joinAll(server, "stuck", duo);
    for (auto& c : clients) c->waitEvent("first-frame");
    const std::string api = server.http() + "/api/rooms/stuck/live";
    const HungServer hung;

    // HLS and a target whose server hangs: its handshake is never answered,
    // so its sink waits in its first write, and an EOS sent after it never
    // reaches the sink.
    auto start = httpRequest("POST", api, R"({"hls": true, "rtmp": ")" + hung.url("one") + R"("})");
    REQUIRE(start.status == 201);
    REQUIRE(waitUntil([&] { return streamed(server, "stuck") >= 4; }));
    CHECK(target(jsonOf(httpRequest("GET", server.http() + "/api/rooms/stuck")), "rtmp-1").value("state", "") ==
          "running");
    const std::string timedOut = "did not end its stream within";
    CHECK(linesWith(log, timedOut) == 0);

    // Stopped, it is gone from the room at once, and taken out as it is at the bound.
    auto stop = httpRequest("DELETE", api + "/rtmp-1");
    REQUIRE(stop.status == 200);
    CHECK(jsonOf(stop)["live"].size() == 1);
    const std::vector<int> framesBefore = framesOf(clients);
    const double before = streamed(server, "stuck");
    REQUIRE(waitUntil([&] { return linesWith(log, timedOut) == 1; }));
    INFO(logTail(log));
    CHECK(linesWith(log, "live target rtmp-1 " + timedOut) == 1);
    // HLS goes on (never ended), and so does the call.
    CHECK(waitUntil([&] { return streamed(server, "stuck") >= before + 4; }));
    CHECK_FALSE(ended(server, "stuck"));
    CHECK(target(jsonOf(httpRequest("GET", server.http() + "/api/rooms/stuck")), "hls").value("state", "") ==
          "running");
    checkCallGoesOn(clients, framesBefore);

    // Another hung target, then everyone leaves: the room closes all the
    // same, its HLS stream ended properly beside the hung one.
    start = httpRequest("POST", api, R"({"rtmp": ")" + hung.url("two") + R"("})");
    REQUIRE(start.status == 201);
    REQUIRE(waitRoom(server, "stuck", [&](const Json& r) {
                return target(r, "rtmp-2").value("state", "") == "running";
            }).is_object());
    for (auto& c : clients) c->leave();
    CHECK(waitUntil([&] { return httpRequest("GET", server.http() + "/api/rooms/stuck").status == 404; }));
    CHECK(waitUntil([&] { return linesWith(log, "live target rtmp-2 " + timedOut) == 1; }));
    CHECK(waitUntil([&] { return server.metric("tessera_room_pipelines") == 0; }));
    std::ifstream in(dir + "/live/stuck/1/index.m3u8");
    const std::string last(std::istreambuf_iterator<char>(in), {});
    INFO("HLS playlist at the close:\n" << last);
    CHECK(last.find("#EXT-X-ENDLIST") != std::string::npos);
    // The server goes on: a new room streams.
    auto again = joinAll(server, "after", duo);
    for (auto& c : again) c->waitEvent("first-frame");
    CHECK(httpRequest("POST", server.http() + "/api/rooms/after/live", R"({"hls": true})").status == 201);
    CHECK(waitUntil([&] { return streamed(server, "after") >= 4; }));
    for (auto& c : again) c->leave();
}

TEST_CASE("live API: unknown room 404, bad JSON and bad URLs 400, limits 409, no token 401, only the room's files",
          "[live][api]") {
    const std::string dir = freshDir("live");
    auto args = liveArgs(dir);
    args.insert(args.end(), {"--admin-token", "sesame"});
    Server server(args);
    auto clients = joinAll(server, "api", {kTrio[0]});
    clients[0]->waitEvent("first-frame");
    const std::string api = server.http() + "/api/rooms/api/live";
    const auto expect = [](const HttpResponse& r, int status, const std::string& code) {
        INFO("body " << r.body);
        CHECK(r.status == status);
        if (!code.empty()) CHECK(jsonOf(r).value("error", "") == code);
    };
    expect(httpRequest("POST", api, R"({"hls": true})"), 401, "unauthorized");
    expect(httpRequest("POST", api, R"({"hls": true})", "wrong"), 401, "unauthorized");
    expect(httpRequest("DELETE", api), 401, "unauthorized");
    expect(httpRequest("POST", server.http() + "/api/rooms/nope/live", R"({"hls": true})", "sesame"), 404, "not-found");
    expect(httpRequest("POST", api, R"({"hls": tru)", "sesame"), 400, "bad-request");
    expect(httpRequest("POST", api, R"({})", "sesame"), 400, "bad-request");
    for (const char* url : {"http://127.0.0.1/live/x", "rtmp://127.0.0.1", "rtmp://h/app key", "file:///etc/passwd"})
        expect(httpRequest("POST", api, Json{{"rtmp", url}}.dump(), "sesame"), 400, "bad-request");
    expect(httpRequest("POST", api, Json{{"rtmp", "rtmp://h/app/" + std::string(1100, 'k')}}.dump(), "sesame"), 400,
           "bad-request");
    expect(httpRequest("DELETE", api, {}, "sesame"), 409, "conflict");
    expect(httpRequest("PUT", api, R"({"hls": true})", "sesame"), 405, "");

    // Four targets at most (live.maxTargets): the fifth is refused, nothing of it starts.
    auto start = httpRequest("POST", api,
                             R"({"hls": true, "rtmp": ["rtmp://127.0.0.1:1/a/1", "rtmp://127.0.0.1:1/a/2",
                                 "rtmp://127.0.0.1:1/a/3"]})",
                             "sesame");
    expect(start, 201, "");
    expect(httpRequest("POST", api, R"({"rtmp": "rtmp://127.0.0.1:1/a/4"})", "sesame"), 409, "conflict");
    expect(httpRequest("POST", api, R"({"hls": true})", "sesame"), 409, "conflict");
    // Nothing listens on port 1: each RTMP target fails, alone, with its reason.
    Json room;
    waitUntil([&] {
        const auto r = httpRequest("GET", server.http() + "/api/rooms/api", {}, "sesame");
        if (r.status != 200) return false;
        room = Json::parse(r.body);
        return room["live"].size() == 4 && room["live"][1].value("state", "") == "failed" &&
               room["live"][2].value("state", "") == "failed" && room["live"][3].value("state", "") == "failed";
    });
    INFO("room " << room.dump());
    CHECK(room["live"][0].value("state", "") == "running");
    CHECK(room["live"][1].value("reason", "").find("refused") != std::string::npos);
    CHECK(room["live"][1].value("url", "") == "rtmp://127.0.0.1:1/a/***");
    expect(httpRequest("DELETE", api + "/rtmp-9", {}, "sesame"), 404, "not-found");
    expect(httpRequest("DELETE", api + "/rtmp-3", {}, "sesame"), 200, "");

    // /live serves the room's playlist and segments by name, nothing else.
    REQUIRE(waitUntil([&] { return streamed(server, "api") > 0; }));
    for (const std::string path :
         {"/live/api/%2e%2e/%2e%2e/etc/passwd", "/live/%2e%2e/api/index.m3u8", "/live/api/config.json",
          "/live/api/segment.ts", "/live/api/segment1.ts.m3u8", "/live/nope/index.m3u8", "/live/api",
          "/live/api/x/index.m3u8", "/live/api/segment99999.ts"}) {
        INFO(path);
        CHECK(httpRequest("GET", server.http() + path).status / 100 == 4);
    }
    CHECK(httpRequest("POST", server.http() + "/live/api/index.m3u8").status == 405);
    expect(httpRequest("DELETE", api, {}, "sesame"), 200, "");
    clients[0]->leave();
}
