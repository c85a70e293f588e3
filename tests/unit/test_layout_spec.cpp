// protocol::parseLayoutSpec: the shipped layout files and the validation messages.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tessera/layout/geometry.h"
#include "tessera/protocol/error.h"
#include "tessera/protocol/layout_spec.h"
#include "tessera/room/layout_library.h"

using tessera::Error;
using tessera::ErrorCode;
using tessera::protocol::FracRect;
using tessera::protocol::LayoutSpec;
using tessera::protocol::parseLayoutSpec;
using tessera::protocol::Slot;

namespace {

// The test working directory is the source root; the fallback lets the binary
// run from anywhere.
std::filesystem::path layoutsDir() {
    std::filesystem::path dir = "data/layouts";
    if (!std::filesystem::is_directory(dir)) dir = std::filesystem::path(TESSERA_SOURCE_DIR) / "data/layouts";
    return dir;
}

std::vector<std::filesystem::path> layoutFiles() {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(layoutsDir()))
        if (entry.is_regular_file() && entry.path().extension() == ".json") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    return files;
}

std::string readFile(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// The message of the BadRequest that `json` must raise.
std::string rejection(const std::string& json) {
    try {
        parseLayoutSpec(json);
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::BadRequest);
        return e.what();
    }
    FAIL("accepted: " << json);
    return {};
}

bool sameRect(const FracRect& a, const FracRect& b) { return a.x == b.x && a.y == b.y && a.w == b.w && a.h == b.h; }

} // namespace

TEST_CASE("every shipped layout file loads through the server's loader", "[layout]") {
    // Globbed, so a file added later is covered without touching this test.
    const auto files = layoutFiles();
    REQUIRE(files.size() >= 4);
    for (const auto& file : files) {
        CAPTURE(file.string());
        LayoutSpec spec;
        REQUIRE_NOTHROW(spec = tessera::room::loadLayoutFile(file));
        CHECK(spec == parseLayoutSpec(readFile(file)));
        CHECK(spec.name == file.stem().string());
        CHECK((!spec.slots.empty() || spec.rest.has_value()));
    }
}

TEST_CASE("grid.json matches the built-in grid spec", "[layout]") {
    const LayoutSpec file = parseLayoutSpec(readFile(layoutsDir() / "grid.json"));
    const LayoutSpec builtIn = tessera::layout::defaultGridSpec();
    CHECK(file.name == builtIn.name);
    CHECK(file.canvasWidth == builtIn.canvasWidth);
    CHECK(file.canvasHeight == builtIn.canvasHeight);
    CHECK(file.background == builtIn.background);
    CHECK(file.slots.size() == builtIn.slots.size());
    REQUIRE(file.rest.has_value());
    REQUIRE(builtIn.rest.has_value());
    CHECK(sameRect(*file.rest, *builtIn.rest));
    CHECK(file.restZ == builtIn.restZ);
    CHECK(file.keepAspect == builtIn.keepAspect);
    CHECK(file.padding == builtIn.padding);
    CHECK(file.labels == builtIn.labels);
}

TEST_CASE("the shipped layouts say what their README says", "[layout]") {
    const auto speaker = parseLayoutSpec(readFile(layoutsDir() / "speaker.json"));
    REQUIRE(speaker.slots.size() == 1);
    CHECK(speaker.slots[0].source == Slot::Source::Speaker);
    CHECK(speaker.slots[0].rect.h == Approx(0.8));
    REQUIRE(speaker.rest);
    CHECK(speaker.rest->y == Approx(0.8));

    const auto presentation = parseLayoutSpec(readFile(layoutsDir() / "presentation.json"));
    REQUIRE(presentation.slots.size() == 1);
    CHECK(presentation.slots[0].source == Slot::Source::ScreenShare);
    CHECK(presentation.slots[0].rect.w == Approx(0.8));
    REQUIRE(presentation.rest);
    CHECK(presentation.rest->x == Approx(0.8));

    const auto pip = parseLayoutSpec(readFile(layoutsDir() / "pip.json"));
    REQUIRE(pip.slots.size() == 2);
    CHECK(pip.slots[0].source == Slot::Source::Speaker);
    CHECK(pip.slots[1].source == Slot::Source::Next);
    CHECK(pip.slots[1].z > pip.slots[0].z);
    CHECK(pip.slots[1].rect.x + pip.slots[1].rect.w < 1); // an inset, off the edges
    CHECK(pip.slots[1].rect.y + pip.slots[1].rect.h < 1);
    CHECK(pip.padding > 0);
    CHECK_FALSE(pip.rest);

    // The large-call layout: the speaker and the 8 most recent others.
    const auto recent = parseLayoutSpec(readFile(layoutsDir() / "recent.json"));
    REQUIRE(recent.slots.size() == 1);
    CHECK(recent.slots[0].source == Slot::Source::Speaker);
    REQUIRE(recent.rest);
    CHECK(recent.restMax == 8);
    CHECK(recent.restOrder == LayoutSpec::RestOrder::Recent);
}

TEST_CASE("a full spec parses into every field", "[layout]") {
    const auto spec = parseLayoutSpec(R"({
        "name": "My_layout-2",
        "description": "all keys",
        "canvas": {"width": 1920, "height": 1080},
        "background": "#1A2b3C",
        "slots": [
            {"x": 0.1, "y": 0.2, "w": 0.3, "h": 0.4, "z": -2, "source": "participant", "participant": "Zoë"},
            {"source": "screenshare", "z": 3},
            {"x": 0.5, "w": 0.5, "source": "speaker"},
            {}
        ],
        "rest": {"x": 0.7, "y": 0.3, "w": 0.3, "h": 0.7, "z": 5},
        "keepAspect": false,
        "padding": 2.5,
        "labels": true
    })");
    CHECK(spec.name == "My_layout-2");
    CHECK(spec.canvasWidth == 1920);
    CHECK(spec.canvasHeight == 1080);
    CHECK(spec.background == "#1A2b3C");
    REQUIRE(spec.slots.size() == 4);
    CHECK(sameRect(spec.slots[0].rect, {0.1, 0.2, 0.3, 0.4}));
    CHECK(spec.slots[0].z == -2);
    CHECK(spec.slots[0].source == Slot::Source::Participant);
    CHECK(spec.slots[0].participant == "Zoë");
    CHECK(sameRect(spec.slots[1].rect, {0, 0, 1, 1})); // defaults: the whole canvas
    CHECK(spec.slots[1].z == 3);
    CHECK(spec.slots[1].source == Slot::Source::ScreenShare);
    CHECK(sameRect(spec.slots[2].rect, {0.5, 0, 0.5, 1}));
    CHECK(spec.slots[2].source == Slot::Source::Speaker);
    CHECK(spec.slots[3].source == Slot::Source::Next); // default source
    CHECK(spec.slots[3].z == 0);
    REQUIRE(spec.rest);
    CHECK(sameRect(*spec.rest, {0.7, 0.3, 0.3, 0.7}));
    CHECK(spec.restZ == 5);
    CHECK_FALSE(spec.keepAspect);
    CHECK(spec.padding == 2.5);
    CHECK(spec.labels);
}

TEST_CASE("a minimal spec gets the documented defaults", "[layout]") {
    const auto spec = parseLayoutSpec(R"({"name": "g", "rest": {}})");
    CHECK(spec.canvasWidth == 0);
    CHECK(spec.canvasHeight == 0);
    CHECK(spec.background == "#000000");
    CHECK(spec.slots.empty());
    REQUIRE(spec.rest);
    CHECK(sameRect(*spec.rest, {0, 0, 1, 1}));
    CHECK(spec.restZ == 0);
    CHECK(spec.keepAspect);
    CHECK(spec.padding == 0);
    CHECK(spec.border == 0);
    CHECK(spec.borderColor == "#ffffff");
    CHECK_FALSE(spec.labels);
}

TEST_CASE("border, border colour and labels parse", "[layout]") {
    const auto spec =
        parseLayoutSpec(R"({"name": "b", "rest": {}, "border": 6, "borderColor": "#FF8000", "labels": true})");
    CHECK(spec.border == 6);
    CHECK(spec.borderColor == "#FF8000");
    CHECK(spec.labels);
    CHECK_NOTHROW(parseLayoutSpec(R"({"name": "b", "rest": {}, "border": 0})"));
    CHECK_NOTHROW(parseLayoutSpec(R"({"name": "b", "rest": {}, "border": 64})"));
}

TEST_CASE("fractions that add up to 1 in decimal are accepted", "[layout]") {
    // 0.7 + 0.3 is 1.0000000000000002 or so in binary.
    CHECK_NOTHROW(parseLayoutSpec(R"({"name": "a", "slots": [{"x": 0.7, "w": 0.3, "y": 0.9, "h": 0.1}]})"));
    CHECK_NOTHROW(parseLayoutSpec(R"({"name": "a", "rest": {"x": 0.1, "w": 0.9, "y": 0.2, "h": 0.8}})"));
    CHECK_NOTHROW(parseLayoutSpec(R"({"name": "a", "canvas": {"width": 16, "height": 7680}, "rest": {}})"));
}

TEST_CASE("bad specs are rejected naming the field and the reason", "[layout]") {
    struct Case {
        const char* json;
        const char* message; // the message must contain this
    };
    const Case cases[] = {
        // Not a spec at all.
        {"", "invalid JSON"},
        {"{\"name\": \"a\",", "invalid JSON"},
        {"[]", "must be a JSON object"},
        {"\"grid\"", "must be a JSON object"},
        // Borders and labels.
        {R"({"name": "a", "rest": {}, "border": -2})", "border: must be between 0 and 64 (pixels)"},
        {R"({"name": "a", "rest": {}, "border": 65})", "border: must be between 0 and 64 (pixels)"},
        {R"({"name": "a", "rest": {}, "border": "4px"})", "border: must be a number"},
        {R"({"name": "a", "rest": {}, "borderColor": "white"})", "borderColor: must be #rrggbb"},
        {R"({"name": "a", "rest": {}, "borderColor": "#12345"})", "borderColor: must be #rrggbb"},
        {R"({"name": "a", "rest": {}, "borderColor": 16777215})", "borderColor: must be a string"},
        {R"({"name": "a", "rest": {}, "labels": "yes"})", "labels: must be true or false"},
        {R"({"name": "a", "rest": {}, "cornerRadius": 8})", "unknown key 'cornerRadius'"},
        // The rest grid's cap and order.
        {R"({"name": "a", "rest": {"max": 0}})", "rest.max: must be an integer between 1 and 1000"},
        {R"({"name": "a", "rest": {"max": 1001}})", "rest.max: must be an integer between 1 and 1000"},
        {R"({"name": "a", "rest": {"max": 2.5}})", "rest.max: must be an integer"},
        {R"({"name": "a", "rest": {"order": "loudest"}})", "rest.order: must be \"join\" or \"recent\""},
        {R"({"name": "a", "rest": {"order": 1}})", "rest.order: must be a string"},
        // Unknown keys, at every level.
        {R"({"name": "a", "rest": {}, "colour": "#000000"})", "unknown key 'colour'"},
        {R"({"name": "a", "slots": [{"width": 1}]})", "slots[0]: unknown key 'width'"},
        {R"({"name": "a", "rest": {"x": 0, "heigth": 1}})", "rest: unknown key 'heigth'"},
        {R"({"name": "a", "rest": {}, "canvas": {"width": 640, "height": 360, "fps": 30}})",
         "canvas: unknown key 'fps'"},
        // Name.
        {R"({"rest": {}})", "name: required"},
        {R"({"name": 3, "rest": {}})", "name: must be a string"},
        {R"({"name": "", "rest": {}})", "name: must be 1-64 of [A-Za-z0-9_-]"},
        {R"({"name": "has space", "rest": {}})", "name: must be 1-64 of [A-Za-z0-9_-]"},
        {R"({"name": "../etc", "rest": {}})", "name: must be 1-64 of [A-Za-z0-9_-]"},
        {R"({"name": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "rest": {}})",
         "name: must be 1-64 of [A-Za-z0-9_-]"},
        // Nothing to show.
        {R"({"name": "a"})", "slots: required"},
        {R"({"name": "a", "slots": []})", "slots: required"},
        // Wrong types.
        {R"({"name": "a", "slots": {}})", "slots: must be an array"},
        {R"({"name": "a", "slots": [1]})", "slots[0]: must be an object"},
        {R"({"name": "a", "rest": []})", "rest: must be an object"},
        {R"({"name": "a", "rest": {}, "canvas": [1280, 720]})", "canvas: must be an object"},
        {R"({"name": "a", "slots": [{"w": "0.5"}]})", "slots[0].w: must be a number"},
        {R"({"name": "a", "slots": [{"x": true}]})", "slots[0].x: must be a number"},
        {R"({"name": "a", "slots": [{"x": null}]})", "slots[0].x: must be a number"},
        {R"({"name": "a", "slots": [{"z": 1.5}]})", "slots[0].z: must be an integer"},
        {R"({"name": "a", "slots": [{"z": 5000}]})", "slots[0].z: must be an integer between"},
        {R"({"name": "a", "rest": {"z": "top"}})", "rest.z: must be an integer"},
        {R"({"name": "a", "slots": [{"source": 1}]})", "slots[0].source: must be a string"},
        {R"({"name": "a", "slots": [{"source": "Speaker"}]})", "slots[0].source: must be one of"},
        {R"({"name": "a", "rest": {}, "keepAspect": "yes"})", "keepAspect: must be true or false"},
        {R"({"name": "a", "rest": {}, "labels": 1})", "labels: must be true or false"},
        {R"({"name": "a", "rest": {}, "padding": "4px"})", "padding: must be a number"},
        {R"({"name": "a", "rest": {}, "description": 1})", "description: must be a string"},
        // Sizes and positions.
        {R"({"name": "a", "slots": [{"x": 0, "y": 0, "w": -0.5, "h": 1}]})", "slots[0].w: must be > 0 and <= 1"},
        {R"({"name": "a", "slots": [{"w": 1}, {"w": 0}]})", "slots[1].w: must be > 0 and <= 1"},
        {R"({"name": "a", "slots": [{"h": 1.5}]})", "slots[0].h: must be > 0 and <= 1"},
        {R"({"name": "a", "slots": [{"x": -0.1, "w": 0.5}]})", "slots[0].x: must be >= 0 and < 1"},
        {R"({"name": "a", "slots": [{"y": 1, "h": 0.5}]})", "slots[0].y: must be >= 0 and < 1"},
        {R"({"name": "a", "rest": {"h": -1}})", "rest.h: must be > 0 and <= 1"},
        {R"({"name": "a", "slots": [{"x": 0.5, "w": 0.6}]})", "slots[0]: extends past the canvas (x + w > 1)"},
        {R"({"name": "a", "slots": [{"x": 0.5}]})", "slots[0]: extends past the canvas (x + w > 1)"},
        {R"({"name": "a", "slots": [{"y": 0.8, "h": 0.3}]})", "slots[0]: extends past the canvas (y + h > 1)"},
        {R"({"name": "a", "rest": {"x": 0.8, "w": 0.3}})", "rest: extends past the canvas (x + w > 1)"},
        {R"({"name": "a", "rest": {}, "padding": -1})", "padding: must be between 0 and 256"},
        {R"({"name": "a", "rest": {}, "padding": 1000})", "padding: must be between 0 and 256"},
        // Canvas.
        {R"({"name": "a", "rest": {}, "canvas": {"width": 1280}})", "canvas.height: required"},
        {R"({"name": "a", "rest": {}, "canvas": {"width": 1281, "height": 720}})",
         "canvas.width: must be an even integer between 16 and 7680"},
        {R"({"name": "a", "rest": {}, "canvas": {"width": 1280, "height": 8}})",
         "canvas.height: must be an even integer between 16 and 7680"},
        {R"({"name": "a", "rest": {}, "canvas": {"width": 7682, "height": 720}})",
         "canvas.width: must be an even integer between 16 and 7680"},
        {R"({"name": "a", "rest": {}, "canvas": {"width": -1280, "height": 720}})",
         "canvas.width: must be an even integer between 16 and 7680"},
        {R"({"name": "a", "rest": {}, "canvas": {"width": 18446744073709551615, "height": 720}})",
         "canvas.width: must be an even integer between 16 and 7680"},
        {R"({"name": "a", "rest": {}, "canvas": {"width": 1280.5, "height": 720}})",
         "canvas.width: must be an integer"},
        // Colour.
        {R"({"name": "a", "rest": {}, "background": "black"})", "background: must be #rrggbb"},
        {R"({"name": "a", "rest": {}, "background": "#12345"})", "background: must be #rrggbb"},
        {R"({"name": "a", "rest": {}, "background": "#12345g"})", "background: must be #rrggbb"},
        {R"({"name": "a", "rest": {}, "background": 0})", "background: must be a string"},
        // Participant slots.
        {R"({"name": "a", "slots": [{"w": 0.5}, {"x": 0.5, "w": 0.5}, {"source": "participant"}]})",
         "slots[2].participant: required when source is \"participant\""},
        {R"({"name": "a", "slots": [{"source": "participant", "participant": ""}]})",
         "slots[0].participant: must be a display name of 1-64 characters"},
        {R"({"name": "a", "slots": [{"source": "participant", "participant": 7}]})",
         "slots[0].participant: must be a string"},
        {R"({"name": "a", "slots": [{"source": "speaker", "participant": "Bob"}]})",
         "slots[0].participant: only allowed when source is \"participant\""},
    };
    for (const auto& c : cases) {
        CAPTURE(c.json);
        CHECK_THAT(rejection(c.json), Catch::Contains(c.message));
    }
}

TEST_CASE("an error message quoting client text stays valid UTF-8 and bounded", "[layout]") {
    std::string key;
    for (int i = 0; i < 100; ++i) key += "é"; // two bytes each: a cut at an odd byte would split one
    const std::string message = rejection(R"({"name": "a", "rest": {}, ")" + key + R"(": 1})");
    CHECK(message.size() < 400);
    for (std::size_t i = 0; i + 1 < message.size(); ++i) {
        const auto lead = static_cast<unsigned char>(message[i]);
        if (lead == 0xC3) // "é" is C3 A9: a lead byte must be followed by its continuation
            CHECK(static_cast<unsigned char>(message[i + 1]) == 0xA9);
    }
    CHECK(static_cast<unsigned char>(message.back()) != 0xC3);

    // A parse error quoting invalid UTF-8 input is reduced to ASCII.
    const std::string invalid = rejection("{\"name\": \xff\xfe}");
    for (char c : invalid) CHECK((c >= 0x20 && c < 0x7F));
}

TEST_CASE("the canvas area is bounded by limits.maxCanvasPixels", "[layout][limits]") {
    using tessera::protocol::checkCanvasArea;
    const LayoutSpec exact =
        parseLayoutSpec(R"({"name": "uhd", "canvas": {"width": 3840, "height": 2160}, "rest": {}})");
    CHECK_NOTHROW(checkCanvasArea(exact, 3840 * 2160));
    CHECK_NOTHROW(checkCanvasArea(exact, 0)); // no bound
    const LayoutSpec wider =
        parseLayoutSpec(R"({"name": "wide", "canvas": {"width": 3842, "height": 2160}, "rest": {}})");
    try {
        checkCanvasArea(wider, 3840 * 2160);
        FAIL("accepted");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::BadRequest);
        CHECK(std::string(e.what()) == "canvas: 3842x2160 is 8298720 pixels, over limits.maxCanvasPixels (8294400)");
    }
    // No canvas of its own: the configured composite, bounded by the config.
    CHECK_NOTHROW(checkCanvasArea(parseLayoutSpec(R"({"name": "plain", "rest": {}})"), 1));
    // The largest canvas a spec may name fits 64-bit arithmetic.
    const LayoutSpec largest =
        parseLayoutSpec(R"({"name": "max", "canvas": {"width": 7680, "height": 7680}, "rest": {}})");
    CHECK_THROWS_AS(checkCanvasArea(largest, 7680 * 7680 - 1), Error);
}
