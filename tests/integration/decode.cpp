#include "decode.h"

#include <algorithm>
#include <span>

#include <catch2/catch.hpp>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>

#include "tessera/analysis/stamp.h"
#include "tessera/analysis/tones.h"

namespace tessera::testing {
namespace {

// Thread: decodebin's streaming thread.
void linkDecoded(GstElement*, GstPad* pad, gpointer pipeline) {
    GstCaps* caps = gst_pad_get_current_caps(pad);
    if (!caps) caps = gst_pad_query_caps(pad, nullptr);
    const std::string media = gst_structure_get_name(gst_caps_get_structure(caps, 0));
    gst_caps_unref(caps);
    const char* branch = media.rfind("video/", 0) == 0 ? "vq" : media.rfind("audio/", 0) == 0 ? "aq" : nullptr;
    if (!branch) return;
    GstElement* queue = gst_bin_get_by_name(GST_BIN(pipeline), branch);
    GstPad* sink = gst_element_get_static_pad(queue, "sink");
    if (!gst_pad_is_linked(sink)) gst_pad_link(pad, sink);
    gst_object_unref(sink);
    gst_object_unref(queue);
}

} // namespace

Decoded decodeFile(const std::string& path) {
    gst_init(nullptr, nullptr);
    Decoded out;
    const std::string description =
        "filesrc name=src ! decodebin name=dec "
        "queue name=vq ! videoconvert ! videoscale ! video/x-raw,format=RGB,width=" +
        std::to_string(kDecodeWidth) + ",height=" + std::to_string(kDecodeHeight) +
        ",pixel-aspect-ratio=1/1 ! appsink name=v sync=false "
        "queue name=aq ! audioconvert ! audioresample ! "
        "audio/x-raw,format=F32LE,rate=48000,channels=2,layout=interleaved ! appsink name=a sync=false";
    GError* error = nullptr;
    GstElement* pipeline = gst_parse_launch(description.c_str(), &error);
    REQUIRE(pipeline);
    REQUIRE(!error);
    GstElement* src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
    g_object_set(src, "location", path.c_str(), nullptr);
    gst_object_unref(src);
    GstElement* dec = gst_bin_get_by_name(GST_BIN(pipeline), "dec");
    g_signal_connect(dec, "pad-added", G_CALLBACK(linkDecoded), pipeline);
    gst_object_unref(dec);
    auto* videoSink = GST_APP_SINK(gst_bin_get_by_name(GST_BIN(pipeline), "v"));
    auto* audioSink = GST_APP_SINK(gst_bin_get_by_name(GST_BIN(pipeline), "a"));

    auto drain = [&] {
        while (GstSample* sample = gst_app_sink_try_pull_sample(videoSink, 0)) {
            GstBuffer* buffer = gst_sample_get_buffer(sample);
            GstMapInfo map;
            if (gst_buffer_map(buffer, &map, GST_MAP_READ)) {
                const std::size_t stride = (kDecodeWidth * 3 + 3) & ~std::size_t{3};
                analysis::FrameView view{map.data, kDecodeWidth, kDecodeHeight, stride};
                out.frames.push_back({static_cast<double>(GST_BUFFER_PTS(buffer)) / GST_SECOND,
                                      analysis::makeThumbnail(view, kThumbWidth, kThumbHeight),
                                      analysis::stamp::readRgb(view)});
                gst_buffer_unmap(buffer, &map);
            }
            gst_sample_unref(sample);
        }
        while (GstSample* sample = gst_app_sink_try_pull_sample(audioSink, 0)) {
            GstBuffer* buffer = gst_sample_get_buffer(sample);
            GstMapInfo map;
            if (gst_buffer_map(buffer, &map, GST_MAP_READ)) {
                const auto* samples = reinterpret_cast<const float*>(map.data);
                const std::size_t count = map.size / sizeof(float);
                const double pts = static_cast<double>(GST_BUFFER_PTS(buffer)) / GST_SECOND;
                out.chunks.push_back({pts, pts + static_cast<double>(count / 2) / 48000.0, out.audio.size() / 2});
                out.audio.insert(out.audio.end(), samples, samples + count);
                gst_buffer_unmap(buffer, &map);
            }
            gst_sample_unref(sample);
        }
    };

    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    GstBus* bus = gst_element_get_bus(pipeline);
    const auto deadline = Clock::now() + kDeadline;
    for (;;) {
        GstMessage* message =
            gst_bus_timed_pop_filtered(bus, 100 * GST_MSECOND, GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
        drain();
        if (message) {
            if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
                GError* err = nullptr;
                gst_message_parse_error(message, &err, nullptr);
                out.error = err ? err->message : "error";
                g_clear_error(&err);
            }
            gst_message_unref(message);
            break;
        }
        if (Clock::now() > deadline) {
            out.error = "decoding did not finish";
            break;
        }
    }
    gst_element_set_state(pipeline, GST_STATE_NULL);
    drain();
    gst_object_unref(bus);
    gst_object_unref(videoSink);
    gst_object_unref(audioSink);
    gst_object_unref(pipeline);
    return out;
}

// Tone levels (dBFS) over the decoded audio between two times.
std::vector<double> toneLevels(const Decoded& d, double from, double to, const std::vector<double>& tones) {
    const auto firstFrame = static_cast<std::size_t>(std::max(0.0, from - d.chunks.front().pts) * 48000);
    const auto lastFrame = std::min(d.audio.size() / 2, static_cast<std::size_t>((to - d.chunks.front().pts) * 48000));
    REQUIRE(lastFrame > firstFrame);
    std::span<const float> window(d.audio.data() + firstFrame * 2, (lastFrame - firstFrame) * 2);
    return analysis::toneLevelsDbfs(window, 2, 48000, tones);
}

analysis::Rgb colourAt(const Decoded::Frame& frame, double fx, double fy) {
    return frame.thumb.at(std::min(kThumbWidth - 1, static_cast<int>(fx * kThumbWidth)),
                          std::min(kThumbHeight - 1, static_cast<int>(fy * kThumbHeight)));
}

bool looksLike(analysis::Rgb a, Rgb b) { return near({a.r, a.g, a.b}, b); }

} // namespace tessera::testing
