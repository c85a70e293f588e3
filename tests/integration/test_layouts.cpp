// Layouts changed live (issue 4): four clients of distinct colours watch the
// room switch grid -> speaker -> pip -> a custom spec through the API. For
// each layout the received composite shows every colour where the spec's
// geometry puts it; the louder client is the speaker and takes the large
// tile; receivers never freeze across a switch and no switch costs a key
// frame or a renegotiation.
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "files.h"
#include "harness.h"

using namespace tessera::testing;

namespace {

// A small composite and small senders: four clients that encode and decode
// are the costliest thing in the suite, and the machine is shared.
constexpr int kCanvasW = 640, kCanvasH = 360;
// At log level info the server names the cause of every forced key frame.
const std::vector<std::string> kServerArgs = {"--video-width",      "640", "--video-height",      "360",
                                              "--video-tile-width", "320", "--video-tile-height", "180",
                                              "--log-level",        "info"};
// Receivers at 30 fps see a frame every ~33 ms. A freeze (the composite
// stopping, a decoder waiting for the next key frame, up to 2 s apart) lasts
// longer than this.
constexpr int kMaxFrameGapMs = 500;
// With no switch at all the receivers must stutter less than this, or the
// machine is too loaded for kMaxFrameGapMs to tell a freeze from load.
constexpr int kMaxControlGapMs = kMaxFrameGapMs / 2;

// The server's log lines about key frames (who asked, which were forced) and
// about what moved a receiver's tier (a tier switch forces one).
std::string keyFrameLog(Server& server) {
    std::istringstream log(readText(server.process().logPath()));
    std::string lines, line;
    while (std::getline(log, line))
        if (line.find("key frame") != std::string::npos || line.find("tier inputs") != std::string::npos)
            lines += line + "\n";
    return lines;
}

struct Who {
    std::string name, color;
    Rgb rgb;
    int tone;
    double volume;
};

// Blue plays 15 dB louder than the others, so it becomes the speaker.
const std::vector<Who> kFour = {
    {"red", "0xff0000", {255, 0, 0}, 440, 0.05},
    {"green", "0x00ff00", {0, 255, 0}, 660, 0.05},
    {"blue", "0x0000ff", {0, 0, 255}, 880, 0.3},
    {"yellow", "0xffff00", {255, 255, 0}, 990, 0.05},
};
constexpr std::size_t kLoud = 2;

std::string readFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// Where a participant's picture must be, as fractions of the canvas: written
// out from each layout's spec and data/layouts/README.md, not computed with
// the server's own geometry code (which would agree with a wrong server).
struct Place {
    std::size_t who; // index into kFour (join order)
    double x, y, w, h;
    double cx() const { return x + w / 2; }
    double cy() const { return y + h / 2; }
};

// Every place's centre shows its participant's colour.
bool placesMatch(const Json& report, const std::vector<Place>& places) {
    for (const auto& p : places)
        if (!near(thumbColor(report, p.cx(), p.cy()), kFour[p.who].rgb)) return false;
    return true;
}

Rgb at(const Json& report, int x, int y) {
    return thumbColor(report, static_cast<double>(x) / kCanvasW, static_cast<double>(y) / kCanvasH);
}

} // namespace

TEST_CASE("four clients see grid, speaker, pip and a custom layout where the specs say, without a freeze",
          "[call][layout][switch]") {
    Server server(kServerArgs);
    std::vector<int> tones;
    for (const auto& w : kFour) tones.push_back(w.tone);
    std::vector<std::unique_ptr<Client>> clients;
    std::vector<std::string> ids;
    for (const auto& w : kFour) {
        clients.push_back(std::make_unique<Client>(
            server, ClientOptions{"switch",
                                  w.name,
                                  w.color,
                                  w.tone,
                                  tones,
                                  false,
                                  {"--volume", std::to_string(w.volume), "--width", "320", "--height", "180"}}));
        ids.push_back(clients.back()->waitEvent("joined").value("id", ""));
    }
    auto& viewer = *clients[0];
    const std::string url = server.http() + "/api/rooms/switch/layout";

    struct Phase {
        std::string name;
        std::string body;          // the PUT body
        std::vector<Place> places; // where everyone must be (blue, kLoud, is the speaker)
    };
    const std::string custom = R"({"name": "custom", "padding": 0, "border": 20, "borderColor": "#ffffff",
        "labels": true, "keepAspect": false,
        "slots": [{"x": 0, "y": 0, "w": 0.5, "h": 1, "source": "participant", "participant": "green"},
                  {"x": 0.5, "y": 0, "w": 0.5, "h": 0.5, "source": "speaker"}],
        "rest": {"x": 0.5, "y": 0.5, "w": 0.5, "h": 0.5}})";
    const std::vector<Phase> phases = {
        // 2x2 in join order.
        {"grid",
         R"({"layout": "grid"})",
         {{0, 0, 0, 0.5, 0.5}, {1, 0.5, 0, 0.5, 0.5}, {2, 0, 0.5, 0.5, 0.5}, {3, 0.5, 0.5, 0.5, 0.5}}},
        // The speaker 16:9 in the top 80 % (512x288 of 640x288, centred); the
        // other three side by side in the bottom 20 % strip.
        {"speaker",
         R"({"layout": "speaker"})",
         {{kLoud, 0.1, 0, 0.8, 0.8},
          {0, 0, 0.8, 1.0 / 3, 0.2},
          {1, 1.0 / 3, 0.8, 1.0 / 3, 0.2},
          {3, 2.0 / 3, 0.8, 1.0 / 3, 0.2}}},
        // The speaker full frame, the first other in join order (red) inset.
        {"pip", R"({"layout": "pip"})", {{kLoud, 0, 0, 1, 1}, {0, 0.73, 0.73, 0.25, 0.25}}},
        // Green's slot, the speaker's slot, red and yellow in a 2x1 grid
        // (16:9 region and sources: the tie goes to columns) in the rest.
        {"custom",
         R"({"layout": )" + custom + "}",
         {{1, 0, 0, 0.5, 1}, {kLoud, 0.5, 0, 0.5, 0.5}, {0, 0.5, 0.5, 0.25, 0.5}, {3, 0.75, 0.5, 0.25, 0.5}}},
    };

    // Settled: everyone receives the grid, and the loud client is the speaker.
    auto report = viewer.waitReport([&](const Json& r) {
        return r.value("frames", 0) > 10 && r.value("speaker", "") == ids[kLoud] && placesMatch(r, phases[0].places);
    });
    INFO("viewer log " << viewer.process().logPath());
    REQUIRE(report.value("speaker", "") == ids[kLoud]);
    REQUIRE(placesMatch(report, phases[0].places));
    // Labels are off in the grid: a tile's bottom left corner is its flat colour.
    for (const auto& p : phases[0].places)
        CHECK(near(thumbColor(report, p.x + p.w / 10, p.y + p.h * 9 / 10), kFour[p.who].rgb));
    // Control: how much the receivers stutter with no switch at all (about 3 s
    // of frames), and whether key frames are forced anyway (loss). On an idle
    // machine the gap is ~50 ms; with other suites running, load averages of
    // 30-70 on 2 cores were seen here and starved clients stuttered for
    // seconds. Then a freeze cannot be told from load: the test fails saying
    // so, rather than widening the bound.
    std::vector<std::int64_t> settled;
    for (auto& c : clients) {
        // On the top tier: each started on the lowest and stepped up once a probe passed.
        c->waitReport([](const Json& r) { return r.value("frames", 0) > 10 && r.value("width", 0) == kCanvasW; });
        CHECK(c->call("reset-gap").value("ok", false));
        settled.push_back(c->report().value("frames", 0));
    }
    const std::string keyFrames = "tessera_room_keyframes_forced_total{room=\"switch\"}";
    double keyFramesBefore = server.metric(keyFrames);
    std::int64_t controlGapMs = 0;
    for (std::size_t i = 0; i < clients.size(); ++i) {
        const auto r = clients[i]->waitReport([&](const Json& j) { return j.value("frames", 0) > settled[i] + 90; });
        controlGapMs = std::max<std::int64_t>(controlGapMs, r.value("maxFrameGapMs", 0));
        CHECK(clients[i]->call("reset-gap").value("ok", false));
    }
    const double controlKeyFrames = server.metric(keyFrames) - keyFramesBefore;
    if (controlGapMs >= kMaxControlGapMs || controlKeyFrames > 0)
        FAIL("too loaded to judge freezes: with no switch at all the receivers stalled for up to "
             << controlGapMs << " ms (must be under " << kMaxControlGapMs << ") and " << controlKeyFrames
             << " key frames were forced (must be 0); the server's key-frame log:\n"
             << keyFrameLog(server));

    for (const Phase& phase : phases) {
        INFO("layout " << phase.name);
        std::vector<std::int64_t> before;
        for (auto& c : clients) before.push_back(c->report().value("frames", 0));
        keyFramesBefore = server.metric(keyFrames);
        const auto put = httpRequest("PUT", url, phase.body);
        REQUIRE(put.status == 200);
        report = viewer.waitReport(
            [&](const Json& r) { return r.value("layout", "") == phase.name && placesMatch(r, phase.places); });
        CHECK(report.value("layout", "") == phase.name);
        for (const auto& p : phase.places) {
            const Rgb c = thumbColor(report, p.cx(), p.cy());
            INFO("tile of " << kFour[p.who].name << " at " << p.cx() << "," << p.cy() << ": " << c.r << "," << c.g
                            << "," << c.b);
            CHECK(near(c, kFour[p.who].rgb));
        }
        if (phase.name == "speaker" || phase.name == "pip") {
            // The louder client has the large tile: its colour near its corners too.
            const Place& big = phase.places.front();
            CHECK(near(thumbColor(report, big.x + big.w * 0.1, big.y + big.h * 0.1), kFour[kLoud].rgb));
            CHECK(near(thumbColor(report, big.x + big.w * 0.6, big.y + big.h * 0.65), kFour[kLoud].rgb));
        }
        if (phase.name == "custom") {
            // The 20-pixel white border around green's picture (x 20..300, y 20..340).
            CHECK(near(at(report, 5, 180), {255, 255, 255}));
            CHECK(near(at(report, 150, 5), {255, 255, 255}));
            CHECK(near(at(report, 315, 180), {255, 255, 255}));
            CHECK(near(at(report, 150, 180), kFour[1].rgb));
            CHECK(near(at(report, 35, 40), kFour[1].rgb)); // the picture's top left: no label there
            // Green's name label at the bottom left of its picture: some of it is
            // not green. The label is drawn before the tile's queue and the
            // compositor's latency, so it may show a few frames after the tiles
            // moved: poll for it.
            auto labelShown = [&](const Json& r) {
                for (int y = 285; y <= 335; y += 10)
                    for (int x = 25; x <= 85; x += 10)
                        if (!near(at(r, x, y), kFour[1].rgb)) return true;
                return false;
            };
            report = viewer.waitReport(labelShown);
            CHECK(labelShown(report));
        }
        // Every receiver's video keeps flowing through the switch, without a freeze.
        for (std::size_t i = 0; i < clients.size(); ++i) {
            auto r = clients[i]->waitReport([&](const Json& j) { return j.value("frames", 0) > before[i] + 10; });
            INFO("receiver " << kFour[i].name << ", log " << clients[i]->process().logPath());
            CHECK(r.value("frames", 0) > before[i] + 10);
            INFO("largest gap without switching " << controlGapMs << " ms; bound " << kMaxFrameGapMs << " ms");
            CHECK(r.value("maxFrameGapMs", -1) >= 0);
            CHECK(r.value("maxFrameGapMs", kMaxFrameGapMs) < kMaxFrameGapMs);
            CHECK(clients[i]->call("reset-gap").value("ok", false)); // the next switch's own count
        }
        // A layout change needs no key frame: the encoder just encodes the new picture.
        INFO("the server's key-frame log:\n" << keyFrameLog(server));
        CHECK(server.metric(keyFrames) - keyFramesBefore == 0);
    }

    for (std::size_t i = 0; i < clients.size(); ++i) {
        const auto r = clients[i]->report();
        INFO("receiver " << kFour[i].name << ", log " << clients[i]->process().logPath());
        CHECK(r.value("state", "") == "connected");
        // No renegotiation: the composite's size never changed.
        CHECK(r.value("width", 0) == kCanvasW);
        CHECK(r.value("height", 0) == kCanvasH);
    }
    for (auto& c : clients) c->leave();
}

TEST_CASE("reloading layouts re-applies a changed layout to a running room; a bad file changes nothing",
          "[call][layout][reload]") {
    // A private copy of the layouts, edited while the server runs.
    char pattern[] = "/tmp/tessera-layouts-XXXXXX";
    REQUIRE(mkdtemp(pattern) != nullptr);
    const std::string dir = pattern;
    auto write = [&](const std::string& file, const std::string& text) { std::ofstream(dir + "/" + file) << text; };
    write("grid.json", readFile("data/layouts/grid.json"));
    write("stage.json", R"({"name": "stage", "slots": [{"x": 0, "y": 0, "w": 0.5, "h": 1}]})");

    Server server({"--layouts-dir", dir, "--admin-token", "secret"});
    Client red(server, ClientOptions{"reload", "red", "0xff0000", 440, {}, false, {}});
    red.waitEvent("joined");
    const std::string api = server.http() + "/api";
    REQUIRE(httpRequest("PUT", api + "/rooms/reload/layout", R"({"layout": "stage"})", "secret").status == 200);
    auto report = red.waitReport([](const Json& r) {
        return r.value("layout", "") == "stage" && near(thumbColor(r, 0.25, 0.5), {255, 0, 0}) &&
               near(thumbColor(r, 0.75, 0.5), {0, 0, 0});
    });
    REQUIRE(near(thumbColor(report, 0.25, 0.5), {255, 0, 0}));
    REQUIRE(near(thumbColor(report, 0.75, 0.5), {0, 0, 0}));

    // Like every /api call, reload needs the admin token.
    CHECK(httpRequest("POST", api + "/layouts/reload").status == 401);
    CHECK(httpRequest("GET", api + "/layouts/reload", {}, "secret").status == 405);

    // The stage moves to the right half: the room shows it without being asked.
    write("stage.json", R"({"name": "stage", "slots": [{"x": 0.5, "y": 0, "w": 0.5, "h": 1}]})");
    auto reload = httpRequest("POST", api + "/layouts/reload", {}, "secret");
    REQUIRE(reload.status == 200);
    CHECK(Json::parse(reload.body).at("layouts") == Json::array({"grid", "stage"}));
    report = red.waitReport([](const Json& r) {
        return near(thumbColor(r, 0.75, 0.5), {255, 0, 0}) && near(thumbColor(r, 0.25, 0.5), {0, 0, 0});
    });
    CHECK(near(thumbColor(report, 0.75, 0.5), {255, 0, 0}));
    CHECK(near(thumbColor(report, 0.25, 0.5), {0, 0, 0}));

    // A bad file: 400 naming the file and the field; the old set stays, the room too.
    write("broken.json", R"({"name": "broken", "rest": {}, "border": -1})");
    reload = httpRequest("POST", api + "/layouts/reload", {}, "secret");
    CHECK(reload.status == 400);
    CHECK(reload.body.find("broken.json") != std::string::npos);
    CHECK(reload.body.find("border") != std::string::npos);
    CHECK(httpRequest("PUT", api + "/rooms/reload/layout", R"({"layout": "broken"})", "secret").status == 400);

    // SIGHUP does the same once the file is fixed.
    write("broken.json", R"({"name": "broken", "slots": [{"x": 0, "y": 0, "w": 0.5, "h": 1}]})");
    server.process().kill(SIGHUP);
    auto deadline = Clock::now() + kDeadline;
    int status = 0;
    while (Clock::now() < deadline &&
           (status = httpRequest("PUT", api + "/rooms/reload/layout", R"({"layout": "broken"})", "secret").status) !=
               200)
        red.report(); // paces the polling
    CHECK(status == 200);
    report = red.waitReport([](const Json& r) {
        return r.value("layout", "") == "broken" && near(thumbColor(r, 0.25, 0.5), {255, 0, 0});
    });
    CHECK(near(thumbColor(report, 0.25, 0.5), {255, 0, 0}));

    red.leave();
    std::filesystem::remove_all(dir);
}
