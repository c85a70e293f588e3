#include "files.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <glib.h>

namespace fs = std::filesystem;

namespace tessera::testing {

std::string readText(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string freshDir(const std::string& what) {
    const char* artifacts = std::getenv("TESSERA_ARTIFACTS");
    const std::string base = artifacts && *artifacts ? artifacts : g_get_tmp_dir();
    g_mkdir_with_parents(base.c_str(), 0755);
    std::string pattern = base + "/" + what + "-XXXXXX";
    REQUIRE(g_mkdtemp(pattern.data()) != nullptr);
    return pattern;
}

std::vector<std::string> recorderArgs(const std::string& dir) {
    // A compositor that falls behind the clock records less than wall time.
    return {"--record-dir",       dir,   "--record-width",      "640", "--record-height",   "360",
            "--video-width",      "640", "--video-height",      "360", "--video-framerate", "15",
            "--video-tile-width", "320", "--video-tile-height", "180", "--video-tiers",     "high:640x360:600000"};
}

std::string metadataFor(const std::string& file) {
    std::string stem = fs::path(file).stem().string();
    const auto dash = stem.rfind('-');
    if (dash != std::string::npos && stem.size() - dash == 6 &&
        stem.find_first_not_of("0123456789", dash + 1) == std::string::npos)
        stem.resize(dash);
    return (fs::path(file).parent_path() / (stem + ".json")).string();
}

Json jsonOf(const HttpResponse& r) {
    INFO("body: " << r.body);
    return Json::parse(r.body);
}

void writeSendFile(const std::string& path, const std::string& what, const std::vector<std::string>& video,
                   const std::vector<std::string>& vp8, int audioFrames, const std::vector<std::string>& audio,
                   const std::vector<std::string>& more) {
    std::vector<std::string> args = {"/usr/bin/gst-launch-1.0", "-q"};
    const auto add = [&](const std::vector<std::string>& words) {
        args.insert(args.end(), words.begin(), words.end());
    };
    add(video);
    add({"!", "vp8enc", "deadline=1", "cpu-used=8", "threads=1"});
    add(vp8);
    add({"!", "queue", "!", "mux.", "audiotestsrc", "num-buffers=" + std::to_string(audioFrames),
         "samplesperbuffer=960"});
    add(audio);
    add({"!", "audio/x-raw,rate=48000,channels=1", "!", "opusenc", "frame-size=20", "!", "queue", "!", "mux.",
         "matroskamux", "name=mux", "!", "filesink", "location=" + path});
    add(more);
    Process gst(args, logFor(what));
    // Encoding on a loaded 2-core machine: generous.
    REQUIRE(gst.wait(Clock::now() + 120s) == 0);
}

std::vector<std::string> smallCall(std::vector<std::string> more) {
    std::vector<std::string> args = {"--video-width",       "640", "--video-height",     "360",
                                     "--video-framerate",   "15",  "--video-tile-width", "320",
                                     "--video-tile-height", "180", "--video-tiers",      "high:640x360:600000"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
}

long procStatus(pid_t pid, const std::string& field) {
    std::istringstream in(readText("/proc/" + std::to_string(pid) + "/status"));
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
    FAIL("no " << field << " in /proc/" << pid << "/status");
    return 0;
}

bool sanitized(pid_t pid) {
    return readText("/proc/" + std::to_string(pid) + "/maps").find("/libasan.so") != std::string::npos;
}

Json waitRoom(Server& server, const std::string& room, const std::function<bool(const Json&)>& done) {
    const auto deadline = Clock::now() + kDeadline;
    Json last;
    while (Clock::now() < deadline) {
        auto r = httpRequest("GET", server.http() + "/api/rooms/" + room);
        if (r.status == 200) {
            last = Json::parse(r.body);
            if (done(last)) return last;
        }
        std::this_thread::sleep_for(100ms);
    }
    return last;
}

} // namespace tessera::testing
