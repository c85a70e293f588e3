#include <memory>

#include "fragments.h"
#include "gst_util.h"
#include "ice.h"
#include "mix_minus.h"
#include "room_pipeline.h"
#include "tessera/media/engine.h"
#include "tessera/protocol/error.h"

namespace tessera::media {
namespace {

// Elements the core pipeline needs beyond the fragments; checked up front so
// a missing plugin package is named at start-up, not at the first join.
constexpr const char* kRequiredElements[] = {"webrtcbin", "compositor", "videotestsrc", "audiotestsrc", "tee", "queue",
                                             "nicesrc", "dtlssrtpenc", "capsfilter", "splitmuxsink",
                                             // name labels on tiles (Debian: gstreamer1.0-x)
                                             "textoverlay"};

FragmentVars varsFor(const Config& config) {
    const auto& v = config.video;
    const auto& r = config.recording;
    return {{"bitrate", std::to_string(v.bitrate / 1000)},
            {"bitrate_bps", std::to_string(v.bitrate)},
            {"keyframe_interval", std::to_string(v.framerate * 2)},
            // libvpx's max-intra-bitrate: percent of an average frame (bitrate / framerate).
            {"keyframe_max_percent", std::to_string(v.keyFrameMaxMs * v.framerate / 10)},
            {"framerate", std::to_string(v.framerate)},
            {"width", std::to_string(v.width)},
            {"height", std::to_string(v.height)},
            {"tile_width", std::to_string(v.tileWidth)},
            {"tile_height", std::to_string(v.tileHeight)},
            {"audio_bitrate", std::to_string(config.audio.bitrate)},
            {"record_width", std::to_string(r.width)},
            {"record_height", std::to_string(r.height)},
            {"record_bitrate", std::to_string(r.bitrate / 1000)},
            {"record_bitrate_bps", std::to_string(r.bitrate)},
            {"record_audio_bitrate", std::to_string(r.audioBitrate)},
            {"record_keyframe_interval", std::to_string(v.framerate)}, // 1 s: splitmuxsink holds a GOP in memory
            {"live_width", std::to_string(config.live.width)},
            {"live_height", std::to_string(config.live.height)},
            {"live_bitrate", std::to_string(config.live.bitrate / 1000)},
            {"live_audio_bitrate", std::to_string(config.live.audioBitrate)},
            // A key frame starts every HLS segment.
            {"live_keyframe_interval", std::to_string(v.framerate * config.live.segmentSeconds)},
            {"live_segment_seconds", std::to_string(config.live.segmentSeconds)},
            {"live_playlist_length", std::to_string(config.live.playlistLength)},
            // A player that read the playlist just before it moved on still finds its segments.
            {"live_max_files", std::to_string(config.live.playlistLength + 2)},
            // mp4's index space: a segment's worth (and a minute to spare), else an hour.
            {"record_reserved_duration",
             std::to_string((r.segmentSeconds ? r.segmentSeconds + 60ULL : 3600ULL) * GST_SECOND)}};
}

class GstEngine final : public Engine {
public:
    explicit GstEngine(const Config& config)
        : m_config(config), m_fragments(config.pipelinesDir, varsFor(config),
                                        {"decode-opus", "audio-encode", "pay-opus", "record-mkv", "record-webm",
                                         "record-mp4", "live-encode", "live-hls", "live-rtmp"}) {
        for (const std::string& codec : config.video.codecs) {
            for (const char* kind : {"pay-", "decode-"})
                m_fragments.load(kind + codec, config.pipelinesDir + "/" + kind + codec + ".pipeline", varsFor(config));
            // One encoder per quality tier: the same file, the tier's size and bit rate.
            for (const policy::Tier& tier : effectiveTiers(config.video)) {
                FragmentVars vars = varsFor(config);
                vars["bitrate"] = std::to_string(tier.bitrate / 1000);
                vars["bitrate_bps"] = std::to_string(tier.bitrate);
                vars["width"] = std::to_string(tier.width);
                vars["height"] = std::to_string(tier.height);
                m_fragments.load(tierEncoder(codec, tier), config.pipelinesDir + "/encode-" + codec + ".pipeline",
                                 vars);
            }
        }
    }

    std::unique_ptr<RoomMedia> createRoom(const std::string& room, RoomListener& listener) override {
        return std::make_unique<RoomPipeline>(room, m_config, m_fragments, listener);
    }

private:
    const Config m_config;
    Fragments m_fragments; // Filled in the constructor, read-only after.
};

} // namespace

std::unique_ptr<Engine> createGstEngine(const Config& config) {
    GST_DEBUG_CATEGORY_INIT(tessera_media_debug, "tessera-media", 0, "Tessera media");
    for (const char* name : kRequiredElements) {
        GstElementFactory* f = gst_element_factory_find(name);
        if (!f)
            throw Error(ErrorCode::Internal, std::string("GStreamer element '") + name +
                                                 "' is missing: install the GStreamer plugin packages (scripts/deps)");
        gst_object_unref(f);
    }
    registerMixMinus();
    if (std::string why = iceProblem(config); !why.empty()) g_warning("%s", why.c_str());
    return std::make_unique<GstEngine>(config);
}

} // namespace tessera::media
