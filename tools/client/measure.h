#pragma once
// What tessera-client measures in the media it receives: written by appsink
// callbacks and pad probes on streaming threads under each struct's mutex,
// read by the main thread for `report`.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <vector>

#include <gst/gst.h>
#include <gst/video/video.h>

#include "output.h"
#include "tessera/analysis/frames.h"
#include "tessera/analysis/stamp.h"
#include "tessera/analysis/tones.h"
#include "tessera/glib/gst_raii.h"

namespace tessera::client {

constexpr unsigned kAudioRate = 48000;
constexpr std::size_t kAudioWindow = kAudioRate; // 1 s, mono

// The p-th percentile (0..100) of `v`, nearest rank; 0 for none.
inline double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

inline double round2(double v) { return std::round(v * 100.0) / 100.0; }

// Maps the packed RGB frame of `sample` and calls fn(FrameView); false if it
// cannot be mapped.
template <typename Fn>
bool withFrame(GstSample* sample, Fn&& fn) {
    GstVideoInfo info;
    GstVideoFrame frame;
    GstCaps* caps = sample ? gst_sample_get_caps(sample) : nullptr;
    GstBuffer* buffer = sample ? gst_sample_get_buffer(sample) : nullptr;
    if (!caps || !buffer || !gst_video_info_from_caps(&info, caps) ||
        !gst_video_frame_map(&frame, &info, buffer, GST_MAP_READ))
        return false;
    const analysis::FrameView view{static_cast<const std::uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)),
                                   GST_VIDEO_FRAME_WIDTH(&frame), GST_VIDEO_FRAME_HEIGHT(&frame),
                                   static_cast<std::size_t>(GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0))};
    fn(view);
    gst_video_frame_unmap(&frame);
    return true;
}

struct VideoMeasure {
    std::mutex mutex;
    glib::SamplePtr last;
    std::uint64_t frames = 0;
    int width = 0;
    int height = 0;
    // Freeze detection: monotonic time of the last frame (µs, 0: none yet) and
    // the longest time between two consecutive frames since the first frame
    // or the last `reset-gap`.
    std::int64_t lastFrameUs = 0;
    std::int64_t maxGapUs = 0;
};

struct AudioMeasure {
    // Tone peaks are measured over blocks this long: 100 ms tells tones
    // 20 Hz apart and still catches a leak of a few packets.
    static constexpr std::size_t kPeakBlock = kAudioRate / 10;

    std::mutex mutex;
    std::vector<float> ring = std::vector<float>(kAudioWindow, 0.0f);
    std::size_t pos = 0;    // next write
    std::size_t filled = 0; // valid samples in ring
    std::uint64_t total = 0;
    std::vector<double> peaks; // per --detect tone: its loudest block since the start or `reset-peaks`
    std::size_t sinceBlock = 0;

    // `detect`: the tones whose peaks are tracked.
    void append(const float* data, std::size_t n, const std::vector<double>& detect) {
        for (std::size_t i = 0; i < n; ++i) {
            ring[pos] = data[i];
            pos = (pos + 1) % ring.size();
            if (++sinceBlock == kPeakBlock && !detect.empty()) {
                sinceBlock = 0;
                const std::vector<float> block = last(kPeakBlock);
                const auto levels = analysis::toneLevelsDbfs(block, 1, kAudioRate, detect);
                peaks.resize(levels.size(), analysis::kSilenceDbfs);
                for (std::size_t t = 0; t < levels.size(); ++t) peaks[t] = std::max(peaks[t], levels[t]);
            }
        }
        filled = std::min(ring.size(), filled + n);
        total += n;
    }
    // The last `n` samples written, in time order. Caller holds the mutex.
    std::vector<float> last(std::size_t n) const {
        std::vector<float> out(n);
        for (std::size_t i = 0; i < n; ++i) out[i] = ring[(pos + ring.size() - n + i) % ring.size()];
        return out;
    }
    // The window in time order. Caller holds the mutex.
    std::vector<float> window() const {
        std::vector<float> out(filled);
        const std::size_t start = (pos + ring.size() - filled) % ring.size();
        for (std::size_t i = 0; i < filled; ++i) out[i] = ring[(start + i) % ring.size()];
        return out;
    }
};

// Arrival gaps of a stream (packets or decoded frames). A gap over 1 s is a
// stall: what a person in the call would notice as a frozen picture.
struct GapMeasure {
    static constexpr gint64 kStallUs = 1000000;
    gint64 lastUs = 0; // monotonic; 0 before the first arrival
    gint64 maxGapUs = 0;
    std::uint64_t stalls = 0;

    void arrive(gint64 nowUs) {
        if (lastUs) {
            const gint64 gap = nowUs - lastUs;
            maxGapUs = std::max(maxGapUs, gap);
            if (gap > kStallUs) ++stalls;
        }
        lastUs = nowUs;
    }
    // Measures from now on (`reset-gap`); a gap still open keeps counting
    // from its start.
    void reset() {
        maxGapUs = 0;
        stalls = 0;
    }
    // The gap still open at `nowUs` counts too: a stream that stopped.
    Json toJson(gint64 nowUs) const {
        const gint64 open = lastUs ? nowUs - lastUs : 0;
        return {{"stalls", stalls + (open > kStallUs ? 1 : 0)},
                {"maxGapMs", std::round(static_cast<double>(std::max(maxGapUs, open)) / 100.0) / 10.0}};
    }
};

// Received RTP of one kind, counted on webrtcbin's source pad (after its
// jitter buffer), decoded or not.
struct RtpMeasure {
    std::mutex mutex;
    std::uint64_t packets = 0;
    std::uint64_t bytes = 0;
    std::uint64_t markers = 0; // video: frames (the marker bit ends a frame)
    // Sequence numbers the jitter buffer never delivered: lost for good (a
    // NACK that came too late or not at all). A jump of over 1000 is a new
    // sequence (a sender's restart), not loss.
    std::uint64_t lost = 0;
    int lastSeq = -1;
    GapMeasure gaps;

    void sequence(guint16 seq) {
        const int step = lastSeq < 0 ? 1 : (seq - lastSeq + 65536) % 65536;
        if (step > 1 && step <= 1000) lost += static_cast<std::uint64_t>(step - 1);
        lastSeq = seq;
    }
};

// Glass-to-glass delays read from stamps (--read-stamp), in ms.
struct LatencyMeasure {
    static constexpr std::size_t kMaxSamples = 20000; // 11 minutes of video frames
    std::mutex mutex;
    std::vector<double> video;
    std::vector<double> audio;
    int lastStamp = -1;   // the last stamp read: a repeated frame is not a new sample
    bool visible = false; // the stamp sender's tile is in the picture
    int missedFrames = 0; // consecutive frames without it
    analysis::stamp::ClickDetector clicks;

    static Json summary(const std::vector<double>& v) {
        Json all = Json::array(); // every sample, so that a caller can pick a time window
        for (double d : v) all.push_back(std::round(d * 10.0) / 10.0);
        return {{"samples", v.size()},
                {"ms", all},
                {"p50", round2(percentile(v, 50))},
                {"p95", round2(percentile(v, 95))},
                {"max", round2(v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()))}};
    }
};

// A colour the test waits for at one point of the received picture (the
// `watch` command): the first decoded frame showing it there is stamped.
struct ColorWatch {
    std::mutex mutex;
    bool armed = false;
    double fx = 0, fy = 0; // the point, fractions of the frame
    analysis::Rgb color;
};

} // namespace tessera::client
