#include "fragments.h"

#include <fstream>
#include <regex>
#include <sstream>
#include <vector>

#include "tessera/media/engine.h"
#include "tessera/protocol/error.h"

namespace tessera::media {
namespace {

// Elements the code finds by name in each kind of fragment (by file prefix).
const std::vector<std::pair<std::string, std::vector<std::string>>> kRequiredNames = {
    {"encode-", {"encoder"}},
    {"pay-", {"pay"}},
    {"audio-encode", {"encoder"}},
    {"decode-opus", {"level"}},
    {"decode-vp8", {"scale", "tile"}},
    {"decode-vp9", {"scale", "tile"}},
    {"decode-h264", {"scale", "tile"}},
    {"record-", {"video", "audio", "sink"}},
    {"live-encode", {"video", "audio", "video_out", "audio_out"}},
    {"live-hls", {"video", "audio", "sink"}},
    {"live-rtmp", {"video", "audio", "sink"}},
};

std::string baseName(const std::string& path) {
    auto slash = path.find_last_of('/');
    std::string file = slash == std::string::npos ? path : path.substr(slash + 1);
    auto dot = file.rfind(".pipeline");
    return dot == std::string::npos ? file : file.substr(0, dot);
}

[[noreturn]] void fail(const std::string& path, unsigned line, const std::string& why) {
    throw Error(ErrorCode::Internal, path + (line ? ":" + std::to_string(line) : "") + ": " + why);
}

// The first line of `lines` that mentions `token`, 1-based; 0 when none does.
unsigned lineOf(const std::vector<std::string>& lines, const std::string& token) {
    if (token.empty()) return 0;
    for (size_t i = 0; i < lines.size(); ++i)
        if (lines[i].find(token) != std::string::npos) return static_cast<unsigned>(i + 1);
    return 0;
}

} // namespace

std::string loadFragment(const std::string& path, const FragmentVars& vars) {
    std::ifstream in(path);
    if (!in) fail(path, 0, "cannot read the file");
    std::vector<std::string> lines;
    std::string line, text;
    static const std::regex placeholder(R"(\$\{([A-Za-z0-9_]*)\})");
    while (std::getline(in, line)) {
        lines.push_back(line);
        auto hash = line.find('#');
        std::string code = hash == std::string::npos ? line : line.substr(0, hash);
        std::string filled;
        auto last = code.cbegin();
        for (std::sregex_iterator m(code.begin(), code.end(), placeholder), end; m != end; ++m) {
            auto it = vars.find((*m)[1].str());
            if (it == vars.end())
                fail(path, static_cast<unsigned>(lines.size()), "unknown placeholder " + (*m)[0].str());
            filled.append(last, (*m)[0].first);
            filled += it->second;
            last = (*m)[0].second;
        }
        filled.append(last, code.cend());
        text += filled + "\n";
    }
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) fail(path, 0, "the fragment is empty");

    GError* raw = nullptr;
    GstElement* bin =
        gst_parse_bin_from_description_full(text.c_str(), TRUE, nullptr, GST_PARSE_FLAG_FATAL_ERRORS, &raw);
    GErrorPtr err(raw);
    if (!bin || err) {
        if (bin) gst_object_unref(gst_object_ref_sink(bin));
        std::string msg = err ? err->message : "could not be parsed";
        // GStreamer quotes the offending element or property: point at its line.
        std::smatch quoted;
        std::string token;
        if (std::regex_search(msg, quoted, std::regex(R"re("([^"]+)")re"))) token = quoted[1].str();
        fail(path, lineOf(lines, token), msg);
    }
    auto owned = ElementRef::sink(bin);
    const std::string name = baseName(path);
    for (const auto& [prefix, names] : kRequiredNames) {
        if (name.rfind(prefix, 0) != 0) continue;
        for (const auto& required : names) {
            GstElement* e = gst_bin_get_by_name(GST_BIN(owned.get()), required.c_str());
            if (!e) fail(path, 0, "needs an element with name=" + required + " (the server looks it up)");
            gst_object_unref(e);
        }
    }
    return text;
}

FragmentVars sampleFragmentVars() {
    return {{"bitrate", "1500"},
            {"bitrate_bps", "1500000"},
            {"keyframe_interval", "60"},
            {"keyframe_max_percent", "450"},
            {"framerate", "30"},
            {"width", "1280"},
            {"height", "720"},
            {"tile_width", "640"},
            {"tile_height", "360"},
            {"audio_bitrate", "64000"},
            {"record_width", "1280"},
            {"record_height", "720"},
            {"record_bitrate", "2000"},
            {"record_bitrate_bps", "2000000"},
            {"record_audio_bitrate", "128000"},
            {"record_keyframe_interval", "60"},
            {"record_reserved_duration", "3600000000000"},
            {"live_width", "1280"},
            {"live_height", "720"},
            {"live_bitrate", "2000"},
            {"live_audio_bitrate", "128000"},
            {"live_keyframe_interval", "60"},
            {"live_segment_seconds", "2"},
            {"live_playlist_length", "6"},
            {"live_max_files", "8"}};
}

void validateFragmentFile(const std::string& path) { (void)loadFragment(path, sampleFragmentVars()); }

Fragments::Fragments(const std::string& dir, const FragmentVars& vars, const std::vector<std::string>& names) {
    for (const auto& name : names) load(name, dir + "/" + name + ".pipeline", vars);
}

void Fragments::load(const std::string& key, const std::string& path, const FragmentVars& vars) {
    m_texts.insert_or_assign(key, loadFragment(path, vars));
}

ElementRef Fragments::makeBin(const std::string& name, bool ghostUnlinked) const {
    auto it = m_texts.find(name);
    if (it == m_texts.end()) throw Error(ErrorCode::Internal, "pipeline fragment '" + name + "' was not loaded");
    GError* raw = nullptr;
    GstElement* bin = gst_parse_bin_from_description(it->second.c_str(), ghostUnlinked, &raw);
    GErrorPtr err(raw);
    if (!bin) throw Error(ErrorCode::Internal, name + ": " + (err ? err->message : "parse failed"));
    return ElementRef::sink(bin);
}

} // namespace tessera::media
