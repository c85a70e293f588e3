// media::TileScaler: a decode branch's tile size, set from the main thread
// while the branch renegotiates on its own (its sender changes resolution).
// Set on the capsfilter from outside, a size changed in the middle of a
// negotiation failed it "not negotiated" (a room of 20 joining at once, the
// [rush] integration test's room); through TileScaler it never can.
#include <catch2/catch.hpp>

#include <mutex>
#include <set>
#include <utility>

#include <gst/gst.h>

#include "../../src/media/tile_scaler.h"

namespace {

GstElement* byName(GstElement* pipeline, const char* name) {
    GstElement* e = gst_bin_get_by_name(GST_BIN(pipeline), name);
    REQUIRE(e != nullptr);
    return e; // a reference
}

} // namespace

TEST_CASE("a tile resized thousands of times while its source keeps changing size never fails to negotiate",
          "[tile-scaler]") {
    gst_init(nullptr, nullptr);
    constexpr int kFrames = 400;
    GError* error = nullptr;
    GstElement* pipeline = gst_parse_launch(
        ("videotestsrc num-buffers=" + std::to_string(kFrames) +
         " ! video/x-raw,format=I420,width=640,height=360,framerate=30/1 ! videoscale name=source_scale"
         " ! capsfilter name=source caps=video/x-raw,width=640,height=360"
         " ! videoconvert ! videoscale name=scale add-borders=true"
         " ! capsfilter name=tile caps=video/x-raw,format=I420,width=320,height=180,pixel-aspect-ratio=1/1"
         " ! fakesink name=out sync=false")
            .c_str(),
        &error);
    REQUIRE(pipeline != nullptr);
    REQUIRE(error == nullptr);
    GstElement* scale = byName(pipeline, "scale");
    GstElement* tile = byName(pipeline, "tile");
    GstElement* sourceScale = byName(pipeline, "source_scale");
    GstElement* source = byName(pipeline, "source");
    GstElement* out = byName(pipeline, "out");
    tessera::media::TileScaler scaler(scale, tile);

    // The source alternates 640x360 and 480x270 every 5 frames, on its own thread.
    struct Alternate {
        GstElement* filter;
        int frames = 0;
    } alternate{source};
    GstPad* sourceIn = gst_element_get_static_pad(sourceScale, "sink");
    gst_pad_add_probe(
        sourceIn, GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad*, GstPadProbeInfo*, gpointer data) noexcept {
            auto* a = static_cast<Alternate*>(data);
            if (a->frames++ % 5 == 0) {
                const bool big = (a->frames / 5) % 2 == 0;
                GstCaps* caps = gst_caps_new_simple("video/x-raw", "width", G_TYPE_INT, big ? 640 : 480, "height",
                                                    G_TYPE_INT, big ? 360 : 270, nullptr);
                g_object_set(a->filter, "caps", caps, nullptr);
                gst_caps_unref(caps);
            }
            return GST_PAD_PROBE_OK;
        },
        &alternate, nullptr);
    gst_object_unref(sourceIn);

    // What reaches the sink: frames, and the sizes they came in.
    struct Seen {
        std::mutex mutex;
        int frames = 0;
        std::set<std::pair<int, int>> sizes;
    } seen;
    GstPad* sinkIn = gst_element_get_static_pad(out, "sink");
    gst_pad_add_probe(
        sinkIn, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
        [](GstPad*, GstPadProbeInfo* info, gpointer data) noexcept {
            auto* s = static_cast<Seen*>(data);
            std::lock_guard lock(s->mutex);
            if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER) {
                ++s->frames;
            } else if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_CAPS) {
                GstCaps* caps = nullptr;
                gst_event_parse_caps(GST_PAD_PROBE_INFO_EVENT(info), &caps);
                int w = 0, h = 0;
                const GstStructure* st = gst_caps_get_structure(caps, 0);
                gst_structure_get_int(st, "width", &w);
                gst_structure_get_int(st, "height", &h);
                s->sizes.emplace(w, h);
            }
            return GST_PAD_PROBE_OK;
        },
        &seen, nullptr);
    gst_object_unref(sinkIn);

    REQUIRE(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    GstBus* bus = gst_element_get_bus(pipeline);
    // The "main thread": the room relayouts as fast as it can until the end.
    GstMessage* end = nullptr;
    int sets = 0;
    while (!end) {
        const bool small = sets++ % 2;
        scaler.set(small ? 160 : 320, small ? 90 : 180, true);
        end = gst_bus_pop_filtered(
            bus, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_WARNING));
    }
    const bool eos = GST_MESSAGE_TYPE(end) == GST_MESSAGE_EOS;
    if (!eos) {
        GError* err = nullptr;
        gchar* debug = nullptr;
        if (GST_MESSAGE_TYPE(end) == GST_MESSAGE_ERROR)
            gst_message_parse_error(end, &err, &debug);
        else
            gst_message_parse_warning(end, &err, &debug);
        UNSCOPED_INFO(GST_OBJECT_NAME(GST_MESSAGE_SRC(end)) << ": " << err->message);
        g_error_free(err);
        g_free(debug);
    }
    gst_message_unref(end);
    gst_object_unref(bus);
    gst_element_set_state(pipeline, GST_STATE_NULL);
    INFO(sets << " sets");
    CHECK(eos);
    CHECK(sets > 1000);
    std::lock_guard lock(seen.mutex);
    CHECK(seen.frames == kFrames);
    // Each frame comes out at one of the two sizes set, both seen.
    CHECK(seen.sizes == std::set<std::pair<int, int>>{{320, 180}, {160, 90}});
    for (GstElement* e : {scale, tile, sourceScale, source, out}) gst_object_unref(e);
    gst_object_unref(pipeline);
}
