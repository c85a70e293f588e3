#include "tessera/server/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace tessera::server {
namespace {

using Snapshot = room::MetricsSnapshot;

// Label values may hold anything a room name or id allows today, and
// whatever tomorrow's ids allow: escape as the format demands.
void appendLabelValue(std::string& out, std::string_view value) {
    for (char c : value) {
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\n': out += "\\n"; break;
        default: out += c;
        }
    }
}

void appendValue(std::string& out, double value) {
    if (std::isnan(value)) {
        out += "NaN";
    } else if (std::isinf(value)) {
        out += value > 0 ? "+Inf" : "-Inf";
    } else {
        char buffer[32];
        const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
        out.append(buffer, result.ptr);
    }
}

void appendValue(std::string& out, std::uint64_t value) { out += std::to_string(value); }

struct Label {
    std::string_view name;
    std::string_view value;
};

template <typename Value>
void appendSample(std::string& out, std::string_view metric, std::initializer_list<Label> labels, Value value) {
    out += metric;
    if (labels.size() > 0) {
        out += '{';
        bool first = true;
        for (const Label& label : labels) {
            if (!first) out += ',';
            first = false;
            out += label.name;
            out += "=\"";
            appendLabelValue(out, label.value);
            out += '"';
        }
        out += '}';
    }
    out += ' ';
    appendValue(out, value);
    out += '\n';
}

void appendHeader(std::string& out, std::string_view metric, std::string_view type, std::string_view help) {
    out += "# HELP ";
    out += metric;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += metric;
    out += ' ';
    out += type;
    out += '\n';
}

// The format wants every sample of a family together, under one header: one
// pass over the snapshot per family.
template <typename Value>
void appendRoomFamily(std::string& out, const Snapshot& snapshot, std::string_view metric, std::string_view type,
                      std::string_view help, const std::function<Value(const Snapshot::Room&)>& value) {
    appendHeader(out, metric, type, help);
    for (const Snapshot::Room& room : snapshot.rooms) appendSample(out, metric, {{"room", room.room}}, value(room));
}

void appendParticipantFamily(std::string& out, const Snapshot& snapshot, std::string_view metric, std::string_view type,
                             std::string_view help,
                             const std::function<std::optional<std::uint64_t>(const media::PeerStats&)>& value) {
    appendHeader(out, metric, type, help);
    for (const Snapshot::Room& room : snapshot.rooms) {
        for (const Snapshot::Participant& participant : room.participants) {
            // A participant without the value (no estimate yet) has no sample.
            if (const auto v = value(participant.stats))
                appendSample(out, metric, {{"room", room.room}, {"participant", participant.id}}, *v);
        }
    }
}

// Per quality tier, summed over its codecs' encoders (a tier's entries are adjacent).
void appendTierFamily(std::string& out, const Snapshot& snapshot, std::string_view metric, std::string_view type,
                      std::string_view help, const std::function<std::uint64_t(const media::TierStats&)>& value) {
    appendHeader(out, metric, type, help);
    for (const Snapshot::Room& room : snapshot.rooms) {
        const auto& tiers = room.stats.tiers;
        for (std::size_t i = 0; i < tiers.size();) {
            std::uint64_t sum = 0;
            std::size_t j = i;
            for (; j < tiers.size() && tiers[j].name == tiers[i].name; ++j) sum += value(tiers[j]);
            appendSample(out, metric, {{"room", room.room}, {"tier", tiers[i].name}}, sum);
            i = j;
        }
    }
}

// Per (tier, codec) encoder a room has built.
void appendEncoderFamily(std::string& out, const Snapshot& snapshot, std::string_view metric, std::string_view type,
                         std::string_view help, const std::function<std::uint64_t(const media::TierStats&)>& value) {
    appendHeader(out, metric, type, help);
    for (const Snapshot::Room& room : snapshot.rooms) {
        for (const media::TierStats& tier : room.stats.tiers)
            appendSample(out, metric, {{"room", room.room}, {"tier", tier.name}, {"codec", tier.codec}}, value(tier));
    }
}

} // namespace

std::string formatPrometheus(const Snapshot& snapshot, const LoopHealth& loop) {
    std::uint64_t participants = 0, viewers = 0;
    for (const Snapshot::Room& room : snapshot.rooms) {
        participants += room.participants.size();
        viewers += room.viewers;
    }

    std::string out;
    appendHeader(out, "tessera_rooms", "gauge", "Rooms with at least one participant.");
    appendSample(out, "tessera_rooms", {}, std::uint64_t{snapshot.rooms.size()});
    appendHeader(out, "tessera_room_pipelines", "gauge",
                 "Room pipelines alive: open rooms, closed rooms finishing a recording or not yet torn down.");
    appendSample(out, "tessera_room_pipelines", {}, snapshot.roomPipelines);
    appendHeader(out, "tessera_participants", "gauge", "Participants in all rooms.");
    appendSample(out, "tessera_participants", {}, participants);

    appendRoomFamily<std::uint64_t>(out, snapshot, "tessera_room_participants", "gauge", "Participants in the room.",
                                    [](const Snapshot::Room& r) { return std::uint64_t{r.participants.size()}; });
    appendHeader(out, "tessera_viewers", "gauge", "WHEP viewers in all rooms (not participants).");
    appendSample(out, "tessera_viewers", {}, viewers);
    appendRoomFamily<std::uint64_t>(out, snapshot, "tessera_room_viewers", "gauge",
                                    "WHEP viewers of the room: receive-only, no tile, no encoder of their own.",
                                    [](const Snapshot::Room& r) { return std::uint64_t{r.viewers}; });
    appendRoomFamily<double>(out, snapshot, "tessera_room_output_fps", "gauge",
                             "Composite frames per second over the last few seconds.",
                             [](const Snapshot::Room& r) { return r.stats.outputFps; });
    appendRoomFamily<std::uint64_t>(out, snapshot, "tessera_room_frames_total", "counter", "Composite frames produced.",
                                    [](const Snapshot::Room& r) { return r.stats.framesOut; });
    appendRoomFamily<std::uint64_t>(out, snapshot, "tessera_room_frames_dropped_total", "counter",
                                    "Composite frames dropped before the encoder.",
                                    [](const Snapshot::Room& r) { return r.stats.framesDropped; });
    appendRoomFamily<std::uint64_t>(out, snapshot, "tessera_room_keyframes_forced_total", "counter",
                                    "Key frames requested from the composite's encoder.",
                                    [](const Snapshot::Room& r) { return r.stats.keyFramesForced; });
    appendRoomFamily<std::uint64_t>(out, snapshot, "tessera_room_pipeline_elements", "gauge",
                                    "Elements in the room's pipeline.",
                                    [](const Snapshot::Room& r) { return std::uint64_t{r.stats.elements}; });
    appendRoomFamily<std::uint64_t>(out, snapshot, "tessera_room_opus_encoders", "gauge",
                                    "Opus encodes running in the room: the full mix while someone listens to it, one "
                                    "per speaker slot that has a speaker, and the recorder's.",
                                    [](const Snapshot::Room& r) { return std::uint64_t{r.stats.opusEncoders}; });
    appendRoomFamily<std::uint64_t>(out, snapshot, "tessera_room_video_decoders", "gauge",
                                    "Video sources (cameras, screen shares) decoded now: those the layout shows; the "
                                    "others' packets are dropped before their decoder.",
                                    [](const Snapshot::Room& r) { return std::uint64_t{r.stats.videoDecoders}; });
    appendRoomFamily<std::uint64_t>(
        out, snapshot, "tessera_room_compositing", "gauge",
        "1 once the room runs its compositor and video encoders (someone sent or "
        "received video), else 0.",
        [](const Snapshot::Room& r) { return std::uint64_t{r.stats.compositing ? 1U : 0U}; });

    appendTierFamily(out, snapshot, "tessera_tier_receivers", "gauge",
                     "Receivers of the quality tier (all codecs); with none its encoders are fed nothing.",
                     [](const media::TierStats& t) { return std::uint64_t{t.receivers}; });
    appendTierFamily(out, snapshot, "tessera_tier_frames_total", "counter",
                     "Frames the quality tier's encoders produced (all codecs).",
                     [](const media::TierStats& t) { return t.frames; });
    appendRoomFamily<std::uint64_t>(
        out, snapshot, "tessera_room_audio_only_receivers", "gauge",
        "Participants on the audio-only tier: sent no video (their link, their maxBitrate or their own choice).",
        [](const Snapshot::Room& r) {
            return static_cast<std::uint64_t>(std::count_if(r.participants.begin(), r.participants.end(),
                                                            [](const auto& p) { return p.stats.tier == "audio"; }));
        });
    appendHeader(out, "tessera_encoders", "gauge",
                 "Video encoders of the codec encoding now: one per quality tier with receivers in that codec.");
    for (const Snapshot::Room& room : snapshot.rooms) {
        for (const auto& codec : room.stats.codecs)
            appendSample(out, "tessera_encoders", {{"room", room.room}, {"codec", codec.name}},
                         std::uint64_t{codec.encoders});
    }
    appendEncoderFamily(out, snapshot, "tessera_encoder_receivers", "gauge",
                        "Receivers of the (tier, codec) encoder; with none it is fed nothing.",
                        [](const media::TierStats& t) { return std::uint64_t{t.receivers}; });
    appendEncoderFamily(out, snapshot, "tessera_encoder_frames_total", "counter",
                        "Frames the (tier, codec) encoder produced.",
                        [](const media::TierStats& t) { return t.frames; });

    appendRoomFamily<std::uint64_t>(out, snapshot, "tessera_recording", "gauge",
                                    "1 while the room is being recorded, else 0.",
                                    [](const Snapshot::Room& r) { return std::uint64_t{r.recording ? 1U : 0U}; });
    appendHeader(out, "tessera_recording_errors_total", "counter",
                 "Recordings that could not start or failed while running (all rooms).");
    appendSample(out, "tessera_recording_errors_total", {}, snapshot.recordingErrors);

    appendHeader(out, "tessera_live_targets", "gauge",
                 "Live targets of the room by kind (hls, rtmp) and state (running, retrying, failed).");
    for (const Snapshot::Room& room : snapshot.rooms) {
        for (const std::string_view kind : {"hls", "rtmp"}) {
            for (const std::string_view state : {"running", "retrying", "failed"}) {
                std::uint64_t n = 0;
                for (const auto& t : room.live) n += t.kind == kind && t.state == state ? 1 : 0;
                appendSample(out, "tessera_live_targets", {{"room", room.room}, {"kind", kind}, {"state", state}}, n);
            }
        }
    }
    appendHeader(out, "tessera_live_failures_total", "counter",
                 "Live targets that could not start or failed while running, each reconnect counted (all rooms).");
    appendSample(out, "tessera_live_failures_total", {}, snapshot.liveFailures);

    appendHeader(out, "tessera_main_loop_delay_seconds", "gauge",
                 "The longest the main loop (signaling, the API, congestion control) ran late, over the last 10-20 s.");
    appendSample(out, "tessera_main_loop_delay_seconds", {}, loop.longestDelaySeconds);
    appendHeader(out, "tessera_main_loop_stalls_total", "counter",
                 "Times the main loop ran over a second late (each is logged, with where the time went).");
    appendSample(out, "tessera_main_loop_stalls_total", {}, loop.stalls);

    appendParticipantFamily(out, snapshot, "tessera_participant_bitrate_in_bps", "gauge",
                            "RTP bits per second received from the participant.",
                            [](const media::PeerStats& s) { return s.bitrateIn; });
    appendParticipantFamily(out, snapshot, "tessera_participant_bitrate_out_bps", "gauge",
                            "RTP bits per second sent to the participant.",
                            [](const media::PeerStats& s) { return s.bitrateOut; });
    appendParticipantFamily(out, snapshot, "tessera_participant_packets_lost_total", "counter",
                            "RTP packets from the participant that were lost.",
                            [](const media::PeerStats& s) { return s.packetsLost; });
    appendParticipantFamily(out, snapshot, "tessera_participant_estimated_bps", "gauge",
                            "Bandwidth estimate of the link to the participant (transport-wide congestion control "
                            "feedback); no sample until its feedback arrives.",
                            [](const media::PeerStats& s) { return s.estimatedBps; });
    return out;
}

} // namespace tessera::server
