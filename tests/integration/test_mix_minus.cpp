// media's tesseramixminus, in-process on real GStreamer: the room's K+1
// audio mixes from one aggregator. Four tones go in, one in no slot, one
// owning slot 0, two sharing slot 1 (a slot changing hands has two owners
// for a moment), slot 2 owned by nobody; every mix is read back whole.
// And an input released while the mixer mixes it.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <utility>
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
constexpr const char* kF32 = "audio/x-raw,format=F32LE,rate=48000,channels=2,layout=interleaved";
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
    GstCaps* f32 = gst_caps_from_string(kF32);
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

namespace {

// Holds the mixer in the middle of a cycle: the first map of a buffer of
// the input it gates (addInto's, the mixer mixing that input) waits until
// the test has released the input's pad, or for 200 ms, and records which.
// GStreamer 1.22.0 held nothing of the pad there.
struct Gate {
    std::mutex mutex;
    std::condition_variable changed;
    bool armed = false;    // the next map waits
    bool mixing = false;   // a map waits now
    bool released = false; // the pad was released
    bool releasedWhileMixing = false;

    // Thread: the mixer's.
    void map() {
        std::unique_lock lock(mutex);
        if (!std::exchange(armed, false)) return;
        mixing = true;
        changed.notify_all();
        releasedWhileMixing = changed.wait_for(lock, std::chrono::milliseconds(200), [&] { return released; });
        mixing = false;
        changed.notify_all();
    }
};

// Memory that calls its gate on every map (TestGateAllocator's, below).
struct GateMemory {
    GstMemory memory;
    guint8* data;
    Gate* gate;
};

} // namespace

G_BEGIN_DECLS
#define TEST_TYPE_GATE_ALLOCATOR (test_gate_allocator_get_type())
G_DECLARE_FINAL_TYPE(TestGateAllocator, test_gate_allocator, TEST, GATE_ALLOCATOR, GstAllocator)
G_END_DECLS

struct _TestGateAllocator {
    GstAllocator parent;
};

G_DEFINE_TYPE(TestGateAllocator, test_gate_allocator, GST_TYPE_ALLOCATOR)

static void test_gate_allocator_class_init(TestGateAllocatorClass* klass) {
    GST_ALLOCATOR_CLASS(klass)->free = [](GstAllocator*, GstMemory* memory) noexcept {
        auto* gated = reinterpret_cast<GateMemory*>(memory);
        g_free(gated->data);
        g_free(gated);
    };
}

static void test_gate_allocator_init(TestGateAllocator* self) {
    auto* allocator = GST_ALLOCATOR(self);
    allocator->mem_type = "TestGateMemory";
    allocator->mem_map = [](GstMemory* memory, gsize, GstMapFlags) noexcept -> gpointer {
        auto* gated = reinterpret_cast<GateMemory*>(memory);
        gated->gate->map();
        return gated->data;
    };
    allocator->mem_unmap = [](GstMemory*) noexcept {};
    GST_OBJECT_FLAG_SET(allocator, GST_ALLOCATOR_FLAG_CUSTOM_ALLOC);
}

namespace {

// A buffer's samples again, in memory `gate` watches.
GstBuffer* gated(GstBuffer* buffer, GstAllocator* allocator, Gate& gate) {
    const gsize size = gst_buffer_get_size(buffer);
    auto* memory = g_new0(GateMemory, 1);
    gst_memory_init(GST_MEMORY_CAST(memory), GST_MEMORY_FLAG_NO_SHARE, allocator, nullptr, size, 0, 0, size);
    memory->data = static_cast<guint8*>(g_malloc(size));
    gst_buffer_extract(buffer, 0, memory->data, size);
    memory->gate = &gate;
    GstBuffer* out = gst_buffer_new();
    gst_buffer_copy_into(out, buffer, GST_BUFFER_COPY_METADATA, 0, static_cast<gsize>(-1));
    gst_buffer_append_memory(out, GST_MEMORY_CAST(memory));
    return out;
}

struct GatedInput {
    GstAllocator* allocator;
    Gate* gate;
};

// A live tone into a new sink pad of `mixer`, playing, its buffers gated
// when `gate` is given. Returns the pad; `source` is its bin.
GstPad* addTone(GstElement* pipeline, GstElement* mixer, double frequency, GatedInput* gate, GstElement** source) {
    GstElement* bin =
        gst_parse_bin_from_description(("audiotestsrc is-live=true volume=0.1 freq=" + std::to_string(frequency) +
                                        " ! capsfilter caps=\"" + kF32 + "\"")
                                           .c_str(),
                                       TRUE, nullptr);
    REQUIRE(bin);
    gst_bin_add(GST_BIN(pipeline), bin);
    GstPad* in = gst_element_request_pad_simple(mixer, "sink_%u");
    GstPad* out = gst_element_get_static_pad(bin, "src");
    if (gate)
        gst_pad_add_probe(
            out, GST_PAD_PROBE_TYPE_BUFFER,
            [](GstPad*, GstPadProbeInfo* info, gpointer data) noexcept {
                auto* g = static_cast<GatedInput*>(data);
                GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
                GST_PAD_PROBE_INFO_DATA(info) = gated(buffer, g->allocator, *g->gate);
                gst_buffer_unref(buffer);
                return GST_PAD_PROBE_OK;
            },
            gate, nullptr);
    REQUIRE(gst_pad_link(out, in) == GST_PAD_LINK_OK);
    gst_object_unref(out);
    REQUIRE(gst_element_sync_state_with_parent(bin));
    *source = bin;
    return in;
}

} // namespace

// A peer leaving releases its mixer pad on a thread of its own (peer.cpp)
// while the mixer's thread mixes. GStreamer 1.22.0's audio aggregator
// mixes each pad with its locks dropped and no reference to it held (fixed
// upstream in 1.22.7), so a pad released then was read after it was freed
// (a room of 30, under ASan). Here the mixer is held while it mixes an
// input, and the input's pad is released meanwhile: the release must wait.
TEST_CASE("the room's mixer: an input released while it is mixed is released after", "[mixminus][release]") {
    gst_init(nullptr, nullptr);
    tessera::media::registerMixMinus();
    GstElement* pipeline = gst_pipeline_new("mixminus-release");
    GstElement* mixer = gst_element_factory_make("tesseramixminus", "mix");
    REQUIRE(mixer);
    g_object_set(mixer, "slots", 1u, nullptr);
    GstElement* sink = gst_element_factory_make("appsink", nullptr);
    GstCaps* f32 = gst_caps_from_string(kF32);
    g_object_set(sink, "sync", FALSE, "caps", f32, nullptr);
    gst_caps_unref(f32);
    gst_bin_add_many(GST_BIN(pipeline), mixer, sink, nullptr);
    REQUIRE(gst_element_link(mixer, sink));
    constexpr double kStaying = 440;
    constexpr double kLeaving = 660;
    GstElement* stayingSource = nullptr;
    GstPad* staying = addTone(pipeline, mixer, kStaying, nullptr, &stayingSource);
    REQUIRE(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    // Playing before any input leaves: until then the pipeline's own change
    // of state, finishing on a thread of its own, could set a source that
    // just stopped playing again.
    GstState state = GST_STATE_NULL;
    const GstStateChangeReturn playing = gst_element_get_state(pipeline, &state, nullptr, 10 * GST_SECOND);
    REQUIRE((playing == GST_STATE_CHANGE_SUCCESS || playing == GST_STATE_CHANGE_NO_PREROLL));
    REQUIRE(state == GST_STATE_PLAYING);

    Gate gate;
    GstAllocator* allocator = GST_ALLOCATOR(g_object_new(TEST_TYPE_GATE_ALLOCATOR, nullptr));
    GatedInput gating{allocator, &gate};
    constexpr int kLeaves = 3;
    for (int leave = 0; leave < kLeaves; ++leave) {
        INFO("input " << leave << " leaving");
        {
            std::lock_guard lock(gate.mutex);
            gate.armed = true;
            gate.released = false;
        }
        GstElement* source = nullptr;
        GstPad* pad = addTone(pipeline, mixer, kLeaving, &gating, &source);
        {
            std::unique_lock lock(gate.mutex);
            REQUIRE(gate.changed.wait_for(lock, std::chrono::seconds(10), [&] { return gate.mixing; }));
        }
        // As peer.cpp's teardown: the pad flushed, its source stopped, the pad released.
        gst_pad_send_event(pad, gst_event_new_flush_start());
        gst_element_set_state(source, GST_STATE_NULL);
        gst_element_release_request_pad(mixer, pad);
        gst_object_unref(pad);
        gst_bin_remove(GST_BIN(pipeline), source);
        std::unique_lock lock(gate.mutex);
        gate.released = true;
        gate.changed.notify_all();
        REQUIRE(gate.changed.wait_for(lock, std::chrono::seconds(10), [&] { return !gate.mixing; }));
        CHECK_FALSE(gate.releasedWhileMixing);
    }

    // And the mix goes on: the input that stayed is all of it, at its level,
    // in a second of output from 100 ms after the last release (the sink
    // keeps every buffer).
    const GstClockTime lastLeft = gst_element_get_current_running_time(pipeline);
    std::vector<float> after;
    while (after.size() < static_cast<std::size_t>(kRate) * 2) {
        GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 10 * GST_SECOND);
        REQUIRE(sample);
        GstBuffer* buffer = gst_sample_get_buffer(sample);
        if (GST_BUFFER_PTS(buffer) > lastLeft + 100 * GST_MSECOND) {
            const std::vector<float> mix = floats(buffer);
            after.insert(after.end(), mix.begin(), mix.end());
        }
        gst_sample_unref(sample);
    }
    const std::vector<double> frequencies = {kStaying, kLeaving};
    const auto levels = analysis::toneLevelsDbfs(after, 2, kRate, frequencies);
    INFO("after, " << kStaying << " Hz at " << levels[0] << " dBFS, " << kLeaving << " Hz at " << levels[1]);
    CHECK(levels[0] == Approx(kToneDbfs).margin(1));
    CHECK(levels[1] < kAbsentDbfs);
    gst_object_unref(staying);
    REQUIRE(gst_element_set_state(pipeline, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS);
    gst_object_unref(pipeline);
    gst_object_unref(allocator);
}
