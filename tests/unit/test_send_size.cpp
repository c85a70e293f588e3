// policy::sendRequest on the tiles the shipped layouts give (grid, speaker,
// pip), and SendSizeThrottle on a stepped clock.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "tessera/layout/geometry.h"
#include "tessera/policy/send_size.h"
#include "tessera/protocol/layout_spec.h"
#include "tessera/room/layout_library.h"

using tessera::layout::computeTiles;
using tessera::layout::Source;
using tessera::policy::kMinSendBitrate;
using tessera::policy::SendRequest;
using tessera::policy::sendRequest;
using tessera::policy::SendSizeInput;
using tessera::policy::SendSizeThrottle;
using tessera::protocol::LayoutSpec;

namespace {

// Through the server's own loader, as a room gets them.
LayoutSpec shipped(const std::string& name) {
    const auto spec = tessera::room::LayoutLibrary(TESSERA_SOURCE_DIR "/data/layouts").find(name);
    REQUIRE(spec);
    return *spec;
}

// The default top tier on the default canvas.
constexpr SendSizeInput kHd{1280, 720, 1280, 720, 1'500'000};

// What the room asks each of n cameras (ids p1..pn) for, as the room
// pipeline does it: each source's tile, or not shown.
std::map<std::string, SendRequest> requests(const LayoutSpec& spec, int n, const std::string& speaker,
                                            const SendSizeInput& input = kHd) {
    std::vector<Source> sources;
    for (int i = 1; i <= n; ++i) {
        const std::string id = "p" + std::to_string(i);
        sources.push_back({id + ":camera", id, "P" + std::to_string(i), false, 16, 9});
    }
    const auto tiles = computeTiles(sources, speaker, spec, input.canvasWidth, input.canvasHeight);
    std::map<std::string, SendRequest> out;
    for (const Source& s : sources) {
        const auto tile = std::find_if(tiles.begin(), tiles.end(), [&](const auto& t) { return t.sourceId == s.id; });
        out[s.participantId] = tile == tiles.end() ? sendRequest(0, 0, input)
                                                   : sendRequest(static_cast<unsigned>(tile->width),
                                                                 static_cast<unsigned>(tile->height), input);
    }
    return out;
}

std::int64_t share(unsigned w, unsigned h, const SendSizeInput& input = kHd) {
    return std::llround(static_cast<double>(input.outputBitrate) * w * h /
                        (static_cast<double>(input.canvasWidth) * input.canvasHeight));
}

} // namespace

TEST_CASE("send size: in a 3x3 grid every sender is asked for its tile and its share of the bit rate", "[sendsize]") {
    // Cells of 426x240, 4 px padding each side, 16:9 inside: 412x232.
    for (const auto& [id, request] : requests(shipped("grid"), 9, "")) {
        INFO(id);
        CHECK(request.active);
        CHECK(request.width == 412);
        CHECK(request.height == 232);
        CHECK(request.maxBitrate == share(412, 232)); // ~156 kbit/s, a ninth of 1.5 Mbit/s less the padding
    }
}

TEST_CASE("send size: alone in a grid a sender may send the whole top tier", "[sendsize]") {
    const auto alone = requests(shipped("grid"), 1, "");
    CHECK(alone.at("p1") == SendRequest{true, 1266, 712, share(1266, 712)});
}

TEST_CASE("send size: the speaker layout asks the speaker for the large tile, the rest for the strip", "[sendsize]") {
    const auto sizes = requests(shipped("speaker"), 3, "p2");
    const SendRequest& speaker = sizes.at("p2");
    CHECK(speaker.active);
    CHECK(speaker.height == 568); // 80 % of 720 less padding
    CHECK(speaker.width == 1010); // 16:9 of that
    for (const char* other : {"p1", "p3"}) {
        INFO(other);
        const SendRequest& strip = sizes.at(other);
        CHECK(strip.active);
        CHECK(strip.height == 136); // 20 % of 720 less padding
        CHECK(strip.width == 242);
        CHECK(strip.maxBitrate == kMinSendBitrate); // its share (~53 kbit/s) is under the floor
    }
}

TEST_CASE("send size: pip shows two; the third sender is asked to send nothing", "[sendsize]") {
    const auto sizes = requests(shipped("pip"), 3, "p1");
    CHECK(sizes.at("p1").active);
    CHECK(sizes.at("p1").width == 1266);
    CHECK(sizes.at("p2").active);
    CHECK(sizes.at("p2").width < 320);
    CHECK(sizes.at("p3") == SendRequest{false, 0, 0, 0});
}

TEST_CASE("send size: a canvas larger than the top tier scales requests down to what receivers see", "[sendsize]") {
    const SendSizeInput big{1920, 1080, 1280, 720, 1'500'000};
    CHECK(sendRequest(960, 540, big) == SendRequest{true, 640, 360, 375'000});
    // Never up: a canvas smaller than the output asks for the tile itself.
    const SendSizeInput small{640, 360, 1280, 720, 1'500'000};
    CHECK(sendRequest(320, 180, small) == SendRequest{true, 320, 180, 375'000});
}

TEST_CASE("send size: rounding, floor and bounds", "[sendsize]") {
    // Odd sizes (only from a scaled canvas) round down to even pixels.
    const SendSizeInput twoThirds{1920, 1080, 1280, 720, 1'500'000};
    const SendRequest r = sendRequest(100, 58, twoThirds);
    CHECK(r.width == 66);  // 66.7
    CHECK(r.height == 38); // 38.7
    CHECK(sendRequest(2, 2, twoThirds).width == 2);
    CHECK(sendRequest(2, 2, twoThirds).height == 2);
    // The floor, but never more than the top tier.
    CHECK(sendRequest(64, 36, kHd).maxBitrate == kMinSendBitrate);
    CHECK(sendRequest(64, 36, {1280, 720, 1280, 720, 50'000}).maxBitrate == 50'000);
    CHECK(sendRequest(1280, 720, kHd).maxBitrate == 1'500'000);
    // Not shown, or no canvas.
    CHECK(sendRequest(0, 0, kHd) == SendRequest{false, 0, 0, 0});
    CHECK_FALSE(sendRequest(100, 100, {0, 0, 1280, 720, 1'500'000}).active);
}

TEST_CASE("send size throttle: first request at once, a burst coalesced, at most one per interval", "[sendsize]") {
    SendSizeThrottle throttle(500);
    CHECK_FALSE(throttle.nextDueMs());
    const SendRequest big{true, 640, 360, 600'000}, mid{true, 412, 232, 155'000}, small{true, 240, 136, 100'000};
    throttle.want("a", big);
    CHECK(throttle.nextDueMs() <= 1000);
    auto due = throttle.due(1000);
    REQUIRE(due.size() == 1);
    CHECK(due[0] == std::pair<std::string, SendRequest>{"a", big});
    CHECK_FALSE(throttle.nextDueMs());

    // Joins in a burst: nothing more until the interval ends, then only the latest.
    throttle.want("a", mid);
    CHECK(throttle.nextDueMs() == 1500);
    CHECK(throttle.due(1100).empty());
    throttle.want("a", small);
    CHECK(throttle.due(1499).empty());
    due = throttle.due(1500);
    REQUIRE(due.size() == 1);
    CHECK(due[0].second == small);

    // A change after a quiet interval goes at once.
    throttle.want("a", big);
    CHECK(throttle.due(3000).size() == 1);
    // A change and back again within the interval sends nothing.
    throttle.want("a", small);
    throttle.want("a", big);
    CHECK_FALSE(throttle.nextDueMs());
    CHECK(throttle.due(4000).empty());
    // Asking again for what was sent sends nothing.
    throttle.want("a", big);
    CHECK(throttle.due(5000).empty());
}

TEST_CASE("send size throttle: sources are independent, a forgotten one starts afresh", "[sendsize]") {
    SendSizeThrottle throttle(500);
    const SendRequest shown{true, 412, 232, 155'000}, hidden{false, 0, 0, 0};
    throttle.want("a", shown);
    throttle.want("b", shown);
    CHECK(throttle.due(0).size() == 2);
    throttle.want("a", hidden);
    CHECK(throttle.nextDueMs() == 500);
    throttle.forget("b");
    throttle.want("b", shown); // a new source (the share came back): due at once
    auto due = throttle.due(100);
    REQUIRE(due.size() == 1);
    CHECK(due[0].first == "b");
    due = throttle.due(500);
    REQUIRE(due.size() == 1);
    CHECK(due[0] == std::pair<std::string, SendRequest>{"a", hidden});
}
