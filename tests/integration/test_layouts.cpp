// Layouts changed live (issue 4): four clients of distinct colours watch the
// room switch grid -> speaker -> pip -> a custom spec through the API. For
// each layout the received composite shows every colour where the spec's
// geometry puts it; the louder client is the speaker and takes the large
// tile; receivers never freeze across a switch and no switch costs a key
// frame or a renegotiation.
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "harness.h"
#include "tessera/layout.h"
#include "tessera/layout_spec.h"

using namespace tessera::testing;

namespace {

constexpr int kCanvasW = 1280, kCanvasH = 720;
// A receiver decoding 720p on a loaded 2-core machine may hiccup; a freeze
// (the composite stopping, a decoder waiting for a key frame) lasts seconds.
constexpr int kMaxFrameGapMs = 1000;

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
        if (!near(thumbColor(report, fx, fy), kFour[indexOf(t)].rgb))
            return false;
    }
    return true;
}

Rgb at(const Json& report, int x, int y) {
    return thumbColor(report, static_cast<double>(x) / kCanvasW, static_cast<double>(y) / kCanvasH);
}

} // namespace

TEST_CASE("four clients see grid, speaker, pip and a custom layout where the specs say, without a freeze",
          "[call][layout][switch]") {
    Server server;
    std::vector<int> tones;
    for (const auto& w : kFour)
        tones.push_back(w.tone);
    std::vector<std::unique_ptr<Client>> clients;
    std::vector<std::string> ids;
    for (const auto& w : kFour) {
        clients.push_back(std::make_unique<Client>(
            server, ClientOptions{"switch", w.name, w.color, w.tone, tones, false,
                                  {"--volume", std::to_string(w.volume)}}));
        ids.push_back(clients.back()->waitEvent("joined").value("id", ""));
    }
    auto& viewer = *clients[0];
    const std::string url = server.http() + "/api/rooms/switch/layout";

    struct Phase {
        std::string name;
        std::string body;                   // the PUT body
        tessera::protocol::LayoutSpec spec; // for the expected geometry
    };
    const std::string custom = R"({"name": "custom", "padding": 0, "border": 40, "borderColor": "#ffffff",
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
    for (auto& c : clients) {
        c->waitReport([](const Json& r) { return r.value("frames", 0) > 10; });
        CHECK(c->call("reset-gap").value("ok", false));
    }
    const std::string keyFrames = "tessera_room_keyframes_forced_total{room=\"switch\"}";
    const double keyFramesBefore = server.metric(keyFrames);
    REQUIRE(keyFramesBefore >= 0);

    for (const Phase& phase : phases) {
        INFO("layout " << phase.name);
        std::vector<std::int64_t> before;
        for (auto& c : clients)
            before.push_back(c->report().value("frames", 0));
        const auto put = httpRequest("PUT", url, phase.body);
        REQUIRE(put.status == 200);
        const auto tiles = expectedTiles(phase.spec, kLoud);
        report = viewer.waitReport(
            [&](const Json& r) { return r.value("layout", "") == phase.name && tilesMatch(r, tiles); });
        CHECK(report.value("layout", "") == phase.name);
        for (const auto& t : tiles) {
            const double fx = (t.x + t.width / 2.0) / kCanvasW, fy = (t.y + t.height / 2.0) / kCanvasH;
            const Rgb c = thumbColor(report, fx, fy);
            INFO("tile of " << kFour[indexOf(t)].name << " at " << fx << "," << fy << ": " << c.r << "," << c.g
                            << "," << c.b);
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
            // The 40-pixel white border around green's picture (x 40..600, y 40..680).
            CHECK(near(at(report, 10, 360), {255, 255, 255}));
            CHECK(near(at(report, 300, 10), {255, 255, 255}));
            CHECK(near(at(report, 630, 360), {255, 255, 255}));
            CHECK(near(at(report, 300, 360), kFour[1].rgb));
            // Green's name label, bottom left of its picture: some of it is not green;
            // the top left of the picture is untouched.
            CHECK(near(at(report, 70, 80), kFour[1].rgb));
            bool label = false;
            for (int y = 610; y <= 670; y += 20)
                for (int x = 50; x <= 130; x += 20)
                    label = label || !near(at(report, x, y), kFour[1].rgb);
            CHECK(label);
        }
        // Every receiver's video keeps flowing through the switch.
        for (std::size_t i = 0; i < clients.size(); ++i) {
            auto r = clients[i]->waitReport([&](const Json& j) { return j.value("frames", 0) > before[i] + 10; });
            INFO("receiver " << kFour[i].name);
            CHECK(r.value("frames", 0) > before[i] + 10);
        }
    }

    for (std::size_t i = 0; i < clients.size(); ++i) {
        const auto r = clients[i]->report();
        INFO("receiver " << kFour[i].name << ", log " << clients[i]->process().logPath());
        CHECK(r.value("state", "") == "connected");
        CHECK(r.value("maxFrameGapMs", -1) >= 0);
        CHECK(r.value("maxFrameGapMs", kMaxFrameGapMs) < kMaxFrameGapMs);
        // No renegotiation: the composite's size never changed.
        CHECK(r.value("width", 0) == kCanvasW);
        CHECK(r.value("height", 0) == kCanvasH);
    }
    // A layout change needs no key frame: the encoder just encodes the new picture.
    // (Receivers may still ask for one after loss under load; one per switch would be a storm.)
    const double keyFramesForced = server.metric(keyFrames) - keyFramesBefore;
    INFO("key frames forced during the switches: " << keyFramesForced);
    CHECK(keyFramesForced < static_cast<double>(phases.size()));
    for (auto& c : clients)
        c->leave();
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
