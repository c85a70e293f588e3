// src/opus/modes.cpp: libopus, loaded as GStreamer loads it (a plugin's
// dependency, local to it), takes its mode lookups from Tessera's cache, and
// Opus still codes as before. The unit tests link modes_dep as the
// executables do, and not libopus itself (linking it would export the
// replacement by itself and hide a missing modes.dynlist).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include <dlfcn.h>
#include <gst/gst.h>
#include <opus/opus_custom.h>

#include "../../src/opus/modes.h"

namespace {

// Runs `description` to its end; returns the loudest RMS (dBFS, first
// channel) its level element posted.
double loudest(const char* description) {
    gst_init(nullptr, nullptr);
    GError* error = nullptr;
    GstElement* pipeline = gst_parse_launch(description, &error);
    REQUIRE(pipeline != nullptr);
    REQUIRE(error == nullptr);
    REQUIRE(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    GstBus* bus = gst_element_get_bus(pipeline);
    double rms = -200;
    for (;;) {
        GstMessage* message = gst_bus_timed_pop_filtered(
            bus, 30 * GST_SECOND,
            static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_ELEMENT));
        REQUIRE(message != nullptr);
        const GstMessageType type = GST_MESSAGE_TYPE(message);
        if (type == GST_MESSAGE_ELEMENT && gst_message_has_name(message, "level")) {
            const GValue* list = gst_structure_get_value(gst_message_get_structure(message), "rms");
            G_GNUC_BEGIN_IGNORE_DEPRECATIONS // GValueArray: what level posts
                GValueArray* values = static_cast<GValueArray*>(g_value_get_boxed(list));
            const double value = g_value_get_double(g_value_array_get_nth(values, 0));
            if (!std::isnan(value)) rms = std::max(rms, value); // NaN: the empty interval at the end
            G_GNUC_END_IGNORE_DEPRECATIONS
        }
        gst_message_unref(message);
        if (type == GST_MESSAGE_ERROR) FAIL("the pipeline failed");
        if (type != GST_MESSAGE_ELEMENT) break;
    }
    gst_object_unref(bus);
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
    return rms;
}

} // namespace

TEST_CASE("GStreamer's opusenc and opusdec take the 48 kHz mode from the cache and still code a tone", "[opus]") {
    const std::uint64_t before = tessera::opus::cachedModeLookups();
    // The server's decode (mono Opus to stereo) of a 440 Hz tone at 0.3.
    const double rms = loudest("audiotestsrc num-buffers=50 samplesperbuffer=960 freq=440 volume=0.3 "
                               "! audio/x-raw,rate=48000,channels=1 ! opusenc frame-size=20 ! opusdec "
                               "! audio/x-raw,channels=2 ! level interval=100000000 ! fakesink");
    // A sine at 0.3 is 20 log10(0.3 / sqrt 2) = -13.5 dBFS RMS; Opus keeps it.
    CHECK(std::abs(rms - -13.5) < 1.0);
    // Each packet looked its mode up (the multistream sizes): through us.
    CHECK(tessera::opus::cachedModeLookups() - before >= 100);
}

TEST_CASE("an Opus mode other than 48 kHz with 20 ms frames is libopus's own", "[opus]") {
    const std::uint64_t before = tessera::opus::cachedModeLookups();
    int error = -1;
    // A custom mode: 44.1 kHz, 512 samples (libopus builds it; Debian
    // enables custom modes).
    OpusCustomMode* mode = opus_custom_mode_create(44100, 512, &error);
    REQUIRE(mode != nullptr);
    CHECK(error == OPUS_OK);
    void* libopus = dlopen("libopus.so.0", RTLD_LAZY | RTLD_LOCAL);
    REQUIRE(libopus != nullptr);
    auto destroy = reinterpret_cast<void (*)(OpusCustomMode*)>(dlsym(libopus, "opus_custom_mode_destroy"));
    REQUIRE(destroy != nullptr);
    destroy(mode);
    dlclose(libopus);
    // A size no mode has: libopus's own error.
    error = OPUS_OK;
    CHECK(opus_custom_mode_create(48000, 7, &error) == nullptr);
    CHECK(error == OPUS_BAD_ARG);
    CHECK(tessera::opus::cachedModeLookups() == before);
}
