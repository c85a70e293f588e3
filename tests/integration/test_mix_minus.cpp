// media's tesseramixminus, in-process on real GStreamer: the room's K+1
// audio mixes from one aggregator. Four tones go in, one in no slot, one
// owning slot 0, two sharing slot 1 (a slot changing hands has two owners
// for a moment), slot 2 owned by nobody; every mix is read back whole.
#include <cstddef>
#include <map>
#include <vector>

#include <catch2/catch.hpp>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>

#include "../../src/media/mix_minus.h"
#include "tessera/analysis/tones.h"

namespace analysis = tessera::analysis;

namespace {

constexpr double kRate = 48000;
constexpr int kBuffers = 50; // of 960 frames: 1 s
constexpr unsigned kSlots = 3;
// Tone -> the slot whose mix leaves it out (-1: none).
const std::map<double, int> kTones = {{440, -1}, {660, 0}, {880, 1}, {1100, 1}};
// audiotestsrc's volume 0.1: each tone at -20 dBFS.
constexpr double kToneDbfs = -20;
// A tone a mix leaves out reads as digital silence there (the others'
// leakage in a 1 s Hann window is below analysis::kSilenceDbfs): its first
// millisecond of every 20 mixed in would read about -46 dBFS.
constexpr double kAbsentDbfs = -100;

std::vector<float> floats(GstBuffer* buffer) {
    GstMapInfo map;
    REQUIRE(gst_buffer_map(buffer, &map, GST_MAP_READ));
    const auto* data = reinterpret_cast<const float*>(map.data);
    std::vector<float> out(data, data + map.size / sizeof(float));
    gst_buffer_unmap(buffer, &map);
    return out;
}

} // namespace

TEST_CASE("the room's mixer: the full mix has every input, each slot's mix every input but its owners'", "[mixminus]") {
    gst_init(nullptr, nullptr);
    tessera::media::registerMixMinus();
    GstElement* pipeline = gst_pipeline_new("mixminus");
    GstElement* mixer = gst_element_factory_make("tesseramixminus", "mix");
    REQUIRE(mixer);
    g_object_set(mixer, "slots", kSlots, nullptr);
    GstElement* caps = gst_element_factory_make("capsfilter", nullptr);
    GstCaps* f32 = gst_caps_from_string("audio/x-raw,format=F32LE,rate=48000,channels=2,layout=interleaved");
    g_object_set(caps, "caps", f32, nullptr);
    GstElement* sink = gst_element_factory_make("appsink", nullptr);
    g_object_set(sink, "sync", FALSE, nullptr);
    gst_bin_add_many(GST_BIN(pipeline), mixer, caps, sink, nullptr);
    REQUIRE(gst_element_link_many(mixer, caps, sink, nullptr));
    for (const auto& [frequency, slot] : kTones) {
        GstElement* tone = gst_element_factory_make("audiotestsrc", nullptr);
        g_object_set(tone, "freq", frequency, "volume", 0.1, "num-buffers", kBuffers, "samplesperbuffer", 960, nullptr);
        GstElement* format = gst_element_factory_make("capsfilter", nullptr);
        g_object_set(format, "caps", f32, nullptr);
        gst_bin_add_many(GST_BIN(pipeline), tone, format, nullptr);
        REQUIRE(gst_element_link(tone, format));
        GstPad* in = gst_element_request_pad_simple(mixer, "sink_%u");
        g_object_set(in, "slot", slot, nullptr);
        GstPad* out = gst_element_get_static_pad(format, "src");
        REQUIRE(gst_pad_link(out, in) == GST_PAD_LINK_OK);
        gst_object_unref(out);
        gst_object_unref(in);
    }
    gst_caps_unref(f32);

    REQUIRE(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    std::vector<float> full;
    std::vector<std::vector<float>> slots(kSlots);
    bool shared = true; // slot 2, owned by nobody, is the full mix's own buffer
    while (GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 30 * GST_SECOND)) {
        GstBuffer* buffer = gst_sample_get_buffer(sample);
        const std::vector<float> mix = floats(buffer);
        full.insert(full.end(), mix.begin(), mix.end());
        for (std::size_t k = 0; k < kSlots; ++k) {
            GstBuffer* slot = tessera::media::slotMix(buffer, k);
            if (k == 2) shared = shared && slot == buffer;
            const std::vector<float> own = floats(slot);
            INFO("slot " << k << "'s buffer has the full mix's size");
            CHECK(own.size() == mix.size());
            slots[k].insert(slots[k].end(), own.begin(), own.end());
            gst_buffer_unref(slot);
        }
        gst_sample_unref(sample);
    }
    CHECK(gst_app_sink_is_eos(GST_APP_SINK(sink)));
    REQUIRE(gst_element_set_state(pipeline, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS);
    gst_object_unref(pipeline);

    // Every input's every frame, in every mix.
    CHECK(full.size() == static_cast<std::size_t>(kBuffers) * 960 * 2);
    CHECK(shared);
    std::vector<double> frequencies;
    for (const auto& [frequency, slot] : kTones) frequencies.push_back(frequency);
    const auto fullLevels = analysis::toneLevelsDbfs(full, 2, kRate, frequencies);
    for (std::size_t i = 0; i < frequencies.size(); ++i) {
        INFO("the full mix at " << frequencies[i] << " Hz: " << fullLevels[i] << " dBFS");
        CHECK(fullLevels[i] == Approx(kToneDbfs).margin(1));
    }
    for (std::size_t k = 0; k < kSlots; ++k) {
        const auto levels = analysis::toneLevelsDbfs(slots[k], 2, kRate, frequencies);
        std::size_t i = 0;
        for (const auto& [frequency, owner] : kTones) {
            INFO("slot " << k << "'s mix at " << frequency << " Hz (owned by slot " << owner << "): " << levels[i]
                         << " dBFS");
            if (owner == static_cast<int>(k))
                CHECK(levels[i] < kAbsentDbfs);
            else
                CHECK(levels[i] == Approx(kToneDbfs).margin(1));
            ++i;
        }
    }
}
