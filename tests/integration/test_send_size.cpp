// Senders send what the layout needs (issue 12): in a 3x3 grid each sender
// is asked (`send-size`) for at most its tile and the server's decoder for it
// runs at that size; a sender that ignores the request is still scaled into
// its tile; in pip the senders it does not show are asked to send nothing.
#include <catch2/catch.hpp>

#include "harness.h"

using namespace tessera::testing;

namespace {

// A small composite (as test_layouts.cpp): nine clients that encode and
// decode are the costliest thing in the suite, and the machine is shared.
const std::vector<std::string> kServerArgs = {"--video-width",      "640", "--video-height",      "360",
                                              "--video-tile-width", "320", "--video-tile-height", "180"};
// Each client sends 320x180 (its own default is 640x360).
const std::vector<std::string> kSenderArgs = {"--width", "320", "--height", "180", "--fps", "15"};

// The 3x3 grid on 640x360, written out from data/layouts/grid.json and
// data/layouts/README.md rather than computed with the server's geometry
// code: cells of 212x120 (even pixels), 4 px padding each side leaves
// 204x112, and 16:9 inside that is 200x112.
constexpr unsigned kTileW = 200, kTileH = 112;
// Cell centres of the 3x3 grid (the 640x360 canvas holds 3 x 212 = 636
// pixels, centred: 2 px margins), as fractions of the canvas.
std::pair<double, double> cellCentre(std::size_t k) {
    return {(2 + 212 * (k % 3) + 106) / 640.0, (120 * (k / 3) + 60) / 360.0};
}

const std::vector<Participant> kNine = {
    {"red", "0xff0000", {255, 0, 0}, 440},       {"green", "0x00ff00", {0, 255, 0}, 470},
    {"blue", "0x0000ff", {0, 0, 255}, 500},      {"yellow", "0xffff00", {255, 255, 0}, 530},
    {"magenta", "0xff00ff", {255, 0, 255}, 560}, {"cyan", "0x00ffff", {0, 255, 255}, 590},
    {"white", "0xffffff", {255, 255, 255}, 620}, {"orange", "0xff8000", {255, 128, 0}, 650},
    {"grey", "0x808080", {128, 128, 128}, 680},
};
// The one that keeps sending full size, as a hostile or old client would.
constexpr std::size_t kStubborn = 4;

Json participantEntry(Server& server, const std::string& room, const std::string& id) {
    const Json detail = Json::parse(httpRequest("GET", server.http() + "/api/rooms/" + room).body);
    for (const Json& p : detail.value("participants", Json::array()))
        if (p.value("id", "") == id) return p;
    return Json::object();
}

} // namespace

TEST_CASE("in a 3x3 grid each sender is asked for its tile and decoded at that size; pip stops the hidden",
          "[sendsize][layout]") {
    Server server(kServerArgs);
    const std::string room = "nine";
    std::vector<std::unique_ptr<Client>> clients;
    std::vector<std::string> ids;
    for (std::size_t k = 0; k < kNine.size(); ++k) {
        ClientOptions options{room, kNine[k].name, kNine[k].color, kNine[k].tone, {}, false, kSenderArgs};
        if (k == kStubborn) options.extra.push_back("--ignore-send-size");
        clients.push_back(std::make_unique<Client>(server, options));
        ids.push_back(clients.back()->waitEvent("joined").value("id", ""));
    }

    // Every sender is asked for its tile, and (all but the stubborn one) is
    // decoded at exactly the size it was asked.
    Json last;
    const auto settled = [&] {
        for (std::size_t k = 0; k < ids.size(); ++k) {
            last = participantEntry(server, room, ids[k]);
            const Json asked = last.value("sendSize", Json::object());
            const Json decoded = last.value("decodedSize", Json::object());
            if (!asked.value("active", false) || asked.value("width", 0u) != kTileW ||
                asked.value("height", 0u) != kTileH)
                return false;
            const unsigned w = decoded.value("width", 0u), h = decoded.value("height", 0u);
            if (k == kStubborn ? (w != 320 || h != 180) : (w != kTileW || h != kTileH)) return false;
        }
        return true;
    };
    REQUIRE(waitUntil(settled, 120s));
    INFO("last participant entry: " << last.dump());
    // What the clients heard matches what the API shows: the latest camera request.
    for (std::size_t k = 0; k < ids.size(); ++k) {
        const Json asked = participantEntry(server, room, ids[k]).value("sendSize", Json::object());
        CHECK(asked.value("maxBitrate", 0) >= 100000);
        CHECK(asked.value("maxBitrate", 0) <= 1500000);
    }

    // The grid shows everyone where the layout puts them, the stubborn
    // sender's full-size picture scaled into its tile like the others.
    auto& viewer = *clients[0];
    const auto gridShown = [&](const Json& r) {
        for (std::size_t k = 0; k < kNine.size(); ++k) {
            const auto [x, y] = cellCentre(k);
            if (!near(thumbColor(r, x, y), kNine[k].rgb)) return false;
        }
        return true;
    };
    const Json report = viewer.waitReport(gridShown, 90s);
    for (std::size_t k = 0; k < kNine.size(); ++k) {
        const auto [x, y] = cellCentre(k);
        INFO(kNine[k].name);
        CHECK(near(thumbColor(report, x, y), kNine[k].rgb));
    }

    // Pip shows the speaker and the next one: the other seven are asked to
    // send no video at all.
    REQUIRE(httpRequest("PUT", server.http() + "/api/rooms/" + room + "/layout", R"({"layout": "pip"})").status == 200);
    const auto hidden = [&] {
        int inactive = 0;
        for (const std::string& id : ids) {
            const Json asked = participantEntry(server, room, id).value("sendSize", Json::object());
            if (asked.contains("active") && !asked.value("active", true)) ++inactive;
        }
        return inactive == 7;
    };
    CHECK(waitUntil(hidden, 60s));
    // A hidden client hears it as a send-size event with active false.
    for (std::size_t k = 0; k < ids.size(); ++k) {
        const Json asked = participantEntry(server, room, ids[k]).value("sendSize", Json::object());
        if (asked.value("active", true)) continue;
        INFO(kNine[k].name << " is not shown");
        Json event;
        do event = clients[k]->waitEvent("send-size", 30s);
        while (event.value("active", true));
        CHECK(event.value("source", "") == "camera");
        break;
    }
    for (auto& c : clients) c->leave();
}
