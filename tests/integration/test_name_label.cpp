// media::NameLabel, in-process on real GStreamer: tiles' name labels resized
// while their frames flow on their own threads, as a room's layout changes
// while people join. textoverlay draws a fixed text outside its lock; a font
// set from the main thread mid-draw crashed a room of 30 ([large]). Without
// the hand-off to the streaming thread this test crashed in 8 runs of 9,
// each within 1.5 s.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include "../../src/media/name_label.h"
#include "tessera/analysis/frames.h"

using tessera::media::NameLabel;
namespace analysis = tessera::analysis;

namespace {

constexpr int kWidth = 320, kHeight = 180, kLabels = 8;

// The frame of `sample` in RGB, seen through analysis's FrameView by `use`.
template <typename Use>
void withRgb(GstSample* sample, Use use) {
    GstCaps* rgb = gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, "RGB", nullptr);
    GstSample* converted = gst_video_convert_sample(sample, rgb, 10 * GST_SECOND, nullptr);
    gst_caps_unref(rgb);
    REQUIRE(converted);
    GstVideoInfo info;
    REQUIRE(gst_video_info_from_caps(&info, gst_sample_get_caps(converted)));
    GstVideoFrame frame;
    REQUIRE(gst_video_frame_map(&frame, &info, gst_sample_get_buffer(converted), GST_MAP_READ));
    use(analysis::FrameView{static_cast<const std::uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)),
                            GST_VIDEO_FRAME_WIDTH(&frame), GST_VIDEO_FRAME_HEIGHT(&frame),
                            static_cast<std::size_t>(GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0))});
    gst_video_frame_unmap(&frame);
    gst_sample_unref(converted);
}

} // namespace

TEST_CASE("name labels resized while their frames are drawn: no crash, the last size holds", "[labels]") {
    gst_init(nullptr, nullptr);
    GstElement* pipeline = gst_pipeline_new("labels");
    GstElement* source = gst_element_factory_make("videotestsrc", nullptr);
    g_object_set(source, "pattern", 2 /* black */, nullptr);
    GstElement* caps = gst_element_factory_make("capsfilter", nullptr);
    GstCaps* raw = gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, "I420", "width", G_TYPE_INT, kWidth,
                                       "height", G_TYPE_INT, kHeight, nullptr);
    g_object_set(caps, "caps", raw, nullptr);
    gst_caps_unref(raw);
    GstElement* tee = gst_element_factory_make("tee", nullptr);
    gst_bin_add_many(GST_BIN(pipeline), source, caps, tee, nullptr);
    REQUIRE(gst_element_link_many(source, caps, tee, nullptr));

    // Each label on its own streaming thread (a queue), as each tile's decoder is.
    std::vector<NameLabel> labels;
    std::vector<GstAppSink*> sinks;
    for (int i = 0; i < kLabels; ++i) {
        labels.emplace_back("Tom & Jerry " + std::to_string(i), kHeight);
        GstElement* queue = gst_element_factory_make("queue", nullptr);
        g_object_set(queue, "max-size-buffers", 2, nullptr);
        GstElement* sink = gst_element_factory_make("appsink", nullptr);
        g_object_set(sink, "sync", FALSE, "max-buffers", 1, "drop", TRUE, nullptr);
        sinks.push_back(GST_APP_SINK(sink));
        gst_bin_add_many(GST_BIN(pipeline), queue, labels.back().element(), sink, nullptr);
        REQUIRE(gst_element_link_many(tee, queue, labels.back().element(), sink, nullptr));
        labels.back().show(true);
    }
    REQUIRE(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    GstSample* first = gst_app_sink_try_pull_sample(sinks[0], 30 * GST_SECOND);
    REQUIRE(first);
    gst_sample_unref(first);

    // Every label resized every millisecond for 3 s, from this thread.
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(3000);
    unsigned step = 0;
    while (std::chrono::steady_clock::now() < end) {
        for (int i = 0; i < kLabels; ++i) labels[i].resize(kHeight / 2 + (step + i) % (4 * kHeight));
        ++step;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    // The last size: 360 pixels, Sans Bold 18. At most 2 frames of each
    // branch had passed its label's probe before it and were not pulled yet
    // (one in the label, one in the appsink), so the 3rd pulled went through
    // the label after.
    for (NameLabel& label : labels) label.resize(360);
    const auto frameAfter = [](GstAppSink* sink) {
        GstSample* frame = nullptr;
        for (int i = 0; i < 3; ++i) {
            if (frame) gst_sample_unref(frame);
            frame = gst_app_sink_try_pull_sample(sink, 30 * GST_SECOND);
            REQUIRE(frame);
        }
        return frame;
    };
    // The name is drawn bottom left in white; the top right stays black.
    const auto nameDrawn = [](GstSample* frame) {
        double white = 0;
        withRgb(frame, [&](const analysis::FrameView& view) {
            white = analysis::colorCoverage(view, {0, kHeight / 2, kWidth / 2, kHeight / 2}, {255, 255, 255});
            CHECK(analysis::colorCoverage(view, {kWidth / 2, 0, kWidth / 2, kHeight / 2}, {0, 0, 0}) == 1.0);
        });
        gst_sample_unref(frame);
        return white > 0;
    };
    for (GstAppSink* sink : sinks) CHECK(nameDrawn(frameAfter(sink)));
    // Hidden, then shown again (twice: the second changes nothing).
    labels[0].show(false);
    CHECK_FALSE(nameDrawn(frameAfter(sinks[0])));
    labels[0].show(true);
    labels[0].show(true);
    CHECK(nameDrawn(frameAfter(sinks[0])));

    REQUIRE(gst_element_set_state(pipeline, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS);
    for (NameLabel& label : labels) {
        gchar* font = nullptr;
        g_object_get(label.element(), "font-desc", &font, nullptr);
        CHECK(std::string(font ? font : "") == "Sans Bold 18");
        g_free(font);
    }
    gst_object_unref(pipeline);
}
