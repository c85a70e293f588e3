// Bandwidth estimation against a real bottleneck (issue 12): the server and
// three participants here, a fourth in a network namespace of its own behind
// a veth pair whose server end is shaped with `tbf rate 300kbit burst 16kbit
// latency 200ms` (TESTING.md, "A real bottleneck"). The senders send
// camera-like files (a moving ball under noise), which fill their bit rates.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <deque>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "files.h"
#include "harness.h"

using namespace tessera::testing;

namespace {

constexpr const char* kServerAddress = "10.99.0.1";
constexpr const char* kClientAddress = "10.99.0.2";
constexpr const char* kLimit = "tbf rate 300kbit burst 16kbit latency 200ms";

// Runs a shell command of the test's own (ip, tc); fails the test if it fails.
void sh(const std::string& command) {
    INFO(command);
    REQUIRE(std::system(command.c_str()) == 0);
}

// The veth pair: `va` here (the server's end, shaped), `vb` for the limited
// client, moved into its namespace once that exists. Removed at the end (the
// pair goes with either end).
struct Link {
    Link() {
        std::system("ip link del va 2>/dev/null");
        sh("ip link add va type veth peer name vb");
        sh(std::string("ip addr add ") + kServerAddress + "/24 dev va && ip link set va up");
    }
    ~Link() { std::system("ip link del va 2>/dev/null"); }
    void limit(const std::string& spec = kLimit) { sh("tc qdisc add dev va root " + spec); }
    // Lifted as a link recovers: its rate goes far above anything sent and
    // what it queued drains. (Deleting the qdisc would drop that queue at
    // once: after a trial of the lowest tier on the 64 kbit/s link a few
    // hundred ms of audio, which the receiver's jitter buffer turned into
    // an 883 ms gap; no link recovers like that.)
    void lift() { sh("tc qdisc change dev va root tbf rate 1gbit burst 1mbit latency 200ms"); }
    // Moves `vb` into the network namespace of process `pid` once it has one.
    void moveTo(pid_t pid) {
        const auto ns = [](pid_t p) {
            char target[256] = {};
            const std::string path = "/proc/" + std::to_string(p) + "/ns/net";
            const ssize_t n = readlink(path.c_str(), target, sizeof target - 1);
            return std::string(target, n > 0 ? static_cast<size_t>(n) : 0);
        };
        const auto deadline = Clock::now() + kDeadline;
        while (ns(pid) == ns(getpid()) && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
        REQUIRE(ns(pid) != ns(getpid()));
        sh("ip link set vb netns " + std::to_string(pid));
    }
};

// A wrapper that gives the client a network namespace of its own, waits (at
// most 30 s) for `vb` to arrive there and addresses it.
std::vector<std::string> ownNamespace() {
    return {"/usr/bin/unshare",
            "--net",
            "sh",
            "-c",
            std::string("i=0; until ip link show vb >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 600 ] && exit 97; "
                        "sleep 0.05; done; ip link set lo up && ip addr add ") +
                kClientAddress + "/24 dev vb && ip link set vb up && exec \"$@\"",
            "sh"};
}

// Camera-like media: a moving ball under noise, VP8 640x360@30 at 1 Mbit/s
// and Opus, `seconds` long (the client loops it).
std::string cameraFile(const std::string& dir, int index) {
    const std::string path = dir + "/camera-" + std::to_string(index) + ".mkv";
    const std::string colour = std::to_string(0xff000000u | (0x00ff0000u >> (8 * index)));
    writeSendFile(path, "make-camera",
                  {"compositor", "name=c", "background=black", "sink_1::alpha=0.15", "!",
                   "video/x-raw,format=I420,width=640,height=360,framerate=30/1"},
                  {"end-usage=cbr", "target-bitrate=1000000", "keyframe-max-dist=30", "lag-in-frames=0"}, 250,
                  {"wave=sine", "freq=" + std::to_string(300 + 100 * index), "volume=0.1"},
                  {"videotestsrc", "num-buffers=150", "pattern=ball", "background-color=" + colour, "!",
                   "video/x-raw,width=640,height=360,framerate=30/1", "!", "c.sink_0", "videotestsrc",
                   "num-buffers=150", "pattern=snow", "!", "video/x-raw,width=640,height=360,framerate=30/1", "!",
                   "c.sink_1"});
    return path;
}

// Each participant's tier and estimate from GET /api/rooms/{room}, by name.
struct Seen {
    std::string tier;
    std::optional<std::uint64_t> estimate;
    bool connected = false; // before, the tier is only the one it will start on
};
std::map<std::string, Seen> participants(Server& server, const std::string& room) {
    std::map<std::string, Seen> out;
    const auto r = httpRequest("GET", server.http() + "/api/rooms/" + room);
    if (r.status != 200) {
        out["(status)"] = Seen{std::to_string(r.status), std::nullopt};
        return out;
    }
    // Held: a range-for over a member of a temporary reads freed memory (C++20).
    const Json details = Json::parse(r.body);
    for (const auto& p : details.at("participants")) {
        Seen seen{p.value("tier", ""), std::nullopt, p.value("connected", false)};
        if (p.contains("estimatedBps")) seen.estimate = p.at("estimatedBps").get<std::uint64_t>();
        out[p.value("name", "")] = seen;
    }
    return out;
}

double secondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The server's debug lines on peer `id`'s tier and the feedback windows
// that chose it (its last `lines`), for a failure's message.
std::string tierLog(Server& server, const std::string& id, std::size_t lines = 60) {
    std::istringstream log(readText(server.process().logPath()));
    std::deque<std::string> kept;
    for (std::string line; std::getline(log, line);) {
        if (line.find("peer " + id) == std::string::npos || line.find("tier") == std::string::npos) continue;
        kept.push_back(line.substr(0, 260));
        if (kept.size() > lines) kept.pop_front();
    }
    std::string text;
    for (const auto& line : kept) text += line + "\n";
    return text;
}

} // namespace

TEST_CASE("a receiver behind a 300 kbit/s bottleneck gets the low tier and a steady picture; the others stay high",
          "[bwe][bottleneck]") {
    const std::string dir = freshDir("bottleneck");
    Link link;
    // A small canvas keeps three tier encoders real-time on a loaded 2-core
    // machine; the bit rates are the defaults (high 1.5 Mbit/s, low 150 kbit/s).
    Server server({"--host", "0.0.0.0", "--ice-address", kServerAddress, "--video-width", "640", "--video-height",
                   "360", "--video-tile-width", "320", "--video-tile-height", "180",
                   // Debug: every feedback window, probe and tier decision (tierLog).
                   "--log-level", "debug"});
    const std::string port = server.http().substr(server.http().rfind(':') + 1);
    const std::string room = "bottleneck";

    std::vector<std::unique_ptr<Client>> open;
    const std::vector<std::pair<std::string, std::string>> senders = {
        {"red", "0xff0000"}, {"green", "0x00ff00"}, {"blue", "0x0000ff"}};
    for (std::size_t i = 0; i < senders.size(); ++i) {
        const std::string file = cameraFile(dir, static_cast<int>(i));
        open.push_back(std::make_unique<Client>(
            server, ClientOptions{room, senders[i].first, senders[i].second, 440, {}, false, {"--send-file", file}}));
        open.back()->waitEvent("joined");
    }
    // Each starts on the lowest tier and is on the high one once its first probe passed.
    for (auto& c : open)
        CHECK(c->waitReport([](const Json& j) { return j.value("width", 0) == 640; }).value("width", 0) == 640);

    // The limited receiver, behind the shaped link from its first packet.
    link.limit();
    Client limited(
        server, ClientOptions{room, "limited", "0xffffff", 0, {}, true, {}},
        ClientPlace{ownNamespace(), std::string("ws://") + kServerAddress + ":" + port + "/ws", kClientAddress});
    link.moveTo(limited.process().pid());
    const std::string id = limited.waitEvent("joined").value("id", "");
    const auto joined = Clock::now();

    // Everyone else must stay high the whole time, and the limited receiver
    // must never be tried on a higher tier while limited (it starts on the
    // lowest, and the probes of its link before an up-step fail): every poll
    // checks it.
    std::vector<std::string> unlimitedLeft, limitedLeft;
    bool limitOn = true;
    auto poll = [&] {
        auto seen = participants(server, room);
        for (const auto& [name, colour] : senders)
            if (seen.count(name) && seen[name].tier != "high")
                unlimitedLeft.push_back(name + " on " + seen[name].tier + " at " +
                                        std::to_string(secondsSince(joined)));
        if (limitOn && seen.count("limited") && seen["limited"].connected && seen["limited"].tier != "low")
            limitedLeft.push_back(seen["limited"].tier + " at " + std::to_string(secondsSince(joined)));
        return seen;
    };

    // Low within 5 s of joining, with an estimate that says why.
    Seen seen;
    std::map<std::string, int> polled; // tiers seen, or HTTP statuses
    while (secondsSince(joined) < 30) {
        auto all = poll();
        seen = all["limited"];
        ++polled[all.count("(status)") ? "status " + all["(status)"].tier : "tier " + seen.tier];
        if (seen.tier == "low" && seen.estimate) break;
        std::this_thread::sleep_for(100ms);
    }
    const double toLow = secondsSince(joined);
    INFO("limited: tier " << seen.tier << " after " << toLow << " s");
    for (const auto& [what, n] : polled) UNSCOPED_INFO(what << ": " << n << " polls");
    INFO("room: " << httpRequest("GET", server.http() + "/api/rooms/" + room).body);
    INFO("limited client: " << brief(limited.report()));
    REQUIRE(seen.tier == "low");
    CHECK(toLow <= 5.0);
    REQUIRE(seen.estimate);
    CHECK(*seen.estimate < 400'000);

    // Then a picture, and no gap over 1 s in it for the next 10 s (300 frames).
    auto report = limited.waitReport([](const Json& j) { return j.value("width", 0) == 160; });
    REQUIRE(report.value("width", 0) == 160);
    limited.call("reset-gap");
    const std::int64_t frames = limited.report().value("frames", 0);
    report = limited.waitReport([&](const Json& j) {
        poll();
        return j.value("frames", 0) >= frames + 300;
    });
    INFO("limited client's report: " << brief(report));
    // Its last ~20 s: feedback windows come about 7 a second here.
    INFO("the server's tier decisions on it:\n" << tierLog(server, id, 150));
    CHECK(report.value("frames", 0) >= frames + 300);
    CHECK(report.at("frameStalls").value("maxGapMs", 1e9) <= 1000);
    CHECK(poll()["limited"].tier == "low");

    std::string tried;
    for (const auto& l : limitedLeft) tried += l + "; ";
    INFO("the limited receiver seen off the low tier: " << tried);
    CHECK(limitedLeft.empty());

    // The limit goes: back on the high tier within 20 s, at full size.
    link.lift();
    limitOn = false;
    const auto lifted = Clock::now();
    while (secondsSince(lifted) < 60) {
        seen = poll()["limited"];
        if (seen.tier == "high") break;
        std::this_thread::sleep_for(100ms);
    }
    const double toHigh = secondsSince(lifted);
    INFO("limited: tier " << seen.tier << " " << toHigh << " s after the limit went");
    REQUIRE(seen.tier == "high");
    CHECK(toHigh <= 20.0);
    report = limited.waitReport([](const Json& j) { return j.value("width", 0) == 640; });
    CHECK(report.value("width", 0) == 640);

    std::string left;
    for (const auto& l : unlimitedLeft) left += l + "; ";
    INFO("unlimited receivers seen off the high tier: " << left);
    CHECK(unlimitedLeft.empty());
    for (auto& c : open) CHECK(c->report().value("width", 0) == 640);

    limited.leave();
    for (auto& c : open) c->leave();
}

// The audio-only tier on a link too slow for any video: 64 kbit/s. The
// room's Opus runs at 24 kbit/s (with RTP, SRTP, UDP and IP about 47 kbit/s
// on the wire): the default 64 kbit/s Opus alone would not pass the link.
// Once the limit goes, video comes back by a trial of the lowest tier (the
// receiver, app-limited to its audio, shows the estimator nothing more),
// once a probe of the link passed: within the probes' longest back-off
// (8 s), the probe's verdict (a few seconds at most) and the trial (3 s).
TEST_CASE("a receiver behind a 64 kbit/s bottleneck gets audio only with no gap over 500 ms, and video back after",
          "[bwe][bottleneck][audio-only]") {
    constexpr double kMaxAudioGapMs = 500;
    const std::string dir = freshDir("bottleneck-audio");
    Link link;
    Server server({"--host", "0.0.0.0", "--ice-address", kServerAddress, "--video-width", "640", "--video-height",
                   "360", "--video-tile-width", "320", "--video-tile-height", "180", "--audio-bitrate", "24000",
                   // Debug: every feedback window and what the estimator made of it (tierLog).
                   "--log-level", "debug"});
    const std::string port = server.http().substr(server.http().rfind(':') + 1);
    const std::string room = "narrow";

    std::vector<std::unique_ptr<Client>> open;
    for (int i = 0; i < 2; ++i) {
        const std::string file = cameraFile(dir, i);
        open.push_back(std::make_unique<Client>(server, ClientOptions{room,
                                                                      i == 0 ? "red" : "green",
                                                                      i == 0 ? "0xff0000" : "0x00ff00",
                                                                      440,
                                                                      {},
                                                                      false,
                                                                      {"--send-file", file}}));
        open.back()->waitEvent("joined");
    }
    // Each starts on the lowest tier and is on the high one once its first probe passed.
    for (auto& c : open)
        CHECK(c->waitReport([](const Json& j) { return j.value("width", 0) == 640; }).value("width", 0) == 640);

    link.limit("tbf rate 64kbit burst 16kbit latency 200ms");
    // It hears the senders' files: 300 and 400 Hz.
    Client limited(
        server, ClientOptions{room, "limited", "0xffffff", 0, {300, 400}, true, {}},
        ClientPlace{ownNamespace(), std::string("ws://") + kServerAddress + ":" + port + "/ws", kClientAddress});
    link.moveTo(limited.process().pid());
    const std::string id = limited.waitEvent("joined").value("id", "");
    const auto joined = Clock::now();

    // Audio only within 10 s, told so, because of its link.
    const Json told = limited.waitEvent("audio-only", 30s);
    const double toAudio = secondsSince(joined);
    INFO("the server's tier decisions on it:\n" << tierLog(server, id));
    INFO("room: " << httpRequest("GET", server.http() + "/api/rooms/" + room).body);
    CHECK(told.value("enabled", false));
    CHECK(told.value("reason", "") == "link");
    CHECK(toAudio <= 10.0);
    Seen seen = participants(server, room)["limited"];
    CHECK(seen.tier == "audio");
    REQUIRE(seen.estimate);
    CHECK(*seen.estimate < 150'000);
    CHECK(server.metric("tessera_room_audio_only_receivers{room=\"" + room + "\"}") == 1);

    // Then 20 s of audio with no gap over 500 ms: the link carries it once
    // the video is gone, and each probe of the link since (4 s after going
    // audio only, then 8 s, then every 8 s) queues only 200 ms of padding at
    // the low tier's rate and fails, so no trial of the tier fills tbf's
    // queue (a trial, should a probe get no verdict, gives up at its first
    // congested feedback window, confirmed or not).
    REQUIRE(limited.call("reset-gap").value("ok", false));
    const double heard = limited.report().value("audioSeconds", 0.0);
    std::map<std::string, int> tiers; // tiers seen meanwhile, polled
    Json report = limited.waitReport(
        [&](const Json& j) {
            ++tiers[participants(server, room)["limited"].tier];
            return j.value("audioSeconds", 0.0) >= heard + 20;
        },
        90s);
    INFO("limited client's report: " << brief(report));
    for (const auto& [tier, n] : tiers) UNSCOPED_INFO("tier " << tier << ": " << n << " polls");
    INFO("the server's tier decisions on it meanwhile:\n" << tierLog(server, id));
    CHECK(report.value("audioSeconds", 0.0) >= heard + 20);
    CHECK(report.at("rtp").at("audio").value("maxGapMs", 1e9) <= kMaxAudioGapMs);
    CHECK(std::max(tone(report, 300), tone(report, 400)) > -40);
    CHECK(tiers["audio"] > 0);

    // The limit goes: video again within 20 s, on a key frame (decoded
    // frames), the tier and the client's indication say so, and the audio
    // had no gap over 500 ms meanwhile either.
    REQUIRE(limited.call("reset-gap").value("ok", false));
    link.lift();
    const auto lifted = Clock::now();
    const std::int64_t frames = limited.report().value("frames", 0);
    report = limited.waitReport([&](const Json& j) { return j.value("frames", 0) >= frames + 30; }, 90s);
    const double toVideo = secondsSince(lifted);
    INFO("the server's tier decisions on it since:\n" << tierLog(server, id));
    INFO("video " << toVideo << " s after the limit went; report " << brief(report));
    CHECK(report.value("frames", 0) >= frames + 30);
    CHECK(toVideo <= 20.0);
    CHECK(participants(server, room)["limited"].tier != "audio");
    CHECK(report.at("rtp").at("audio").value("maxGapMs", 1e9) <= kMaxAudioGapMs);

    // And it stays: the trial passes (5 s more of frames with no gap over
    // 1 s, no step back to audio only), and only then is the client told.
    REQUIRE(limited.call("reset-gap").value("ok", false));
    report = limited.waitReport([&](const Json& j) { return j.value("frames", 0) >= frames + 180; }, 60s);
    INFO("then: " << brief(report));
    CHECK(report.value("frames", 0) >= frames + 180);
    CHECK(report.at("frameStalls").value("maxGapMs", 1e9) <= 1000);
    CHECK(participants(server, room)["limited"].tier != "audio");
    CHECK(report.value("audioOnly", "x").empty());
    CHECK(report.at("rtp").at("audio").value("maxGapMs", 1e9) <= kMaxAudioGapMs);

    limited.leave();
    for (auto& c : open) c->leave();
}
