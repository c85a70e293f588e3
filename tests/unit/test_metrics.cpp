// GET /metrics formatting: the Prometheus text exposition format.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "tessera/server/metrics.h"

using tessera::room::MetricsSnapshot;
using tessera::server::formatPrometheus;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

MetricsSnapshot twoRooms() {
    MetricsSnapshot snapshot;
    MetricsSnapshot::Room a{"alpha", {}, {}, false, {}};
    a.stats.outputFps = 29.5;
    a.stats.framesOut = 1200;
    a.stats.framesDropped = 3;
    a.stats.keyFramesForced = 5;
    a.stats.elements = 42;
    a.stats.tiers = {{"high", 2, 900, "vp8"}, {"low", 0, 12, "vp8"}};
    MetricsSnapshot::Participant p1{"p1", {}};
    p1.stats.bitrateIn = 800'000;
    p1.stats.bitrateOut = 1'200'000;
    p1.stats.packetsLost = 7;
    p1.stats.estimatedBps = 255'000;
    a.participants = {p1, MetricsSnapshot::Participant{"p2", {}}};
    a.recording = true;
    a.viewers = 10;
    snapshot.rooms = {a, MetricsSnapshot::Room{"beta", {}, {MetricsSnapshot::Participant{"p3", {}}}, false, {}}};
    snapshot.recordingErrors = 2;
    snapshot.roomPipelines = 3; // one closed room not yet torn down
    return snapshot;
}

} // namespace

TEST_CASE("metrics: totals, per room and per participant samples", "[metrics]") {
    const std::string text = formatPrometheus(twoRooms(), {});
    CHECK(contains(text, "# TYPE tessera_rooms gauge\ntessera_rooms 2\n"));
    CHECK(contains(text, "# TYPE tessera_room_pipelines gauge\ntessera_room_pipelines 3\n"));
    CHECK(contains(text, "# TYPE tessera_participants gauge\ntessera_participants 3\n"));
    CHECK(contains(text, "# TYPE tessera_viewers gauge\ntessera_viewers 10\n"));
    CHECK(contains(text, "tessera_room_viewers{room=\"alpha\"} 10\n"));
    CHECK(contains(text, "tessera_room_viewers{room=\"beta\"} 0\n"));
    CHECK(contains(text, "tessera_room_output_fps{room=\"alpha\"} 29.5\n"));
    CHECK(contains(text, "tessera_room_output_fps{room=\"beta\"} 0\n"));
    CHECK(contains(text, "tessera_room_frames_total{room=\"alpha\"} 1200\n"));
    CHECK(contains(text, "tessera_room_frames_dropped_total{room=\"alpha\"} 3\n"));
    CHECK(contains(text, "tessera_room_keyframes_forced_total{room=\"alpha\"} 5\n"));
    CHECK(contains(text, "tessera_room_pipeline_elements{room=\"alpha\"} 42\n"));
    CHECK(contains(text, "tessera_room_participants{room=\"alpha\"} 2\n"));
    CHECK(contains(text, "tessera_participant_bitrate_in_bps{room=\"alpha\",participant=\"p1\"} 800000\n"));
    CHECK(contains(text, "tessera_participant_bitrate_out_bps{room=\"alpha\",participant=\"p1\"} 1200000\n"));
    CHECK(contains(text, "tessera_participant_packets_lost_total{room=\"alpha\",participant=\"p1\"} 7\n"));
    CHECK(contains(text, "tessera_participant_packets_lost_total{room=\"beta\",participant=\"p3\"} 0\n"));
    // The estimate has a sample only where there is one.
    CHECK(contains(text, "tessera_participant_estimated_bps{room=\"alpha\",participant=\"p1\"} 255000\n"));
    CHECK_FALSE(contains(text, "tessera_participant_estimated_bps{room=\"alpha\",participant=\"p2\"}"));
    CHECK(contains(text, "tessera_recording{room=\"alpha\"} 1\n"));
    CHECK(contains(text, "tessera_recording{room=\"beta\"} 0\n"));
    CHECK(contains(text, "# TYPE tessera_recording_errors_total counter\ntessera_recording_errors_total 2\n"));
    CHECK(contains(text, "tessera_tier_receivers{room=\"alpha\",tier=\"high\"} 2\n"));
    CHECK(contains(text, "tessera_tier_receivers{room=\"alpha\",tier=\"low\"} 0\n"));
    CHECK(contains(text, "tessera_tier_frames_total{room=\"alpha\",tier=\"high\"} 900\n"));
    CHECK(contains(
        text, "# TYPE tessera_tier_frames_total counter\ntessera_tier_frames_total{room=\"alpha\",tier=\"high\"} 900\n"
              "tessera_tier_frames_total{room=\"alpha\",tier=\"low\"} 12\n#"));
    CHECK(contains(text, "# TYPE tessera_room_frames_total counter\n"));
    CHECK(contains(text, "# TYPE tessera_participant_packets_lost_total counter\n"));
}

TEST_CASE("metrics: encoders per (tier, codec), summed per tier, counted per codec", "[metrics][codecs]") {
    MetricsSnapshot snapshot;
    MetricsSnapshot::Room room{"mixed", {}, {}, false, {}};
    room.stats.tiers = {{"high", 2, 900, "vp8"}, {"high", 1, 300, "h264"}, {"low", 0, 12, "vp8"}};
    room.stats.codecs = {{"vp8", 1}, {"h264", 1}, {"vp9", 0}};
    snapshot.rooms = {room};
    const std::string text = formatPrometheus(snapshot, {});
    CHECK(contains(text, "tessera_tier_receivers{room=\"mixed\",tier=\"high\"} 3\n"));
    CHECK(contains(text, "tessera_tier_receivers{room=\"mixed\",tier=\"low\"} 0\n"));
    CHECK(contains(text, "tessera_tier_frames_total{room=\"mixed\",tier=\"high\"} 1200\n"));
    CHECK(contains(text, "# TYPE tessera_encoders gauge\ntessera_encoders{room=\"mixed\",codec=\"vp8\"} 1\n"
                         "tessera_encoders{room=\"mixed\",codec=\"h264\"} 1\n"
                         "tessera_encoders{room=\"mixed\",codec=\"vp9\"} 0\n#"));
    CHECK(contains(text, "tessera_encoder_receivers{room=\"mixed\",tier=\"high\",codec=\"h264\"} 1\n"));
    CHECK(contains(text, "tessera_encoder_frames_total{room=\"mixed\",tier=\"high\",codec=\"vp8\"} 900\n"));
    CHECK(contains(text, "tessera_encoder_frames_total{room=\"mixed\",tier=\"low\",codec=\"vp8\"} 12\n"));
    CHECK_FALSE(contains(text, "tessera_encoder_frames_total{room=\"mixed\",tier=\"low\",codec=\"h264\"}"));
}

TEST_CASE("metrics: every family has one HELP and TYPE, its samples together", "[metrics]") {
    const std::string text = formatPrometheus(twoRooms(), {});
    std::string previousFamily;
    std::vector<std::string> seen;
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = text.find('\n', start);
        REQUIRE(end != std::string::npos); // every line ends in a newline
        const std::string line = text.substr(start, end - start);
        start = end + 1;
        if (line.rfind("# HELP ", 0) == 0) continue;
        if (line.rfind("# TYPE ", 0) == 0) {
            const std::string family = line.substr(7, line.find(' ', 7) - 7);
            CHECK(std::find(seen.begin(), seen.end(), family) == seen.end());
            seen.push_back(family);
            previousFamily = family;
            continue;
        }
        // A sample belongs to the family declared last.
        const std::string name = line.substr(0, line.find_first_of("{ "));
        CHECK(name == previousFamily);
    }
    // With tessera_room_opus_encoders, tessera_room_compositing, tessera_participant_estimated_bps,
    // tessera_viewers, tessera_room_viewers, tessera_live_targets, tessera_live_failures_total,
    // tessera_room_audio_only_receivers, tessera_room_video_decoders, tessera_main_loop_delay_seconds
    // and tessera_main_loop_stalls_total.
    CHECK(seen.size() == 30);
}

TEST_CASE("metrics: label values are escaped", "[metrics]") {
    MetricsSnapshot snapshot;
    snapshot.rooms = {MetricsSnapshot::Room{"a\"b\\c\nd", {}, {MetricsSnapshot::Participant{"x\"y", {}}}, false, {}}};
    const std::string text = formatPrometheus(snapshot, {});
    CHECK(contains(text, "tessera_room_frames_total{room=\"a\\\"b\\\\c\\nd\"} 0\n"));
    CHECK(contains(text, "participant=\"x\\\"y\"}"));
}

TEST_CASE("metrics: the main loop's longest hold and its stalls", "[metrics]") {
    const std::string text = formatPrometheus({}, {1.5, 2});
    CHECK(contains(text, "# TYPE tessera_main_loop_delay_seconds gauge\n"));
    CHECK(contains(text, "tessera_main_loop_delay_seconds 1.5\n"));
    CHECK(contains(text, "# TYPE tessera_main_loop_stalls_total counter\n"));
    CHECK(contains(text, "tessera_main_loop_stalls_total 2\n"));
}

TEST_CASE("metrics: no rooms", "[metrics]") {
    const std::string text = formatPrometheus({}, {});
    CHECK(contains(text, "tessera_rooms 0\n"));
    CHECK(contains(text, "tessera_participants 0\n"));
    CHECK_FALSE(contains(text, "{room="));
}
