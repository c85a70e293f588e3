// Recording a room's mix (issue 5): real server, real webrtcbin clients, and
// the files decoded back with GStreamer.
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/pbutils/pbutils.h>

#include "decode.h"
#include "files.h"
#include "harness.h"
#include "tessera/analysis/frames.h"
#include "tessera/analysis/stamp.h"
#include "tessera/analysis/tones.h"

using namespace tessera::testing;
namespace fs = std::filesystem;
namespace analysis = tessera::analysis;

namespace {

// How far apart picture and sound may be in a recording (docs/recording.md).
constexpr double kMaxAvSkew = 0.040;

// What gst-discoverer-1.0 reports: the duration in seconds, or -1.
double discoveredDuration(const std::string& path) {
    gst_init(nullptr, nullptr);
    GstDiscoverer* discoverer = gst_discoverer_new(30 * GST_SECOND, nullptr);
    REQUIRE(discoverer);
    gchar* uri = gst_filename_to_uri(path.c_str(), nullptr);
    GstDiscovererInfo* info = gst_discoverer_discover_uri(discoverer, uri, nullptr);
    g_free(uri);
    double seconds = -1;
    if (info && gst_discoverer_info_get_result(info) == GST_DISCOVERER_OK)
        seconds = static_cast<double>(gst_discoverer_info_get_duration(info)) / GST_SECOND;
    if (info) gst_discoverer_info_unref(info);
    g_object_unref(discoverer);
    return seconds;
}

// The largest step between consecutive frames, or between the end of an
// audio chunk and the start of the next (a gap in the file).
double largestVideoStep(const Decoded& d) {
    double step = 0;
    for (std::size_t i = 1; i < d.frames.size(); ++i) step = std::max(step, d.frames[i].pts - d.frames[i - 1].pts);
    return step;
}
double largestAudioGap(const Decoded& d) {
    double gap = 0;
    for (std::size_t i = 1; i < d.chunks.size(); ++i) gap = std::max(gap, d.chunks[i].pts - d.chunks[i - 1].end);
    return gap;
}

// Waits until every client decodes frames (the room is fully running).
void waitFlowing(std::vector<std::unique_ptr<Client>>& clients) {
    for (auto& c : clients) c->waitEvent("first-frame");
}

} // namespace

TEST_CASE("a 10 s recording holds the grid of three colours and all three tones, in sync", "[recording]") {
    const std::string dir = freshDir("recordings");
    Server server(recorderArgs(dir));
    auto clients = joinAll(server, "rec", kTrio);
    waitFlowing(clients);
    const std::string url = server.http() + "/api/rooms/rec/recording";

    auto start = httpRequest("POST", url);
    const auto started = Clock::now();
    REQUIRE(start.status == 201);
    const std::string file = jsonOf(start).value("file", "");
    CHECK(fs::path(file).parent_path() == fs::path(dir));
    CHECK(fs::path(file).extension() == ".mkv");
    CHECK(jsonOf(httpRequest("GET", server.http() + "/api/rooms/rec")).value("recording", false));
    CHECK(server.metric("tessera_recording{room=\"rec\"}") == 1);

    std::this_thread::sleep_until(started + 10s);
    const auto stopping = Clock::now();
    auto stop = httpRequest("DELETE", url);
    REQUIRE(stop.status == 200);
    const double wall = std::chrono::duration<double>(stopping - started).count();
    const double reported = jsonOf(stop).value("duration", 0.0);
    INFO("wall " << wall << " s, reported " << reported << " s, file " << file);
    CHECK(jsonOf(stop).value("file", "") == file);
    CHECK(std::abs(reported - 10.0) <= 0.5);
    CHECK_FALSE(jsonOf(httpRequest("GET", server.http() + "/api/rooms/rec")).value("recording", true));
    CHECK(server.metric("tessera_recording{room=\"rec\"}") == 0);

    // Finalised before the answer: the duration is in the file.
    const double discovered = discoveredDuration(file);
    CHECK(std::abs(discovered - 10.0) <= 0.5);

    const Decoded d = decodeFile(file);
    REQUIRE(d.error.empty());
    REQUIRE(d.frames.size() > 120); // 10 s at 15 frames/s
    REQUIRE(d.chunks.size() > 100);
    // The last frame shows the three tiles in join order.
    const auto centres = gridCentres(kTrio.size());
    const Decoded::Frame& frame = d.frames[d.frames.size() * 3 / 4];
    for (size_t k = 0; k < kTrio.size(); ++k) {
        const auto c = colourAt(frame, centres[k].first, centres[k].second);
        INFO("tile " << k << " at " << frame.pts << " s: " << int(c.r) << "," << int(c.g) << "," << int(c.b));
        CHECK(looksLike(c, kTrio[k].rgb));
    }
    // The full mix: everyone's tone (not mix-minus).
    const double mid = d.chunks.front().pts + 5;
    const auto levels = toneLevels(d, mid - 2, mid + 2, {440, 660, 880});
    for (size_t k = 0; k < kTrio.size(); ++k) {
        INFO(kTrio[k].tone << " Hz at " << levels[k] << " dBFS");
        CHECK(levels[k] > -30);
    }
    // Audio and video start and end together.
    const double videoEnd = d.frames.back().pts + (d.frames.back().pts - d.frames[d.frames.size() - 2].pts);
    INFO("video " << d.frames.front().pts << "-" << videoEnd << " s, audio " << d.chunks.front().pts << "-"
                  << d.chunks.back().end << " s");
    // Both are cut at the same running time (docs/recording.md: within 40 ms).
    CHECK(std::abs(d.frames.front().pts - d.chunks.front().pts) < kMaxAvSkew);
    CHECK(std::abs(videoEnd - d.chunks.back().end) < kMaxAvSkew);
    CHECK(largestAudioGap(d) < 0.030);

    const std::string meta = readText(metadataFor(file));
    CHECK(meta.find("\"state\": \"finished\"") != std::string::npos);
    for (const auto& p : kTrio) CHECK(meta.find("\"" + p.name + "\"") != std::string::npos);
    for (auto& c : clients) c->leave();
}

// Checks by content that the picture stays within kMaxAvSkew of its sound at
// every click of the recording. It records once the call is 3 s old: the
// server's lip-sync follows the sender's RTCP reports, and a recording
// started before they settle keeps its first clicks up to ~0.5 s off
// (docs/recording.md, "Synchronisation", the start).
TEST_CASE("a recording keeps sound and picture in sync: a stamped sender's clicks meet its picture stamps",
          "[recording][sync]") {
    const std::string dir = freshDir("recordings");
    Server server(recorderArgs(dir));
    // Its picture carries its wall clock (ms modulo 2^16); its sound is a
    // click at every whole second of that clock (include/tessera/analysis/stamp.h).
    Client sender(server, ClientOptions{"sync", "stamp", "0xff00ff", 0, {}, false, {"--stamp"}});
    sender.waitEvent("first-frame");
    sender.waitReport([](const Json& r) { return r.value("frames", 0) > 45; }); // 3 s at 15 frames/s
    const std::string url = server.http() + "/api/rooms/sync/recording";
    auto start = httpRequest("POST", url);
    const auto started = Clock::now();
    REQUIRE(start.status == 201);
    std::this_thread::sleep_until(started + 8s);
    auto stop = httpRequest("DELETE", url);
    REQUIRE(stop.status == 200);
    const std::string file = jsonOf(stop).value("file", "");
    const Decoded d = decodeFile(file);
    INFO("file " << file);
    REQUIRE(d.error.empty());

    // The picture: at time t of the file it shows the sender's clock at
    // t + offset. A stamp is that clock modulo 2^16 ms, painted in the last
    // minute (sender and test share the machine's clock). Frames show the
    // newest sender frame, so offsets spread over a frame or so: the median.
    const double nowMs = static_cast<double>(g_get_real_time()) / 1000;
    std::vector<double> offsets;
    for (const auto& f : d.frames)
        if (f.stamp) offsets.push_back(nowMs - analysis::stamp::elapsedMs(*f.stamp, nowMs) - f.pts * 1000);
    INFO(offsets.size() << " of " << d.frames.size() << " frames with a readable stamp");
    REQUIRE(offsets.size() > 60); // of ~120
    std::nth_element(offsets.begin(), offsets.begin() + offsets.size() / 2, offsets.end());
    const double videoOffsetMs = offsets[offsets.size() / 2];
    const auto wrap = [](double v, double period) { return v - period * std::floor(v / period + 0.5); };

    // The sound: each click is a whole second of the sender's clock. In sync,
    // the picture at the click's time shows (nearly) that whole second.
    analysis::stamp::ClickDetector detector;
    std::vector<double> skewsMs;
    for (const auto& chunk : d.chunks) {
        const std::size_t end = &chunk == &d.chunks.back() ? d.audio.size() / 2 : (&chunk + 1)->first;
        std::vector<float> left;
        for (std::size_t i = chunk.first; i < end; ++i) left.push_back(d.audio[i * 2]);
        for (std::size_t onset : detector.feed(left.data(), left.size()))
            skewsMs.push_back(wrap((chunk.pts + static_cast<double>(onset) / 48000) * 1000 + videoOffsetMs, 1000));
    }
    std::ostringstream list;
    for (double s : skewsMs) list << " " << std::lround(s);
    INFO("picture minus sound at each click, ms:" << list.str());
    REQUIRE(skewsMs.size() >= 6); // one a second
    for (double s : skewsMs) CHECK(std::abs(s) < kMaxAvSkew * 1000);
    sender.leave();
}

TEST_CASE("a participant joins and one leaves while recording: no gap, both in the timeline", "[recording]") {
    const std::string dir = freshDir("recordings");
    Server server(recorderArgs(dir));
    auto clients = joinAll(server, "churn", {kTrio[0], kTrio[1]});
    waitFlowing(clients);
    const std::string url = server.http() + "/api/rooms/churn/recording";
    auto start = httpRequest("POST", url, R"({"format": "webm"})");
    REQUIRE(start.status == 201);
    const std::string file = jsonOf(start).value("file", "");
    CHECK(fs::path(file).extension() == ".webm");

    Client blue(server, ClientOptions{"churn", "blue", "0x0000ff", 880, {}, false, {}});
    blue.waitEvent("first-frame");
    clients[0]->leave();
    clients[1]->waitEvent("participant-left");
    // The room goes on with the two left, still recorded.
    auto before = blue.report().value("frames", 0);
    blue.waitReport([&](const Json& r) { return r.value("frames", 0) > before + 30; });
    auto stop = httpRequest("DELETE", url);
    REQUIRE(stop.status == 200);

    const Decoded d = decodeFile(file);
    REQUIRE(d.error.empty());
    REQUIRE(d.frames.size() > 30);
    const double span = d.frames.back().pts - d.frames.front().pts;
    INFO("file " << file << ": " << d.frames.size() << " frames over " << span << " s, largest step "
                 << largestVideoStep(d) << " s, largest audio gap " << largestAudioGap(d) << " s");
    CHECK(std::abs(span + 1.0 / 30 - jsonOf(stop).value("duration", 0.0)) < 0.1);
    CHECK(largestVideoStep(d) < 0.25);
    CHECK(largestAudioGap(d) < 0.030);
    // Audio covers the whole span too.
    CHECK(d.chunks.back().end - d.chunks.front().pts > span - 0.1);

    const auto meta = Json::parse(readText(metadataFor(file)));
    CHECK(meta.value("room", "") == "churn");
    std::vector<std::string> events;
    for (const auto& e : meta.at("timeline")) events.push_back(e.value("event", "") + ":" + e.value("name", ""));
    CHECK(events == std::vector<std::string>{"present:red", "present:green", "join:blue", "leave:red"});
    blue.leave();
    clients[1]->leave();
}

TEST_CASE("kill -9 while recording leaves a playable file up to 2 s before the kill", "[recording][crash]") {
    const std::string format = GENERATE(as<std::string>{}, "mkv", "webm", "mp4");
    INFO("format " << format);
    const std::string dir = freshDir("recordings");
    std::string file;
    double killedAfter = 0;
    {
        Server server(recorderArgs(dir));
        auto clients = joinAll(server, "crash", {kTrio[0], kTrio[1]});
        waitFlowing(clients);
        auto start =
            httpRequest("POST", server.http() + "/api/rooms/crash/recording", R"({"format": ")" + format + "\"}");
        const auto started = Clock::now();
        REQUIRE(start.status == 201);
        file = jsonOf(start).value("file", "");
        std::this_thread::sleep_until(started + 8s);
        killedAfter = std::chrono::duration<double>(Clock::now() - started).count();
        REQUIRE(server.end(SIGKILL, 20s));
        // The clients notice the server is gone; their destructors stop them.
    }
    INFO("file " << file << ", killed " << killedAfter << " s after the start");
    const Decoded d = decodeFile(file);
    CHECK(d.error.empty());
    REQUIRE(d.frames.size() > 10);
    const double covered = d.frames.back().pts - d.frames.front().pts;
    INFO("decoded " << covered << " s of video, " << (d.chunks.back().end - d.chunks.front().pts) << " s of audio");
    CHECK(covered >= killedAfter - 2.0);
    CHECK(d.chunks.back().end - d.chunks.front().pts >= killedAfter - 2.0);
    const auto meta = Json::parse(readText(metadataFor(file)));
    CHECK(meta.value("state", "") == "recording"); // as it was when the server died
    // Players know the duration without a repair: mp4 rewrites its index
    // every 0.5 s; a Matroska demuxer takes it from the last cluster's start
    // (clusters start at key frames, 1 s apart).
    const double discovered = discoveredDuration(file);
    INFO("discovered " << discovered << " s");
    CHECK(discovered >= covered - 1.5);
    CHECK(discovered <= covered + 0.5);
}

TEST_CASE("recording API: statuses for double start, stop when idle, unknown rooms, bad bodies", "[recording][api]") {
    const std::string dir = freshDir("recordings");
    Server server(recorderArgs(dir));
    auto clients = joinAll(server, "api", {kTrio[0]});
    waitFlowing(clients);
    const std::string url = server.http() + "/api/rooms/api/recording";

    auto expect = [](const HttpResponse& r, int status, const std::string& code) {
        INFO("body " << r.body);
        CHECK(r.status == status);
        if (!code.empty()) CHECK(Json::parse(r.body).value("error", "") == code);
    };
    expect(httpRequest("DELETE", url), 409, "conflict");
    expect(httpRequest("POST", server.http() + "/api/rooms/nope/recording"), 404, "not-found");
    expect(httpRequest("DELETE", server.http() + "/api/rooms/nope/recording"), 404, "not-found");
    expect(httpRequest("POST", url, R"({"format": "avi"})"), 400, "bad-request");
    expect(httpRequest("POST", url, R"({"format": "../../etc/passwd"})"), 400, "bad-request");
    expect(httpRequest("POST", url, "not json"), 400, "bad-request");
    expect(httpRequest("PUT", url), 405, "bad-request");
    auto started = httpRequest("POST", url, R"({"format": "mp4"})");
    expect(started, 201, "");
    expect(httpRequest("POST", url), 409, "conflict");
    // Media is being written once the first file is open (its segment is in the metadata).
    const std::string metadata = metadataFor(Json::parse(started.body).value("file", ""));
    auto hasSegment = [&] {
        const std::string text = readText(metadata);
        return !text.empty() && !Json::parse(text).at("segments").empty();
    };
    const auto deadline = Clock::now() + kDeadline;
    while (Clock::now() < deadline && !hasSegment()) std::this_thread::sleep_for(50ms);
    REQUIRE(hasSegment());

    // Stop while a participant is joining: the stop answers, the joiner gets in.
    Client late(server, ClientOptions{"api", "late", "0x00ff00", 660, {}, false, {}});
    late.waitEvent("joined");
    auto stop = httpRequest("DELETE", url);
    expect(stop, 200, "");
    const std::string file = Json::parse(stop.body).value("file", "");
    CHECK(fs::path(file).extension() == ".mp4");
    late.waitEvent("first-frame");
    CHECK(discoveredDuration(file) > 0);
    expect(httpRequest("DELETE", url), 409, "conflict");

    // A new recording after a stop gets a new file, and leaves no element behind.
    const std::string elements = "tessera_room_pipeline_elements{room=\"api\"}";
    const double baseline = server.metric(elements);
    auto again = httpRequest("POST", url);
    expect(again, 201, "");
    CHECK(Json::parse(again.body).value("file", "") != file);
    CHECK(server.metric(elements) > baseline);
    expect(httpRequest("DELETE", url), 200, "");
    CHECK(server.metric(elements) == baseline);
    late.leave();
    clients[0]->leave();
}

TEST_CASE("an unwritable recording target fails cleanly and the call goes on", "[recording][fault]") {
    SECTION("the directory cannot be made (a path under a regular file)") {
        const std::string dir = freshDir("recordings");
        std::ofstream(dir + "/file") << "not a directory";
        Server server(recorderArgs(dir + "/file/sub"));
        auto clients = joinAll(server, "fault", {kTrio[0]});
        waitFlowing(clients);
        auto start = httpRequest("POST", server.http() + "/api/rooms/fault/recording");
        CHECK(start.status == 500);
        CHECK(Json::parse(start.body).value("message", "").find("Not a directory") != std::string::npos);
        auto room = jsonOf(httpRequest("GET", server.http() + "/api/rooms/fault"));
        CHECK_FALSE(room.value("recording", true));
        CHECK(room.value("recordingError", "").find("Not a directory") != std::string::npos);
        CHECK(server.metric("tessera_recording_errors_total") == 1);
        auto before = clients[0]->report().value("frames", 0);
        auto after = clients[0]->waitReport([&](const Json& r) { return r.value("frames", 0) > before + 30; });
        CHECK(after.value("frames", 0) > before + 30);
        CHECK(after.value("state", "") == "connected");
        clients[0]->leave();
    }
    SECTION("files cannot be created in the directory (immutable, which stops root too)") {
        const std::string dir = freshDir("recordings");
        // Required, not skipped when missing: the suite runs as root on a
        // file system with attributes (ext4, tmpfs since Linux 6.0).
        INFO("chattr +i " << dir);
        REQUIRE(std::system(("chattr +i " + dir).c_str()) == 0);
        // Mutable again however the test ends, or nobody could delete it.
        struct Mutable {
            std::string dir;
            ~Mutable() { (void)std::system(("chattr -i " + dir).c_str()); }
        } restore{dir};
        Server server(recorderArgs(dir));
        auto clients = joinAll(server, "fault", {kTrio[0]});
        waitFlowing(clients);
        const std::string url = server.http() + "/api/rooms/fault/recording";
        // Checked at the start (docs/recording.md): 500 and the reason, at once.
        auto start = httpRequest("POST", url);
        INFO("answer " << start.status << " " << start.body);
        CHECK(start.status == 500);
        CHECK(jsonOf(start).value("message", "").find("Operation not permitted") != std::string::npos);
        auto room = jsonOf(httpRequest("GET", server.http() + "/api/rooms/fault"));
        INFO("room " << room.dump());
        CHECK_FALSE(room.value("recording", true));
        CHECK(room.value("recordingError", "").find("Operation not permitted") != std::string::npos);
        CHECK(server.metric("tessera_recording_errors_total") == 1);
        CHECK(httpRequest("DELETE", url).status == 409);
        auto before = clients[0]->report().value("frames", 0);
        auto after = clients[0]->waitReport([&](const Json& r) { return r.value("frames", 0) > before + 30; });
        CHECK(after.value("frames", 0) > before + 30);
        CHECK(after.value("state", "") == "connected");
        // And once the directory is writable, a recording works in the same room.
        REQUIRE(std::system(("chattr -i " + dir).c_str()) == 0);
        auto again = httpRequest("POST", url);
        REQUIRE(again.status == 201);
        const std::string file = jsonOf(again).value("file", "");
        before = clients[0]->report().value("frames", 0);
        clients[0]->waitReport([&](const Json& r) { return r.value("frames", 0) > before + 30; });
        auto stop = httpRequest("DELETE", url);
        REQUIRE(stop.status == 200);
        CHECK(jsonOf(stop).value("file", "") == file);
        CHECK(discoveredDuration(file) > 1.0);
        const auto meta = Json::parse(readText(metadataFor(file)));
        CHECK(meta.value("state", "") == "finished");
        CHECK(server.metric("tessera_recording_errors_total") == 1);
        clients[0]->leave();
    }
}

TEST_CASE("segmented recordings: a new file every N seconds, all in the manifest", "[recording][segments]") {
    const std::string dir = freshDir("recordings");
    auto args = recorderArgs(dir);
    args.insert(args.end(), {"--record-segment-seconds", "2"});
    Server server(args);
    auto clients = joinAll(server, "seg", {kTrio[0]});
    waitFlowing(clients);
    const std::string url = server.http() + "/api/rooms/seg/recording";
    auto start = httpRequest("POST", url);
    REQUIRE(start.status == 201);
    const std::string first = jsonOf(start).value("file", "");
    CHECK(first.ends_with("-00000.mkv"));
    const std::string metadata = metadataFor(first);
    // Wait (on the manifest) until a third file has been opened.
    auto segments = [&] {
        const std::string text = readText(metadata);
        return text.empty() ? Json::array() : Json::parse(text).at("segments");
    };
    const auto deadline = Clock::now() + kDeadline;
    while (Clock::now() < deadline && segments().size() < 3) std::this_thread::sleep_for(100ms);
    REQUIRE(segments().size() >= 3);
    auto stop = httpRequest("DELETE", url);
    REQUIRE(stop.status == 200);
    const double total = jsonOf(stop).value("duration", 0.0);

    // Each segment but the last holds the 2 s asked for (whole key-frame
    // intervals of 1 s: exactly two); the last at most that. Each starts
    // where the one before ended, and the manifest's offsets say so.
    const Json all = segments();
    double sum = 0;
    for (std::size_t i = 0; i < all.size(); ++i) {
        const std::string file = all[i].value("file", "");
        const double offset = all[i].value("offset", -1.0);
        const double duration = discoveredDuration(file);
        INFO("segment " << file << " at " << offset << " s, " << duration << " s long");
        CHECK(std::abs(offset - sum) < 0.1);
        if (i + 1 < all.size())
            CHECK(std::abs(duration - 2.0) < 0.1);
        else
            CHECK((duration > 0 && duration < 2.1));
        sum += duration;
    }
    INFO("segments sum to " << sum << " s, the recording is " << total << " s");
    CHECK(std::abs(sum - total) < 0.5);
    clients[0]->leave();
}

TEST_CASE("SIGTERM finalises running recordings before the server exits", "[recording][shutdown]") {
    const std::string dir = freshDir("recordings");
    std::string file;
    {
        Server server(recorderArgs(dir));
        auto clients = joinAll(server, "bye", {kTrio[0]});
        waitFlowing(clients);
        auto start = httpRequest("POST", server.http() + "/api/rooms/bye/recording");
        REQUIRE(start.status == 201);
        file = jsonOf(start).value("file", "");
        // Until some media is in the file.
        const auto deadline = Clock::now() + kDeadline;
        while (Clock::now() < deadline && (!fs::exists(file) || fs::file_size(file) < 50'000))
            std::this_thread::sleep_for(100ms);
        const auto status = server.end(SIGTERM, kStopBound);
        REQUIRE(status);
        CHECK(describeStatus(*status) == describeStatus(0));
    }
    const auto meta = Json::parse(readText(metadataFor(file)));
    CHECK(meta.value("state", "") == "finished");
    CHECK(discoveredDuration(file) > 0.5); // the header has its duration: finalised
}

TEST_CASE("two rooms record at once, each its own picture, in webm and mkv", "[recording][rooms]") {
    const std::string dir = freshDir("recordings");
    Server server(recorderArgs(dir));
    auto east = joinAll(server, "east", {kTrio[0]}); // red
    auto west = joinAll(server, "west", {kTrio[2]}); // blue
    waitFlowing(east);
    waitFlowing(west);
    const std::string eastUrl = server.http() + "/api/rooms/east/recording";
    const std::string westUrl = server.http() + "/api/rooms/west/recording";
    auto startEast = httpRequest("POST", eastUrl, R"({"format": "webm"})");
    auto startWest = httpRequest("POST", westUrl);
    const auto started = Clock::now();
    REQUIRE(startEast.status == 201);
    REQUIRE(startWest.status == 201);
    CHECK(server.metric("tessera_recording{room=\"east\"}") == 1);
    CHECK(server.metric("tessera_recording{room=\"west\"}") == 1);

    std::this_thread::sleep_until(started + 4s);
    auto stopEast = httpRequest("DELETE", eastUrl);
    auto stopWest = httpRequest("DELETE", westUrl);
    REQUIRE(stopEast.status == 200);
    REQUIRE(stopWest.status == 200);
    const std::string eastFile = jsonOf(stopEast).value("file", "");
    const std::string westFile = jsonOf(stopWest).value("file", "");
    CHECK(eastFile != westFile);
    CHECK(fs::path(eastFile).extension() == ".webm");
    CHECK(fs::path(westFile).extension() == ".mkv");
    // Each file holds its own room: one full tile of that room's colour.
    for (const auto& [file, who] : {std::pair{eastFile, kTrio[0]}, std::pair{westFile, kTrio[2]}}) {
        INFO(file);
        CHECK(discoveredDuration(file) > 3.0);
        const Decoded d = decodeFile(file);
        REQUIRE(d.error.empty());
        REQUIRE(d.frames.size() > 30);
        const auto c = colourAt(d.frames[d.frames.size() * 3 / 4], 0.5, 0.5);
        INFO(int(c.r) << "," << int(c.g) << "," << int(c.b));
        CHECK(looksLike(c, who.rgb));
    }
    east[0]->leave();
    west[0]->leave();
}
