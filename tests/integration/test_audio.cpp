// K+1 audio (issue 11): the full mix encoded once for everyone, a private
// mix-minus only for the current speakers; and no video work in a room
// where nobody sends or receives video.
#include <catch2/catch.hpp>

#include <functional>
#include <thread>

#include "harness.h"

using namespace tessera::testing;

namespace {

constexpr double kVolume = 0.2; // three at once stay below full scale in the mix (no clipping)

bool waitFor(const std::function<bool()>& done) {
    const auto deadline = Clock::now() + kDeadline;
    while (!done()) {
        if (Clock::now() > deadline) return false;
        std::this_thread::sleep_for(200ms);
    }
    return true;
}

} // namespace

TEST_CASE("six talk in turns: nobody ever hears itself, everyone hears every speaker, K+1 Opus encodes at most",
          "[audio][kaudio]") {
    Server server;
    // The others' tones must not read as hearing oneself. Opus's coding
    // noise puts up to -42 dBFS (29 dB under the tones) at another tone in
    // the same CELT band (1280 Hz next to 1370) or at a third-order
    // intermodulation product (400 and 520 Hz -> 640). And a tone switched
    // on at once splatters over the spectrum of the 100 ms block it starts
    // in, falling off as 1 / the distance: 180 Hz from it (280 and 460 Hz),
    // 28-35 dB under the tone. So each tone has a CELT band of its own, 50 Hz
    // from its edges, is 80 Hz from any 2a, 3a, 2a - b or a + b - c, and
    // 400 Hz from the next.
    const std::vector<int> tones = {280, 1050, 2110, 2510, 3020, 3670};
    const std::vector<std::string> names = {"a", "b", "c", "d", "e", "f"};
    std::vector<std::unique_ptr<Client>> clients;
    for (std::size_t i = 0; i < names.size(); ++i) {
        // Silent until told: six at once would be more speakers than slots.
        clients.push_back(std::make_unique<Client>(
            server,
            ClientOptions{"k1", names[i], "0xff0000", tones[i], tones, false, {"--audio-only", "--volume", "0"}}));
        clients.back()->waitEvent("joined");
    }
    for (auto& c : clients) c->waitEvent("first-audio");
    const std::string room = "{room=\"k1\"}";
    // Nobody speaks yet: everyone hears the full mix, the only encode fed.
    CHECK(server.metric("tessera_room_opus_encoders" + room) == 1);
    // Nobody sends or receives video: no compositor, not one composite frame.
    CHECK(server.metric("tessera_room_compositing" + room) == 0);
    CHECK(server.metric("tessera_room_frames_total" + room) == 0);
    for (auto& c : clients) CHECK(c->call("reset-peaks").value("ok", false));

    std::vector<bool> talking(names.size(), false);
    auto talk = [&](std::size_t i, bool on) {
        talking[i] = on;
        INFO(names[i] << (on ? " starts" : " stops"));
        REQUIRE(clients[i]->call("tone " + std::to_string(on ? kVolume : 0.0)).value("ok", false));
    };
    // Every listener hears exactly the current speakers (its own voice
    // aside): their tones in its last second, the others' gone.
    auto everyoneHearsTheSpeakers = [&] {
        for (std::size_t l = 0; l < clients.size(); ++l) {
            INFO("listener " << names[l] << ", log " << clients[l]->process().logPath());
            Json last;
            const bool heard = waitFor([&] {
                last = clients[l]->report();
                for (std::size_t s = 0; s < clients.size(); ++s) {
                    if (s == l) continue;
                    const double level = tone(last, tones[s]);
                    if (talking[s] ? level < -30 : level > -45) return false;
                }
                return true;
            });
            INFO("report: " << brief(last));
            CHECK(heard);
        }
    };
    // The speaker set keeps a quiet owner's slot for 1.5 s
    // (policy::SpeakerSetParams::releaseMs): a new speaker gets a slot from
    // one who has been quiet that long. A duration the policy defines, plus
    // a margin for the last loud frame's way to the server.
    auto quietForTheReleaseTime = [] { std::this_thread::sleep_for(2500ms); };

    for (std::size_t i : {0, 1, 2}) talk(i, true);
    everyoneHearsTheSpeakers();
    // Three slots and the full mix, not one encode per receiver.
    CHECK(waitFor([&] { return server.metric("tessera_room_opus_encoders" + room) == 4; }));
    talk(0, false);
    everyoneHearsTheSpeakers();
    quietForTheReleaseTime();
    talk(3, true); // takes a's slot
    everyoneHearsTheSpeakers();
    talk(1, false);
    talk(2, false);
    everyoneHearsTheSpeakers();
    quietForTheReleaseTime();
    talk(4, true);
    talk(5, true);
    everyoneHearsTheSpeakers();
    talk(3, false);
    everyoneHearsTheSpeakers();
    quietForTheReleaseTime();
    talk(0, true); // back, in d's slot
    everyoneHearsTheSpeakers();
    CHECK(server.metric("tessera_room_opus_encoders" + room) == 4);

    // Over the whole run, switches included: each one's own tone, at its
    // loudest 100 ms, stays 30 dB under how loud the others heard it.
    std::vector<Json> reports;
    for (auto& c : clients) reports.push_back(c->report());
    for (std::size_t i = 0; i < clients.size(); ++i) {
        const std::string key = std::to_string(tones[i]);
        double heard = -200;
        for (std::size_t l = 0; l < clients.size(); ++l)
            if (l != i) heard = std::max(heard, reports[l]["tonePeaks"].value(key, -200.0));
        const double own = reports[i]["tonePeaks"].value(key, 0.0);
        INFO(names[i] << ": own tone's peak " << own << " dBFS, heard by the others at up to " << heard << "; log "
                      << clients[i]->process().logPath());
        CHECK(heard > -30);
        CHECK(own <= heard - 30);
    }
    for (auto& c : clients) c->leave();
}

TEST_CASE("an audio-only room of two speakers runs two Opus encodes and no compositor; a receiver with video starts it",
          "[audio][kaudio][novideo]") {
    Server server;
    Client a(server, ClientOptions{"av", "a", "0xff0000", 440, {660}, false, {"--audio-only"}});
    Client b(server, ClientOptions{"av", "b", "0x00ff00", 660, {440}, false, {"--audio-only"}});
    for (Client* c : {&a, &b}) {
        const Json r = c->waitReport([&](const Json& report) { return tone(report, c == &a ? 660 : 440) > -30; });
        CHECK(tone(r, c == &a ? 660 : 440) > -30);
    }
    const std::string room = "{room=\"av\"}";
    // Both speak, each in a speaker slot: nobody listens to the full mix, so
    // two Opus encodes run, not the room's four.
    CHECK(waitFor([&] { return server.metric("tessera_room_opus_encoders" + room) == 2; }));
    CHECK(server.metric("tessera_room_compositing" + room) == 0);
    CHECK(server.metric("tessera_room_frames_total" + room) == 0);
    for (const char* tier : {"high", "medium", "low"})
        CHECK(server.metric(std::string("tessera_tier_frames_total{room=\"av\",tier=\"") + tier + "\"}") == 0);

    // A participant with a camera: the compositor starts, and it sees its own
    // tile (the others have no video) and hears both.
    Client blue(server, ClientOptions{"av", "blue", "0x0000ff", 880, {440, 660}, false, {}});
    CHECK(blue.waitWidth(1280).value("width", 0) == 1280);
    const Json r = blue.waitReport([](const Json& report) {
        return near(thumbColor(report, 0.5, 0.5), {0, 0, 255}) && tone(report, 440) > -30 && tone(report, 660) > -30;
    });
    INFO("report: " << brief(r));
    CHECK(near(thumbColor(r, 0.5, 0.5), {0, 0, 255}));
    CHECK(tone(r, 440) > -30);
    CHECK(tone(r, 660) > -30);
    CHECK(server.metric("tessera_room_compositing" + room) == 1);
    CHECK(server.metric("tessera_room_frames_total" + room) > 0);
    for (Client* c : {&a, &b, &blue}) c->leave();
}
