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

#include "harness.h"
#include "tessera/layout/geometry.h"
#include "tessera/protocol/layout_spec.h"

using namespace tessera::testing;

namespace {

// A small composite and small senders: four clients that encode and decode
// are the costliest thing in the suite, and the machine is shared.
constexpr int kCanvasW = 640, kCanvasH = 360;
const std::vector<std::string> kServerArgs = {"--video-width",      "640", "--video-height",      "360",
                                              "--video-tile-width", "320", "--video-tile-height", "180"};
// Receivers at 30 fps see a frame every ~33 ms; a starved client on a loaded
// machine may stutter for a few hundred. A freeze (the composite stopping, a
// decoder waiting for the next key frame, 2 s apart) lasts longer than this.
constexpr int kMaxFrameGapMs = 1500;

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

// The tiles the server should draw: the same geometry code on the same spec,
// with sources "p<i>" in join order.
std::vector<tessera::layout::Tile> expectedTiles(const tessera::protocol::LayoutSpec& spec, std::size_t speaker) {
    std::vector<tessera::layout::Source> sources;
    for (std::size_t i = 0; i < kFour.size(); ++i)
        sources.push_back({"p" + std::to_string(i), "p" + std::to_string(i), kFour[i].name, false, 16, 9});
    return tessera::layout::computeTiles(sources, "p" + std::to_string(speaker), spec, kCanvasW, kCanvasH);
}

std::size_t indexOf(const tessera::layout::Tile& tile) { return std::stoul(tile.sourceId.substr(1)); }

// Every tile's centre shows its participant's colour.
bool tilesMatch(const Json& report, const std::vector<tessera::layout::Tile>& tiles) {
    for (const auto& t : tiles) {
        const double fx = (t.x + t.width / 2.0) / kCanvasW, fy = (t.y + t.height / 2.0) / kCanvasH;
        if (!near(thumbColor(report, fx, fy), kFour[indexOf(t)].rgb)) return false;
    }
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
        std::string body;                   // the PUT body
        tessera::protocol::LayoutSpec spec; // for the expected geometry
    };
    const std::string custom = R"({"name": "custom", "padding": 0, "border": 20, "borderColor": "#ffffff",
        "labels": true, "keepAspect": false,
        "slots": [{"x": 0, "y": 0, "w": 0.5, "h": 1, "source": "participant", "participant": "green"},
                  {"x": 0.5, "y": 0, "w": 0.5, "h": 0.5, "source": "speaker"}],
        "rest": {"x": 0.5, "y": 0.5, "w": 0.5, "h": 0.5}})";
    using tessera::protocol::parseLayoutSpec;
    const std::vector<Phase> phases = {
        {"grid", R"({"layout": "grid"})", parseLayoutSpec(readFile("data/layouts/grid.json"))},
        {"speaker", R"({"layout": "speaker"})", parseLayoutSpec(readFile("data/layouts/speaker.json"))},
        {"pip", R"({"layout": "pip"})", parseLayoutSpec(readFile("data/layouts/pip.json"))},
        {"custom", R"({"layout": )" + custom + "}", parseLayoutSpec(custom)},
    };

    // Settled: everyone receives the grid, and the loud client is the speaker.
    auto report = viewer.waitReport([&](const Json& r) {
        return r.value("frames", 0) > 10 && r.value("speaker", "") == ids[kLoud] &&
               tilesMatch(r, expectedTiles(phases[0].spec, kLoud));
    });
    INFO("viewer log " << viewer.process().logPath());
    REQUIRE(report.value("speaker", "") == ids[kLoud]);
    REQUIRE(tilesMatch(report, expectedTiles(phases[0].spec, kLoud)));
    // Labels are off in the grid: a tile's bottom left corner is its flat colour.
    for (const auto& t : expectedTiles(phases[0].spec, kLoud))
        CHECK(near(at(report, t.x + t.width / 10, t.y + t.height * 9 / 10), kFour[indexOf(t)].rgb));
    // Control: how much the receivers stutter with no switch at all (about 3 s
    // of frames). On an idle machine that is ~50 ms; with the machine's other
    // suites running, load averages of 30-70 on 2 cores were seen here and
    // starved clients stuttered for seconds. The bound for the switches is
    // kMaxFrameGapMs or twice the control, whichever is larger: a stall caused
    // by a switch still stands out, load alone does not fail the test.
    std::vector<std::int64_t> settled;
    for (auto& c : clients) {
        c->waitReport([](const Json& r) { return r.value("frames", 0) > 10; });
        CHECK(c->call("reset-gap").value("ok", false));
        settled.push_back(c->report().value("frames", 0));
    }
    std::int64_t controlGapMs = 0;
    for (std::size_t i = 0; i < clients.size(); ++i) {
        const auto r = clients[i]->waitReport([&](const Json& j) { return j.value("frames", 0) > settled[i] + 90; });
        controlGapMs = std::max<std::int64_t>(controlGapMs, r.value("maxFrameGapMs", 0));
        CHECK(clients[i]->call("reset-gap").value("ok", false));
    }
    const std::int64_t gapBoundMs = std::max<std::int64_t>(kMaxFrameGapMs, 2 * controlGapMs);
    const std::string keyFrames = "tessera_room_keyframes_forced_total{room=\"switch\"}";
    const double keyFramesBefore = server.metric(keyFrames);
    REQUIRE(keyFramesBefore >= 0);

    for (const Phase& phase : phases) {
        INFO("layout " << phase.name);
        std::vector<std::int64_t> before;
        for (auto& c : clients) before.push_back(c->report().value("frames", 0));
        const auto put = httpRequest("PUT", url, phase.body);
        REQUIRE(put.status == 200);
        const auto tiles = expectedTiles(phase.spec, kLoud);
        report = viewer.waitReport(
            [&](const Json& r) { return r.value("layout", "") == phase.name && tilesMatch(r, tiles); });
        CHECK(report.value("layout", "") == phase.name);
        for (const auto& t : tiles) {
            const double fx = (t.x + t.width / 2.0) / kCanvasW, fy = (t.y + t.height / 2.0) / kCanvasH;
            const Rgb c = thumbColor(report, fx, fy);
            INFO("tile of " << kFour[indexOf(t)].name << " at " << fx << "," << fy << ": " << c.r << "," << c.g << ","
                            << c.b);
            CHECK(near(c, kFour[indexOf(t)].rgb));
        }
        if (phase.name == "speaker" || phase.name == "pip") {
            // The louder client has the large tile.
            REQUIRE_FALSE(tiles.empty());
            CHECK(indexOf(tiles.front()) == kLoud);
            CHECK(tiles.front().width >= kCanvasW * 3 / 4);
            CHECK(near(at(report, kCanvasW / 2, kCanvasH * 2 / 5), kFour[kLoud].rgb));
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
            INFO("largest gap without switching " << controlGapMs << " ms; bound " << gapBoundMs << " ms");
            CHECK(r.value("maxFrameGapMs", -1) >= 0);
            CHECK(r.value("maxFrameGapMs", gapBoundMs) < gapBoundMs);
            CHECK(clients[i]->call("reset-gap").value("ok", false)); // the next switch's own count
        }
    }

    for (std::size_t i = 0; i < clients.size(); ++i) {
        const auto r = clients[i]->report();
        INFO("receiver " << kFour[i].name << ", log " << clients[i]->process().logPath());
        CHECK(r.value("state", "") == "connected");
        // No renegotiation: the composite's size never changed.
        CHECK(r.value("width", 0) == kCanvasW);
        CHECK(r.value("height", 0) == kCanvasH);
    }
    // A layout change needs no key frame: the encoder just encodes the new picture.
    // (Receivers may still ask for one after loss under load; one per switch would be a storm.)
    const double keyFramesForced = server.metric(keyFrames) - keyFramesBefore;
    INFO("key frames forced during the switches: " << keyFramesForced);
    CHECK(keyFramesForced < static_cast<double>(phases.size()));
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
