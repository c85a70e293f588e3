// layout::computeTiles and gridShape: every shipped layout with 1..25
// participants, the slot semantics, and the automatic grid.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tessera/layout/geometry.h"
#include "tessera/protocol/layout_spec.h"

using tessera::layout::computeTiles;
using tessera::layout::defaultGridSpec;
using tessera::layout::gridShape;
using tessera::layout::onScreen;
using tessera::layout::Rect;
using tessera::layout::Source;
using tessera::layout::Tile;
using tessera::layout::visibleBorders;
using tessera::protocol::FracRect;
using tessera::protocol::LayoutSpec;
using tessera::protocol::parseLayoutSpec;
using tessera::protocol::Slot;

namespace {

constexpr double k16by9 = 16.0 / 9.0;

// The test working directory is the source root; the fallback lets the binary
// run from anywhere.
std::filesystem::path layoutsDir() {
    std::filesystem::path dir = "data/layouts";
    if (!std::filesystem::is_directory(dir)) dir = std::filesystem::path(TESSERA_SOURCE_DIR) / "data/layouts";
    return dir;
}

// Every layout file, so a new one is covered without touching this test.
std::vector<std::pair<std::string, LayoutSpec>> shippedLayouts() {
    std::vector<std::pair<std::string, LayoutSpec>> layouts;
    for (const auto& entry : std::filesystem::directory_iterator(layoutsDir())) {
        if (!entry.is_regular_file() || entry.path().extension() != ".json") continue;
        std::ifstream in(entry.path(), std::ios::binary);
        std::ostringstream text;
        text << in.rdbuf();
        layouts.emplace_back(entry.path().filename().string(), parseLayoutSpec(text.str()));
    }
    std::sort(layouts.begin(), layouts.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    return layouts;
}

Source camera(int i, unsigned aspectW = 16, unsigned aspectH = 9) {
    const std::string n = std::to_string(i);
    return {"cam-p" + n, "p" + n, "P" + n, false, aspectW, aspectH};
}

Source screen(int i) {
    const std::string n = std::to_string(i);
    return {"screen-p" + n, "p" + n, "P" + n, true, 16, 9};
}

// Cameras p1..pn in join order, then (optionally) a screen share by `sharer`,
// which arrives later by renegotiation.
std::vector<Source> people(int n, int sharer = 0) {
    std::vector<Source> sources;
    for (int i = 1; i <= n; ++i) sources.push_back(camera(i));
    if (sharer > 0) sources.push_back(screen(sharer));
    return sources;
}

const Tile* find(const std::vector<Tile>& tiles, const std::string& id) {
    for (const Tile& t : tiles)
        if (t.sourceId == id) return &t;
    return nullptr;
}

bool overlap(const Tile& a, const Tile& b) {
    return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

bool fracOverlap(const FracRect& a, const FracRect& b) {
    constexpr double e = 1e-9; // touching is not overlapping
    return a.x + e < b.x + b.w && b.x + e < a.x + a.w && a.y + e < b.y + b.h && b.y + e < a.y + a.h;
}

std::string describe(const Tile& t) {
    std::ostringstream s;
    s << t.sourceId << " " << t.width << "x" << t.height << "+" << t.x << "+" << t.y << " z" << t.z;
    return s.str();
}

// The properties every layout must have, whatever the spec. Returns the
// violations, so one CHECK reports them all without millions of assertions.
std::vector<std::string> violations(const LayoutSpec& spec, const std::vector<Source>& sources,
                                    const std::string& speaker, unsigned canvasW, unsigned canvasH,
                                    bool expectEveryone) {
    const auto tiles = computeTiles(sources, speaker, spec, canvasW, canvasH);
    std::vector<std::string> errors;
    auto error = [&](const std::string& what, const Tile& t) { errors.push_back(what + ": " + describe(t)); };
    // An odd canvas dimension loses its last pixel: tiles stay on even pixels.
    const int w = static_cast<int>(canvasW & ~1u), h = static_cast<int>(canvasH & ~1u);

    std::map<std::string, const Source*> byId;
    for (const Source& s : sources) byId[s.id] = &s;
    std::set<std::string> seen;
    for (std::size_t i = 0; i < tiles.size(); ++i) {
        const Tile& t = tiles[i];
        if (t.width < 2 || t.height < 2) error("empty tile", t);
        if (t.x < 0 || t.y < 0 || t.x + t.width > w || t.y + t.height > h) error("outside the canvas", t);
        if (t.x % 2 || t.y % 2 || t.width % 2 || t.height % 2) error("odd position or size", t);
        if (!seen.insert(t.sourceId).second) error("source shown twice", t);
        if (i > 0 && tiles[i - 1].z > t.z) error("not sorted by z", t);
        const auto source = byId.find(t.sourceId);
        if (source == byId.end()) {
            error("unknown source", t);
            continue;
        }
        const Source& s = *source->second;
        if (spec.keepAspect && s.aspectW && s.aspectH) {
            const double idealH = t.width * double(s.aspectH) / s.aspectW;
            const double idealW = t.height * double(s.aspectW) / s.aspectH;
            if (std::abs(t.height - idealH) > 1 + 1e-9 && std::abs(t.width - idealW) > 1 + 1e-9)
                error("aspect off by more than 1 px", t);
        }
    }

    if (spec.rest) {
        // Slot placement does not depend on the rest region, so the slot tiles
        // are those of the same spec without it; the others form the grid.
        LayoutSpec slotsOnly = spec;
        slotsOnly.rest.reset();
        std::set<std::string> inSlots;
        for (const Tile& t : computeTiles(sources, speaker, slotsOnly, canvasW, canvasH)) inSlots.insert(t.sourceId);
        // Everyone is shown, up to the grid's cap.
        const std::size_t others = sources.size() - inSlots.size();
        const std::size_t expected =
            inSlots.size() + (spec.restMax ? std::min<std::size_t>(others, spec.restMax) : others);
        if (expectEveryone && tiles.size() != expected)
            errors.push_back("with a rest region everyone is shown (up to its max): " + std::to_string(tiles.size()) +
                             " tiles for " + std::to_string(sources.size()) + " sources");
        std::vector<const Tile*> grid;
        for (const Tile& t : tiles)
            if (!inSlots.count(t.sourceId)) grid.push_back(&t);
        const FracRect& r = *spec.rest;
        for (std::size_t i = 0; i < grid.size(); ++i) {
            const Tile& t = *grid[i];
            // Edges round to even pixels: allow 1 px on each side.
            if (t.x < r.x * w - 1 || t.y < r.y * h - 1 || t.x + t.width > (r.x + r.w) * w + 1 ||
                t.y + t.height > (r.y + r.h) * h + 1)
                error("grid tile outside the rest region", t);
            if (t.z != spec.restZ) error("grid tile with the wrong z", t);
            for (std::size_t j = i + 1; j < grid.size(); ++j)
                if (overlap(t, *grid[j])) error("grid tiles overlap with " + describe(*grid[j]), t);
        }
    } else if (tiles.size() > spec.slots.size()) {
        errors.push_back("more tiles than slots without a rest region");
    }

    // Where the spec's regions at one z are disjoint, so are the tiles.
    std::map<int, std::vector<FracRect>> regions;
    for (const Slot& slot : spec.slots) regions[slot.z].push_back(slot.rect);
    if (spec.rest) regions[spec.restZ].push_back(*spec.rest);
    for (const auto& [z, rects] : regions) {
        bool disjoint = true;
        for (std::size_t i = 0; i < rects.size(); ++i)
            for (std::size_t j = i + 1; j < rects.size(); ++j) disjoint = disjoint && !fracOverlap(rects[i], rects[j]);
        if (!disjoint) continue;
        for (std::size_t i = 0; i < tiles.size(); ++i)
            for (std::size_t j = i + 1; j < tiles.size(); ++j)
                if (tiles[i].z == z && tiles[j].z == z && overlap(tiles[i], tiles[j]))
                    error("overlaps " + describe(tiles[j]) + " though the spec's regions do not", tiles[i]);
    }
    return errors;
}

std::string joined(const std::vector<std::string>& lines) {
    std::string text;
    for (std::size_t i = 0; i < lines.size() && i < 10; ++i) text += lines[i] + "\n";
    return text;
}

} // namespace

TEST_CASE("every shipped layout holds up with 1..25 participants", "[layout]") {
    const auto layouts = shippedLayouts();
    REQUIRE(layouts.size() >= 4);
    const std::pair<unsigned, unsigned> canvases[] = {{1280, 720}, {640, 360},  {1920, 1080},
                                                      {720, 1280}, {1024, 768}, {1281, 721}};
    for (const auto& [file, spec] : layouts) {
        for (const auto& [w, h] : canvases) {
            for (int n = 1; n <= 25; ++n) {
                for (int sharer : {0, 1, n}) {
                    for (const std::string& speaker : std::vector<std::string>{
                             "", "p1", "p" + std::to_string((n + 1) / 2), "p" + std::to_string(n), "gone"}) {
                        CAPTURE(file, w, h, n, sharer, speaker);
                        const auto errors = violations(spec, people(n, sharer), speaker, w, h, true);
                        if (!errors.empty()) FAIL_CHECK(joined(errors));
                    }
                }
            }
        }
    }
}

TEST_CASE("random valid specs keep tiles inside, even and apart", "[layout]") {
    std::mt19937 random(20240611); // fixed: a failure must reproduce
    auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(random); };
    // Rects on a 1/20 lattice, at least 0.1 wide and high, always valid.
    auto rect = [&] {
        const int x = uniform(0, 18), y = uniform(0, 18);
        return FracRect{x / 20.0, y / 20.0, uniform(2, 20 - x) / 20.0, uniform(2, 20 - y) / 20.0};
    };
    const Slot::Source kinds[] = {Slot::Source::Next, Slot::Source::Speaker, Slot::Source::ScreenShare,
                                  Slot::Source::Participant};
    const std::pair<unsigned, unsigned> aspects[] = {{16, 9}, {4, 3}, {1, 1}, {9, 16}, {21, 9}};
    for (int round = 0; round < 2000; ++round) {
        LayoutSpec spec;
        spec.name = "random";
        const int slots = uniform(0, 4);
        for (int i = 0; i < slots; ++i) {
            Slot slot;
            slot.rect = rect();
            slot.z = uniform(0, 2);
            slot.source = kinds[uniform(0, 3)];
            slot.participant = "P" + std::to_string(uniform(1, 10));
            spec.slots.push_back(slot);
        }
        if (slots == 0 || uniform(0, 2) > 0) {
            spec.rest = rect();
            spec.restZ = uniform(0, 2);
        }
        spec.keepAspect = uniform(0, 3) > 0;
        spec.padding = uniform(0, 24) / 2.0;

        std::vector<Source> sources;
        const int n = uniform(0, 9);
        for (int i = 1; i <= n; ++i) {
            const auto [aw, ah] = aspects[uniform(0, 4)];
            sources.push_back(camera(i, aw, ah));
            if (uniform(0, 5) == 0) sources.push_back(screen(i));
        }
        const unsigned w = static_cast<unsigned>(uniform(320, 1920));
        const unsigned h = static_cast<unsigned>(uniform(180, 1080));
        const std::string speaker = "p" + std::to_string(uniform(0, 10));
        CAPTURE(round, w, h, n, speaker);
        const auto errors = violations(spec, sources, speaker, w, h, true);
        if (!errors.empty()) FAIL_CHECK(joined(errors));
    }
}

TEST_CASE("grid shapes for 1..25 16:9 sources in a 16:9 region", "[layout]") {
    // n -> columns x rows, as people expect from a video call.
    const std::pair<unsigned, unsigned> expected[] = {
        {1, 1}, {2, 1}, {2, 2}, {2, 2}, {3, 2}, {3, 2}, {3, 3}, {3, 3}, {3, 3}, {4, 3}, {4, 3}, {4, 3}, {4, 4},
        {4, 4}, {4, 4}, {4, 4}, {5, 4}, {5, 4}, {5, 4}, {5, 4}, {5, 5}, {5, 5}, {5, 5}, {5, 5}, {5, 5}};
    for (unsigned n = 1; n <= 25; ++n) {
        CAPTURE(n);
        const auto shape = gridShape(n, k16by9, k16by9);
        CHECK(shape.columns == expected[n - 1].first);
        CHECK(shape.rows == expected[n - 1].second);
    }
}

TEST_CASE("grid shapes maximise the tile and leave no empty row or column", "[layout]") {
    for (double region : {k16by9, 4.0 / 3, 1.0, 9.0 / 16, 8.9, 0.2, 0.05}) {
        for (double source : {k16by9, 4.0 / 3, 1.0, 9.0 / 16}) {
            for (unsigned n = 1; n <= 60; ++n) {
                CAPTURE(region, source, n);
                const auto s = gridShape(n, region, source);
                REQUIRE(s.columns * s.rows >= n);
                CHECK((s.columns - 1) * s.rows < n);
                CHECK(s.columns * (s.rows - 1) < n);
                // The tile's width in region units; no other shape beats it.
                auto tile = [&](unsigned c, unsigned r) { return std::min(region / c, source / r); };
                const double best = tile(s.columns, s.rows);
                for (unsigned c = 1; c <= n; ++c) CHECK(tile(c, (n + c - 1) / c) <= best * (1 + 1e-9));
            }
        }
    }
}

TEST_CASE("grid shapes follow the region's orientation", "[layout]") {
    CHECK(gridShape(2, 9.0 / 16, k16by9).rows == 2); // portrait canvas: one above the other
    CHECK(gridShape(2, 9.0 / 16, k16by9).columns == 1);
    const auto strip = gridShape(6, 1280.0 / 144, k16by9); // the speaker layout's strip
    CHECK(strip.rows == 1);
    CHECK(strip.columns == 6);
    const auto column = gridShape(4, 256.0 / 720, k16by9); // the presentation column
    CHECK(column.columns == 1);
    CHECK(column.rows == 4);
    // A 16:9 canvas computed from pixels is 16:9 give or take the last bit;
    // that must not flip ties to the portrait shape.
    for (double canvas : {1280.0 / 720, 1920.0 / 1080, 640.0 / 360, 3840.0 / 2160}) {
        CAPTURE(canvas);
        CHECK(gridShape(2, canvas, k16by9).columns == 2);
        CHECK(gridShape(5, canvas, k16by9).columns == 3);
        CHECK(gridShape(11, canvas, k16by9).columns == 4);
        CHECK(gridShape(18, canvas, k16by9).columns == 5);
    }
    // Nonsense inputs still give a usable shape.
    CHECK(gridShape(0, k16by9, k16by9).columns == 1);
    CHECK(gridShape(4, 0, -1).columns * gridShape(4, 0, -1).rows >= 4);
    CHECK(gridShape(4, std::nan(""), k16by9).columns >= 1);
}

TEST_CASE("one source fills the canvas", "[layout]") {
    LayoutSpec spec = defaultGridSpec();
    spec.padding = 0;
    const auto tiles = computeTiles(people(1), "", spec, 1280, 720);
    REQUIRE(tiles.size() == 1);
    CHECK(tiles[0].sourceId == "cam-p1");
    CHECK(tiles[0].x == 0);
    CHECK(tiles[0].y == 0);
    CHECK(tiles[0].width == 1280);
    CHECK(tiles[0].height == 720);
}

TEST_CASE("the grid lays sources out side by side with padding", "[layout]") {
    const auto tiles = computeTiles(people(2), "", defaultGridSpec(), 1280, 720);
    REQUIRE(tiles.size() == 2);
    // Cells 640x720; 4 px padding leaves 632x712; 16:9 inside that is 632x356, centred.
    for (const Tile& t : tiles) {
        CHECK(t.width == 632);
        CHECK(t.height == 356);
        CHECK(t.y == 182);
    }
    CHECK(tiles[0].sourceId == "cam-p1"); // join order
    CHECK(tiles[0].x == 4);
    CHECK(tiles[1].x == 644);
}

TEST_CASE("the grid's last row is centred", "[layout]") {
    const auto tiles = computeTiles(people(3), "", defaultGridSpec(), 1280, 720);
    REQUIRE(tiles.size() == 3);
    CHECK(tiles[0].y == tiles[1].y);
    CHECK(tiles[2].y > tiles[0].y);
    const int centre = tiles[2].x + tiles[2].width / 2;
    CHECK(std::abs(centre - 640) <= 2);

    const auto five = computeTiles(people(5), "", defaultGridSpec(), 1280, 720); // 3 + 2
    REQUIRE(five.size() == 5);
    const int left = five[3].x, right = five[4].x + five[4].width;
    CHECK(std::abs((left + right) / 2 - 640) <= 2);
}

TEST_CASE("without keepAspect a tile fills its cell minus the padding", "[layout]") {
    LayoutSpec spec = defaultGridSpec();
    spec.keepAspect = false;
    spec.padding = 6;
    const auto tiles = computeTiles(people(2), "", spec, 1280, 720);
    REQUIRE(tiles.size() == 2);
    CHECK(tiles[0].x == 6);
    CHECK(tiles[0].y == 6);
    CHECK(tiles[0].width == 628);
    CHECK(tiles[0].height == 708);
}

TEST_CASE("a source keeps its own aspect in a slot", "[layout]") {
    const auto spec = parseLayoutSpec(R"({"name": "one", "slots": [{"source": "next"}]})");
    const auto tiles = computeTiles({camera(1, 4, 3)}, "", spec, 1280, 720);
    REQUIRE(tiles.size() == 1);
    CHECK(tiles[0].height == 720);
    CHECK(tiles[0].width == 960);
    CHECK(tiles[0].x == 160); // centred
}

TEST_CASE("the speaker slot shows the active speaker, else the first camera", "[layout]") {
    const auto spec = parseLayoutSpec(R"({"name": "s",
        "slots": [{"h": 0.8, "source": "speaker"}], "rest": {"y": 0.8, "h": 0.2}})");
    auto bigOne = [&](const std::string& speaker) {
        const auto tiles = computeTiles(people(4), speaker, spec, 1280, 720);
        REQUIRE(tiles.size() == 4);
        CHECK(tiles[0].y + tiles[0].height <= 576);
        for (std::size_t i = 1; i < tiles.size(); ++i) CHECK(tiles[i].y >= 576);
        return tiles[0].sourceId;
    };
    CHECK(bigOne("p3") == "cam-p3");
    CHECK(bigOne("") == "cam-p1");
    CHECK(bigOne("gone") == "cam-p1");

    // The speaker's screen share is not their camera.
    const auto shareOnly = computeTiles({camera(1), screen(2)}, "p2", spec, 1280, 720);
    REQUIRE(shareOnly.size() == 2);
    CHECK(shareOnly[0].sourceId == "cam-p1");
}

TEST_CASE("next takes cameras in join order, skipping those already placed", "[layout]") {
    const auto spec = parseLayoutSpec(R"({"name": "s", "slots": [
        {"w": 0.5, "source": "speaker"}, {"x": 0.5, "w": 0.5, "source": "next"}]})");
    auto ids = [&](const std::string& speaker) {
        std::vector<std::string> out;
        for (const Tile& t : computeTiles(people(3, 1), speaker, spec, 1280, 720)) out.push_back(t.sourceId);
        return out;
    };
    CHECK(ids("p1") == std::vector<std::string>{"cam-p1", "cam-p2"});
    CHECK(ids("p3") == std::vector<std::string>{"cam-p3", "cam-p1"});
    // No rest region: p3's camera and the screen share are not shown.
    CHECK(ids("") == std::vector<std::string>{"cam-p1", "cam-p2"});
}

TEST_CASE("the presentation layout gives the screen share the big slot", "[layout]") {
    const auto spec = parseLayoutSpec(R"({"name": "p",
        "slots": [{"w": 0.8, "source": "screenshare"}], "rest": {"x": 0.8, "w": 0.2}})");
    const auto shared = computeTiles(people(3, 2), "p1", spec, 1280, 720);
    REQUIRE(shared.size() == 4);
    CHECK(shared[0].sourceId == "screen-p2");
    CHECK(shared[0].width > 900);
    for (std::size_t i = 1; i < shared.size(); ++i) CHECK(shared[i].x >= 1024);

    // No screen share: the slot stays empty, every camera is in the column.
    const auto none = computeTiles(people(3), "p1", spec, 1280, 720);
    REQUIRE(none.size() == 3);
    for (const Tile& t : none) CHECK(t.x >= 1024);

    // A second screen share goes to the column with the cameras.
    auto sources = people(2, 1);
    sources.push_back(screen(2));
    const auto two = computeTiles(sources, "", spec, 1280, 720);
    REQUIRE(two.size() == 4);
    CHECK(two[0].sourceId == "screen-p1");
    REQUIRE(find(two, "screen-p2"));
    CHECK(find(two, "screen-p2")->x >= 1024);
}

TEST_CASE("a participant slot shows that person by display name", "[layout]") {
    const auto spec = parseLayoutSpec(R"({"name": "host", "slots": [
        {"w": 0.5, "source": "participant", "participant": "P2"}], "rest": {"x": 0.5, "w": 0.5}})");
    const auto tiles = computeTiles(people(3, 2), "", spec, 1280, 720);
    REQUIRE(tiles.size() == 4);
    CHECK(tiles[0].sourceId == "cam-p2"); // the camera, not P2's screen share
    CHECK(tiles[0].x + tiles[0].width <= 640);

    auto absent = spec;
    absent.slots[0].participant = "Nobody";
    const auto without = computeTiles(people(3), "", absent, 1280, 720);
    REQUIRE(without.size() == 3);
    for (const Tile& t : without) CHECK(t.x >= 640); // the slot stays empty
}

TEST_CASE("picture in picture: the speaker full frame, the next as an inset on top", "[layout]") {
    const auto spec = parseLayoutSpec(R"({"name": "pip", "padding": 4, "slots": [
        {"source": "speaker"},
        {"x": 0.73, "y": 0.73, "w": 0.25, "h": 0.25, "z": 1, "source": "next"}]})");
    const auto tiles = computeTiles(people(5), "p4", spec, 1280, 720);
    REQUIRE(tiles.size() == 2); // no rest: the others are not shown
    CHECK(tiles[0].sourceId == "cam-p4");
    CHECK(tiles[0].z == 0);
    CHECK(tiles[1].sourceId == "cam-p1");
    CHECK(tiles[1].z == 1);
    CHECK(tiles[1].x > 900);
    CHECK(tiles[1].y > 500);
    CHECK(tiles[1].x + tiles[1].width < 1280);
    CHECK(tiles[1].y + tiles[1].height < 720);
    CHECK(overlap(tiles[0], tiles[1])); // on top of the speaker, as intended

    const auto alone = computeTiles(people(1), "p1", spec, 1280, 720);
    REQUIRE(alone.size() == 1); // nobody for the inset
    CHECK(alone[0].sourceId == "cam-p1");
}

TEST_CASE("tiles come out by z, then in placement order", "[layout]") {
    const auto spec = parseLayoutSpec(R"({"name": "z", "slots": [
        {"w": 0.5, "h": 0.5, "z": 2}, {"x": 0.5, "w": 0.5, "h": 0.5, "z": 0},
        {"y": 0.5, "w": 0.5, "h": 0.5, "z": 2}], "rest": {"x": 0.5, "y": 0.5, "w": 0.5, "h": 0.5, "z": 1}})");
    const auto tiles = computeTiles(people(5), "", spec, 1280, 720);
    std::vector<std::string> order;
    for (const Tile& t : tiles) order.push_back(t.sourceId);
    CHECK(order == std::vector<std::string>{"cam-p2", "cam-p4", "cam-p5", "cam-p1", "cam-p3"});
}

TEST_CASE("adjacent regions touch exactly, on even pixels", "[layout]") {
    LayoutSpec spec;
    spec.name = "thirds";
    spec.keepAspect = false;
    for (int i = 0; i < 3; ++i) {
        Slot slot;
        slot.rect = {i / 3.0, 0, 1 / 3.0, 1};
        spec.slots.push_back(slot);
    }
    const auto tiles = computeTiles(people(3), "", spec, 1000, 562);
    REQUIRE(tiles.size() == 3);
    CHECK(tiles[0].x == 0);
    CHECK(tiles[0].x + tiles[0].width == tiles[1].x);
    CHECK(tiles[1].x + tiles[1].width == tiles[2].x);
    CHECK(tiles[2].x + tiles[2].width == 1000);
}

TEST_CASE("degenerate inputs give no tiles rather than bad ones", "[layout]") {
    CHECK(computeTiles({}, "", defaultGridSpec(), 1280, 720).empty());
    CHECK(computeTiles(people(3), "", defaultGridSpec(), 0, 720).empty());
    CHECK(computeTiles(people(3), "", defaultGridSpec(), 1, 1).empty());
    // An unknown aspect (0) fills the cell instead of dividing by zero.
    const auto tiles = computeTiles({camera(1, 0, 0)}, "", defaultGridSpec(), 1280, 720);
    REQUIRE(tiles.size() == 1);
    CHECK(tiles[0].width == 1272);
    CHECK(tiles[0].height == 712);
    // Huge padding shrinks to leave a picture.
    auto padded = defaultGridSpec();
    padded.padding = 256;
    const auto small = computeTiles(people(25), "", padded, 320, 180);
    CHECK(small.size() == 25);
    CHECK(violations(padded, people(25), "", 320, 180, true).empty());
}

TEST_CASE("the built-in grid spec is a full-canvas grid", "[layout]") {
    const auto spec = defaultGridSpec();
    CHECK(spec.name == "grid");
    CHECK(spec.slots.empty());
    REQUIRE(spec.rest);
    CHECK(spec.rest->x == 0);
    CHECK(spec.rest->y == 0);
    CHECK(spec.rest->w == 1);
    CHECK(spec.rest->h == 1);
    CHECK(spec.keepAspect);
}

// ---- Borders -----------------------------------------------------------------

namespace {

long long area(const std::vector<Rect>& rects) {
    long long sum = 0;
    for (const Rect& r : rects) sum += static_cast<long long>(r.width) * r.height;
    return sum;
}

bool inside(int x, int y, const Tile& t) { return x >= t.x && x < t.x + t.width && y >= t.y && y < t.y + t.height; }

} // namespace

TEST_CASE("a border sits inside the padding and hugs the picture", "[layout]") {
    const auto spec =
        parseLayoutSpec(R"({"name": "b", "padding": 4, "border": 6, "keepAspect": false, "slots": [{"w": 0.5}]})");
    const auto tiles = computeTiles(people(1), "", spec, 1280, 720);
    REQUIRE(tiles.size() == 1);
    const Tile& t = tiles[0];
    CHECK(t.border == 6);
    // Cell 640x720; 4 px padding, then 6 px border, then the picture.
    CHECK(t.x == 10);
    CHECK(t.y == 10);
    CHECK(t.width == 620);
    CHECK(t.height == 700);

    const auto borders = visibleBorders(tiles);
    CHECK(area(borders) == 632LL * 712 - 620LL * 700); // the whole frame, nothing else
    for (const Rect& r : borders) {
        CAPTURE(r.x, r.y, r.width, r.height);
        CHECK(r.x % 2 == 0);
        CHECK(r.y % 2 == 0);
        CHECK(r.width % 2 == 0);
        CHECK(r.height % 2 == 0);
        CHECK(r.x >= 4);
        CHECK(r.y >= 4);
        CHECK(r.x + r.width <= 636);
        CHECK(r.y + r.height <= 716);
    }
}

TEST_CASE("with keepAspect the border frames the letterboxed picture", "[layout]") {
    const auto spec = parseLayoutSpec(R"({"name": "b", "border": 4, "slots": [{}]})");
    const auto tiles = computeTiles({camera(1, 4, 3)}, "", spec, 1280, 720);
    REQUIRE(tiles.size() == 1);
    const Tile& t = tiles[0];
    CHECK(t.height == 712);
    CHECK(t.width == 950); // 712 * 4 / 3, even
    CHECK(t.x == 164);     // 4 + (1272 - 950) / 2, on an even pixel
    CHECK(t.y == 4);
    const auto borders = visibleBorders(tiles);
    CHECK(area(borders) == (950LL + 8) * (712 + 8) - 950LL * 712);
}

TEST_CASE("a border never covers a tile drawn above it", "[layout]") {
    // pip: the inset (z 1) lies over the speaker's frame.
    const auto spec = parseLayoutSpec(R"({"name": "pip", "border": 8, "keepAspect": false, "slots": [
        {"source": "speaker"},
        {"x": 0.7, "y": 0.7, "w": 0.3, "h": 0.3, "z": 1, "source": "next"}]})");
    const auto tiles = computeTiles(people(2), "p1", spec, 1280, 720);
    REQUIRE(tiles.size() == 2);
    const auto borders = visibleBorders(tiles);
    const Tile& inset = tiles[1];
    const Rect insetOuter{inset.x - 8, inset.y - 8, inset.width + 16, inset.height + 16};
    for (const Rect& r : borders) {
        // No border rectangle reaches into the inset's picture...
        for (int y = r.y; y < r.y + r.height; y += 2)
            for (int x = r.x; x < r.x + r.width; x += 2) REQUIRE_FALSE(inside(x, y, inset));
    }
    // ...the inset's own frame is whole, and the speaker's frame lost exactly
    // the part under the inset's frame: x 1272..1280 for y 504..712, and
    // y 712..720 for x 896..1280.
    CHECK(insetOuter.x == 896);
    CHECK(insetOuter.y == 504);
    const long long speakerFrame = 1280LL * 720 - 1264LL * 704;
    const long long insetFrame = static_cast<long long>(insetOuter.width) * insetOuter.height -
                                 static_cast<long long>(inset.width) * inset.height;
    CHECK(area(borders) == speakerFrame + insetFrame - (8LL * 208 + 384LL * 8));
}

TEST_CASE("no border, no border rectangles", "[layout]") {
    const auto tiles = computeTiles(people(4), "", defaultGridSpec(), 1280, 720);
    CHECK(visibleBorders(tiles).empty());
}

namespace {

// Cameras p1..pn whose participants took their turns as the active speaker
// in the order of `trace` (participant numbers), as the room feeds them.
std::vector<Source> afterTrace(int n, const std::vector<int>& trace, tessera::layout::SpeakerRecency& recency) {
    for (int p : trace) recency.spoke("p" + std::to_string(p));
    auto sources = people(n);
    for (Source& s : sources) s.lastSpoke = recency.lastSpoke(s.participantId);
    return sources;
}

std::vector<std::string> shownIds(const std::vector<Tile>& tiles) {
    std::vector<std::string> ids;
    for (const Tile& t : tiles) ids.push_back(t.sourceId);
    return ids;
}

const char* kRecentTwo = R"({"name": "r", "slots": [{"h": 0.5, "source": "speaker"}],
    "rest": {"y": 0.5, "h": 0.5, "max": 2, "order": "recent"}})";

} // namespace

TEST_CASE("a recent rest grid shows the latest speakers first, join order for the others", "[layout]") {
    const auto spec = parseLayoutSpec(kRecentTwo);
    tessera::layout::SpeakerRecency recency;
    // Nobody spoke: the first camera takes the speaker slot, the next two the grid.
    CHECK(shownIds(computeTiles(afterTrace(6, {}, recency), "", spec, 1280, 720)) ==
          std::vector<std::string>{"cam-p1", "cam-p2", "cam-p3"});
    // p6 speaks: large; the grid keeps join order among those who never spoke.
    CHECK(shownIds(computeTiles(afterTrace(6, {6}, recency), "p6", spec, 1280, 720)) ==
          std::vector<std::string>{"cam-p6", "cam-p1", "cam-p2"});
    // Then p4, then p5: p5 large, the grid the latest before it (p4, then p6).
    CHECK(shownIds(computeTiles(afterTrace(6, {4, 5}, recency), "p5", spec, 1280, 720)) ==
          std::vector<std::string>{"cam-p5", "cam-p4", "cam-p6"});
    // Nobody speaks now: the slot falls back to the first camera; the grid
    // still shows the two latest speakers.
    CHECK(shownIds(computeTiles(afterTrace(6, {}, recency), "", spec, 1280, 720)) ==
          std::vector<std::string>{"cam-p1", "cam-p5", "cam-p4"});
    // p6 again: it moves to the front of the order.
    CHECK(shownIds(computeTiles(afterTrace(6, {6}, recency), "p6", spec, 1280, 720)) ==
          std::vector<std::string>{"cam-p6", "cam-p5", "cam-p4"});
    // A leaver is forgotten: a new p5 (same id reused) starts as never having spoken.
    recency.forget("p5");
    CHECK(shownIds(computeTiles(afterTrace(6, {}, recency), "p6", spec, 1280, 720)) ==
          std::vector<std::string>{"cam-p6", "cam-p4", "cam-p1"});
    CHECK(recency.lastSpoke("p5") == 0);
    recency.spoke(""); // nobody: changes nothing
    CHECK(recency.lastSpoke("p6") > recency.lastSpoke("p4"));
}

TEST_CASE("the rest grid's max caps the tiles; its cells are sized for the shown ones", "[layout]") {
    auto spec = parseLayoutSpec(R"({"name": "g", "rest": {"max": 4}})");
    CHECK(spec.restOrder == LayoutSpec::RestOrder::Join);
    const auto tiles = computeTiles(people(9), "p9", spec, 1280, 720);
    // The first four in join order (the order is "join"), in a 2x2 grid.
    CHECK(shownIds(tiles) == std::vector<std::string>{"cam-p1", "cam-p2", "cam-p3", "cam-p4"});
    for (const Tile& t : tiles) CHECK(t.width == 640);
    // Fewer sources than the cap: everyone.
    CHECK(computeTiles(people(3), "", spec, 1280, 720).size() == 3);
    // A recent grid without a cap shows everyone, latest speaker first.
    spec = parseLayoutSpec(R"({"name": "g", "rest": {"order": "recent"}})");
    auto sources = people(3);
    sources[2].lastSpoke = 7;
    sources[1].lastSpoke = 3;
    CHECK(shownIds(computeTiles(sources, "", spec, 1280, 720)) ==
          std::vector<std::string>{"cam-p3", "cam-p2", "cam-p1"});
}

TEST_CASE("on screen: who has a tile, who sends video the layout leaves out", "[layout]") {
    const auto spec = parseLayoutSpec(kRecentTwo);
    tessera::layout::SpeakerRecency recency;
    auto sources = afterTrace(5, {5}, recency);
    // p5 speaks (large), p1 and p2 (join order) below; p3 and p4 are left out.
    auto tiles = computeTiles(sources, "p5", spec, 1280, 720);
    REQUIRE(shownIds(tiles) == std::vector<std::string>{"cam-p5", "cam-p1", "cam-p2"});
    auto seen = onScreen(sources, tiles);
    CHECK(seen.shown == std::vector<std::string>{"p1", "p2", "p5"});
    CHECK(seen.hidden == std::vector<std::string>{"p3", "p4"});
    // p3's screen share has a tile, its camera none: p3 is shown, and listed once.
    sources.push_back(screen(3));
    tiles.push_back(Tile{"screen-p3"});
    seen = onScreen(sources, tiles);
    CHECK(seen.shown == std::vector<std::string>{"p1", "p2", "p3", "p5"});
    CHECK(seen.hidden == std::vector<std::string>{"p4"});
    // Nothing shown: everyone who sends is hidden; nothing sent: empty lists.
    CHECK(onScreen(sources, {}).shown.empty());
    CHECK(onScreen(sources, {}).hidden == std::vector<std::string>{"p1", "p2", "p3", "p4", "p5"});
    CHECK(onScreen({}, {}) == tessera::protocol::OnScreen{});
}
