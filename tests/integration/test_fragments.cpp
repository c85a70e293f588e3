// Every pipelines/*.pipeline fragment, loaded with the server's own loader
// (placeholders, required names) and run: each codec's encoder, payloader and
// decoder as one chain, the audio send and decode fragments as another, from
// a test source to EOS. The directory is globbed, so a fragment added later
// is run too, or fails here until this file knows how to run it.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <gst/gst.h>

#include "../../src/media/fragments.h"

namespace fs = std::filesystem;
using tessera::media::ElementRef;
using tessera::media::Fragments;
using tessera::media::FragmentVars;

namespace {

fs::path pipelinesDir() {
    fs::path dir = "pipelines";
    if (!fs::is_directory(dir)) dir = fs::path(TESSERA_SOURCE_DIR) / "pipelines";
    return dir;
}

std::vector<std::string> fragmentNames() {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(pipelinesDir()))
        if (entry.is_regular_file() && entry.path().extension() == ".pipeline")
            names.push_back(entry.path().stem().string());
    std::sort(names.begin(), names.end());
    return names;
}

// Small sizes: this runs on a shared 2-core machine.
constexpr int kTileWidth = 160, kTileHeight = 90;

FragmentVars testVars() {
    FragmentVars vars = tessera::media::sampleFragmentVars();
    vars["width"] = "320";
    vars["height"] = "180";
    vars["tile_width"] = std::to_string(kTileWidth);
    vars["tile_height"] = std::to_string(kTileHeight);
    return vars;
}

// One test chain: a source description, then fragments in order, then a fakesink.
struct Chain {
    std::string label;
    std::string source;
    std::vector<std::string> fragments;
    bool video = false;
};

struct RunResult {
    bool eos = false;
    std::string error;
    unsigned buffers = 0;
    unsigned levelMessages = 0;
    int width = 0, height = 0; // of the last buffer's caps (video)
};

RunResult run(const Chain& chain) {
    const Fragments fragments(pipelinesDir().string(), testVars(), chain.fragments);
    ElementRef pipeline = ElementRef::sink(gst_pipeline_new(chain.label.c_str()));
    GError* err = nullptr;
    GstElement* source = gst_parse_bin_from_description(chain.source.c_str(), TRUE, &err);
    INFO("test source: " << chain.source << ": " << (err ? err->message : "ok"));
    REQUIRE(source != nullptr);
    REQUIRE(err == nullptr);
    std::vector<GstElement*> elements = {source};
    for (const std::string& name : chain.fragments) {
        ElementRef bin = fragments.makeBin(name);
        elements.push_back(GST_ELEMENT(gst_object_ref(bin.get())));
    }
    GstElement* sink = gst_element_factory_make("fakesink", nullptr);
    g_object_set(sink, "sync", FALSE, nullptr);
    elements.push_back(sink);
    for (GstElement* e : elements) gst_bin_add(GST_BIN(pipeline.get()), e); // takes the (floating or extra) reference
    for (std::size_t i = 1; i < elements.size(); ++i) {
        INFO("linking " << GST_OBJECT_NAME(elements[i - 1]) << " to " << GST_OBJECT_NAME(elements[i]) << " in "
                        << chain.label);
        REQUIRE(gst_element_link(elements[i - 1], elements[i]));
    }

    RunResult result;
    std::atomic<unsigned> buffers{0};
    GstPad* sinkPad = gst_element_get_static_pad(sink, "sink");
    gst_pad_add_probe(
        sinkPad, GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad*, GstPadProbeInfo*, gpointer counter) noexcept {
            ++*static_cast<std::atomic<unsigned>*>(counter);
            return GST_PAD_PROBE_OK;
        },
        &buffers, nullptr);

    REQUIRE(gst_element_set_state(pipeline.get(), GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    GstBus* bus = gst_element_get_bus(pipeline.get());
    const GstClockTime deadline = 60 * GST_SECOND; // generous: the machine is shared
    const gint64 start = g_get_monotonic_time();
    while (!result.eos && result.error.empty()) {
        const GstClockTime left = deadline - std::min<GstClockTime>(deadline, (g_get_monotonic_time() - start) * 1000);
        if (left == 0) {
            result.error = "no EOS within 60 s";
            break;
        }
        GstMessage* message = gst_bus_timed_pop(bus, left);
        if (!message) continue;
        switch (GST_MESSAGE_TYPE(message)) {
        case GST_MESSAGE_EOS: result.eos = true; break;
        case GST_MESSAGE_ERROR: {
            GError* e = nullptr;
            gchar* debug = nullptr;
            gst_message_parse_error(message, &e, &debug);
            result.error = std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(message))) + ": " + e->message +
                           (debug ? std::string(" (") + debug + ")" : "");
            g_error_free(e);
            g_free(debug);
            break;
        }
        case GST_MESSAGE_ELEMENT:
            if (gst_structure_has_name(gst_message_get_structure(message), "level")) ++result.levelMessages;
            break;
        default: break;
        }
        gst_message_unref(message);
    }
    if (GstCaps* caps = gst_pad_get_current_caps(sinkPad)) {
        const GstStructure* s = gst_caps_get_structure(caps, 0);
        gst_structure_get_int(s, "width", &result.width);
        gst_structure_get_int(s, "height", &result.height);
        gst_caps_unref(caps);
    }
    gst_object_unref(sinkPad);
    gst_object_unref(bus);
    gst_element_set_state(pipeline.get(), GST_STATE_NULL);
    result.buffers = buffers.load();
    return result;
}

// Sorts every fragment into a chain that runs it; an unknown kind fails the
// test by name rather than being skipped.
std::vector<Chain> chainsFor(const std::vector<std::string>& names) {
    const std::set<std::string> all(names.begin(), names.end());
    std::vector<Chain> chains;
    std::set<std::string> covered;
    for (const std::string& name : names) {
        if (name.rfind("encode-", 0) != 0) continue;
        const std::string codec = name.substr(7);
        Chain chain{"video " + codec,
                    "videotestsrc num-buffers=30 pattern=smpte ! capsfilter "
                    "caps=\"video/x-raw,format=I420,width=320,height=180,framerate=30/1\"",
                    {name, "pay-" + codec, "decode-" + codec},
                    true};
        for (const std::string& f : chain.fragments) {
            INFO("pipelines/" << name << ".pipeline needs pipelines/" << f << ".pipeline to run with");
            CHECK(all.count(f) == 1);
        }
        if (std::all_of(chain.fragments.begin(), chain.fragments.end(),
                        [&](const std::string& f) { return all.count(f) == 1; }))
            chains.push_back(chain);
        covered.insert(chain.fragments.begin(), chain.fragments.end());
    }
    if (all.count("audio-encode") || all.count("pay-opus") || all.count("decode-opus")) {
        Chain chain{"audio",
                    "audiotestsrc num-buffers=50 samplesperbuffer=960 wave=sine ! capsfilter "
                    "caps=\"audio/x-raw,format=F32LE,rate=48000,channels=2,layout=interleaved\"",
                    {"audio-encode", "pay-opus", "decode-opus"},
                    false};
        for (const std::string& f : chain.fragments) CHECK(all.count(f) == 1);
        if (all.count("audio-encode") && all.count("pay-opus") && all.count("decode-opus")) chains.push_back(chain);
        covered.insert(chain.fragments.begin(), chain.fragments.end());
    }
    for (const std::string& name : names) {
        // Recorders and live fragments: their own tests below.
        if (covered.count(name) || name.rfind("record-", 0) == 0 || name.rfind("live-", 0) == 0) continue;
        FAIL_CHECK("pipelines/" << name
                                << ".pipeline: unknown kind of fragment; teach "
                                   "tests/integration/test_fragments.cpp how to run it");
    }
    return chains;
}

// Plays the pipeline to its EOS or first error (60 s at most); returns the
// error's message, "" at EOS. Leaves it in NULL.
std::string playToEnd(GstElement* pipeline) {
    REQUIRE(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    GstBus* bus = gst_element_get_bus(pipeline);
    GstMessage* message =
        gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND, GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    gst_object_unref(bus);
    std::string error = message ? "" : "no EOS within 60 s";
    if (message && GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
        GError* e = nullptr;
        gst_message_parse_error(message, &e, nullptr);
        error = e ? e->message : "error";
        g_clear_error(&e);
    }
    if (message) gst_message_unref(message);
    gst_element_set_state(pipeline, GST_STATE_NULL);
    return error;
}

} // namespace

TEST_CASE("every pipeline fragment loads and runs to EOS", "[fragments]") {
    gst_init(nullptr, nullptr);
    const auto names = fragmentNames();
    REQUIRE(names.size() >= 5);
    const auto chains = chainsFor(names);
    REQUIRE_FALSE(chains.empty());
    for (const Chain& chain : chains) {
        std::string files;
        for (const auto& f : chain.fragments) files += " " + f + ".pipeline";
        INFO(chain.label << ":" << files);
        const RunResult result = run(chain);
        CHECK(result.error.empty());
        CHECK(result.eos);
        CHECK(result.buffers > 0);
        if (chain.video) {
            // The decode fragment normalises to the tile size.
            CHECK(result.width == kTileWidth);
            CHECK(result.height == kTileHeight);
        } else {
            CHECK(result.levelMessages > 0); // decode-opus's level drives the active speaker
        }
    }
}

// A recorder fragment has two inputs, found by name (`video`, `audio`), and
// writes files through `sink` (a splitmuxsink): fed from test sources, it
// must write a file and end with EOS, as the server's recorder does.
TEST_CASE("every recorder fragment records test sources to a file", "[fragments][recording]") {
    gst_init(nullptr, nullptr);
    std::vector<std::string> recorders;
    for (const auto& name : fragmentNames())
        if (name.rfind("record-", 0) == 0) recorders.push_back(name);
    REQUIRE(recorders.size() >= 3);
    gchar* made = g_dir_make_tmp("tessera-fragments-XXXXXX", nullptr);
    REQUIRE(made);
    const fs::path dir = made;
    g_free(made);
    FragmentVars vars = testVars();
    vars["record_width"] = "320";
    vars["record_height"] = "180";
    const Fragments fragments(pipelinesDir().string(), vars, recorders);
    for (const std::string& name : recorders) {
        INFO("pipelines/" << name << ".pipeline");
        const fs::path file = dir / (name + ".out");
        ElementRef pipeline = ElementRef::sink(gst_pipeline_new(name.c_str()));
        ElementRef recorder = fragments.makeBin(name, false);
        GstElement* video = gst_parse_bin_from_description(
            "videotestsrc num-buffers=60 ! video/x-raw,format=I420,width=320,height=180,framerate=30/1", TRUE, nullptr);
        GstElement* audio =
            gst_parse_bin_from_description("audiotestsrc num-buffers=100 samplesperbuffer=960 ! "
                                           "audio/x-raw,format=F32LE,rate=48000,channels=2,layout=interleaved",
                                           TRUE, nullptr);
        REQUIRE(video);
        REQUIRE(audio);
        gst_bin_add_many(GST_BIN(pipeline.get()), GST_ELEMENT(gst_object_ref(recorder.get())), video, audio, nullptr);
        GstElement* sink = gst_bin_get_by_name(GST_BIN(recorder.get()), "sink");
        REQUIRE(sink);
        g_object_set(sink, "location", file.c_str(), nullptr);
        gst_object_unref(sink);
        for (auto [source, target] : {std::pair{video, "video"}, {audio, "audio"}}) {
            GstElement* first = gst_bin_get_by_name(GST_BIN(recorder.get()), target);
            REQUIRE(first);
            GstPad* in = gst_element_get_static_pad(first, "sink");
            GstPad* ghost = gst_ghost_pad_new(target, in);
            gst_pad_set_active(ghost, TRUE);
            gst_element_add_pad(recorder.get(), ghost);
            GstPad* out = gst_element_get_static_pad(source, "src");
            CHECK(gst_pad_link(out, ghost) == GST_PAD_LINK_OK);
            gst_object_unref(out);
            gst_object_unref(in);
            gst_object_unref(first);
        }
        const std::string error = playToEnd(pipeline.get());
        CHECK(error.empty());
        CHECK(fs::exists(file));
        CHECK(fs::file_size(file) > 10'000);
    }
    fs::remove_all(dir);
}

// The live fragments: live-encode fed from test sources, its tees feeding
// live-hls (which must write a playlist and segments) and live-rtmp (pointed
// at a port nobody listens on: it must run up to its connection, refused).
TEST_CASE("the live fragments encode test sources into HLS files and an RTMP push", "[fragments][live]") {
    gst_init(nullptr, nullptr);
    gchar* made = g_dir_make_tmp("tessera-live-XXXXXX", nullptr);
    REQUIRE(made);
    const fs::path dir = made;
    g_free(made);
    FragmentVars vars = testVars();
    vars["live_width"] = "320";
    vars["live_height"] = "180";
    vars["live_keyframe_interval"] = "30";
    vars["live_segment_seconds"] = "1";
    const Fragments fragments(pipelinesDir().string(), vars, {"live-encode", "live-hls", "live-rtmp"});
    for (const bool rtmp : {false, true}) {
        INFO((rtmp ? "live-rtmp" : "live-hls"));
        ElementRef pipeline = ElementRef::sink(gst_pipeline_new("live"));
        ElementRef encoder = fragments.makeBin("live-encode", false);
        ElementRef target = fragments.makeBin(rtmp ? "live-rtmp" : "live-hls", false);
        GstElement* video = gst_parse_bin_from_description(
            "videotestsrc num-buffers=90 ! video/x-raw,format=I420,width=320,height=180,framerate=30/1", TRUE, nullptr);
        GstElement* audio =
            gst_parse_bin_from_description("audiotestsrc num-buffers=150 samplesperbuffer=960 ! "
                                           "audio/x-raw,format=F32LE,rate=48000,channels=2,layout=interleaved",
                                           TRUE, nullptr);
        REQUIRE(video);
        REQUIRE(audio);
        gst_bin_add_many(GST_BIN(pipeline.get()), GST_ELEMENT(gst_object_ref(encoder.get())),
                         GST_ELEMENT(gst_object_ref(target.get())), video, audio, nullptr);
        GstElement* sink = gst_bin_get_by_name(GST_BIN(target.get()), "sink");
        REQUIRE(sink);
        if (rtmp) {
            g_object_set(sink, "location", "rtmp://127.0.0.1:1/live/test", nullptr);
        } else {
            g_object_set(sink, "location", (dir / "segment%05d.ts").c_str(), "playlist-location",
                         (dir / "index.m3u8").c_str(), nullptr);
        }
        gst_object_unref(sink);
        // Links a request pad of the tee `from` in `fromBin` to the element `to` in `toBin`, through ghost pads.
        auto link = [](GstElement* fromBin, const char* from, GstElement* toBin, const char* to) {
            GstElement* out = gst_bin_get_by_name(GST_BIN(fromBin), from);
            GstElement* in = gst_bin_get_by_name(GST_BIN(toBin), to);
            REQUIRE(out);
            REQUIRE(in);
            GstPad* src = gst_element_request_pad_simple(out, "src_%u");
            GstPad* srcGhost = gst_ghost_pad_new(nullptr, src);
            gst_pad_set_active(srcGhost, TRUE);
            gst_element_add_pad(fromBin, srcGhost);
            GstPad* sinkPad = gst_element_get_static_pad(in, "sink");
            GstPad* sinkGhost = gst_ghost_pad_new(nullptr, sinkPad);
            gst_pad_set_active(sinkGhost, TRUE);
            gst_element_add_pad(toBin, sinkGhost);
            CHECK(gst_pad_link(srcGhost, sinkGhost) == GST_PAD_LINK_OK);
            for (GstPad* p : {src, sinkPad}) gst_object_unref(p);
            gst_object_unref(out);
            gst_object_unref(in);
        };
        for (auto [source, name] : {std::pair{video, "video"}, {audio, "audio"}}) {
            GstElement* in = gst_bin_get_by_name(GST_BIN(encoder.get()), name);
            GstPad* sinkPad = gst_element_get_static_pad(in, "sink");
            GstPad* ghost = gst_ghost_pad_new(nullptr, sinkPad);
            gst_pad_set_active(ghost, TRUE);
            gst_element_add_pad(encoder.get(), ghost);
            GstPad* out = gst_element_get_static_pad(source, "src");
            CHECK(gst_pad_link(out, ghost) == GST_PAD_LINK_OK);
            for (GstPad* p : {out, sinkPad}) gst_object_unref(p);
            gst_object_unref(in);
        }
        link(encoder.get(), "video_out", target.get(), "video");
        link(encoder.get(), "audio_out", target.get(), "audio");
        const std::string error = playToEnd(pipeline.get());
        INFO("error: " << error);
        if (rtmp) {
            CHECK(error.find("refused") != std::string::npos);
        } else {
            CHECK(error.empty());
            CHECK(fs::exists(dir / "index.m3u8"));
            CHECK(fs::exists(dir / "segment00001.ts"));
        }
    }
    fs::remove_all(dir);
}
