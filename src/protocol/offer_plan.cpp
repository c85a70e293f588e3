#include "tessera/protocol/offer_plan.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <map>

#include "tessera/protocol/error.h"

namespace tessera::protocol {
namespace {

std::string upper(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return out;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    return s;
}

// One m= section, as much of it as planning needs.
struct Section {
    std::string media;
    unsigned port = 0;
    std::vector<int> formats;                      // payload types, in offer order
    std::map<std::string, std::string> attributes; // a=name[:value], first of each name
    std::map<int, std::string> encodings;          // pt -> rtpmap encoding name, upper case
    std::map<int, std::string> fmtp;               // pt -> fmtp parameters
    int transportCcId = -1;                        // a=extmap id of transport-wide-cc, -1: none
    std::set<std::uint32_t> ssrcs;                 // a=ssrc:<ssrc> ..., every one
};

std::vector<Section> parseSections(std::string_view sdp) {
    std::vector<Section> sections;
    while (!sdp.empty()) {
        const auto eol = sdp.find('\n');
        const std::string_view line = trim(sdp.substr(0, eol));
        sdp.remove_prefix(eol == std::string_view::npos ? sdp.size() : eol + 1);
        if (line.size() < 2 || line[1] != '=') continue;
        const std::string_view value = line.substr(2);
        if (line[0] == 'm') {
            // m=<media> <port>[/<count>] <proto> <fmt> ...
            Section s;
            std::vector<std::string_view> words;
            for (std::size_t at = 0; at < value.size();) {
                const auto end = std::min(value.find(' ', at), value.size());
                if (end > at) words.push_back(value.substr(at, end - at));
                at = end + 1;
            }
            if (!words.empty()) s.media = std::string(words[0]);
            if (words.size() > 1)
                s.port = static_cast<unsigned>(std::strtoul(std::string(words[1]).c_str(), nullptr, 10));
            for (std::size_t i = 3; i < words.size(); ++i)
                s.formats.push_back(std::atoi(std::string(words[i]).c_str()));
            sections.push_back(std::move(s));
        } else if (line[0] == 'a' && !sections.empty()) {
            Section& s = sections.back();
            const auto colon = value.find(':');
            const std::string name(value.substr(0, colon));
            const std::string_view rest = colon == std::string_view::npos ? "" : value.substr(colon + 1);
            s.attributes.emplace(name, rest);
            if (name == "ssrc") {
                // a=ssrc:<ssrc> <attribute>[:<value>], ssrc a 32-bit number
                const std::string digits(rest.substr(0, rest.find(' ')));
                char* end = nullptr;
                const unsigned long long ssrc = std::strtoull(digits.c_str(), &end, 10);
                if (!digits.empty() && *end == '\0' && ssrc <= UINT32_MAX)
                    s.ssrcs.insert(static_cast<std::uint32_t>(ssrc));
                continue;
            }
            if (name == "extmap") {
                // a=extmap:<id>[/<direction>] <uri> [<attributes>]; ids are 1-14
                // (one-byte headers), or up to 255 with extmap-allow-mixed.
                const auto space = rest.find(' ');
                if (space == std::string_view::npos) continue;
                std::string_view uri = trim(rest.substr(space + 1));
                uri = uri.substr(0, uri.find(' '));
                const int id = std::atoi(std::string(rest.substr(0, space)).c_str());
                if (uri == kTransportCcUri && id >= 1 && id <= 255) s.transportCcId = id;
                continue;
            }
            if (name != "rtpmap" && name != "fmtp") continue;
            // a=rtpmap:<pt> <encoding>/<clock>[/<channels>], a=fmtp:<pt> <parameters>
            const auto space = rest.find(' ');
            if (space == std::string_view::npos) continue;
            const int pt = std::atoi(std::string(rest.substr(0, space)).c_str());
            const std::string_view tail = trim(rest.substr(space + 1));
            if (name == "rtpmap")
                s.encodings.emplace(pt, upper(tail.substr(0, tail.find('/'))));
            else
                s.fmtp.emplace(pt, std::string(tail));
        }
    }
    return sections;
}

// The value of `key` in fmtp parameters "a=1;b=2" (keys in any case).
std::optional<std::string> fmtpParameter(const std::string& params, std::string_view key) {
    std::string_view rest = params;
    while (!rest.empty()) {
        const auto end = std::min(rest.find(';'), rest.size());
        const std::string_view item = trim(rest.substr(0, end));
        rest.remove_prefix(std::min(end + 1, rest.size()));
        const auto eq = item.find('=');
        if (eq != std::string_view::npos && upper(item.substr(0, eq)) == upper(key))
            return std::string(item.substr(eq + 1));
    }
    return std::nullopt;
}

// How an H.264 profile-level-id's profile fits the constrained-baseline
// stream the server sends. The profile is the profile_idc byte with the
// constraint flags (RFC 6184 8.1, read as libwebrtc reads it), not the text:
// "42e01f" from Chromium and "42c01f" from x264 are both constrained baseline.
enum class H264Fit { None, Baseline, ConstrainedBaseline };

H264Fit h264Fit(const std::string& profileLevelId) {
    if (profileLevelId.size() != 6 ||
        !std::all_of(profileLevelId.begin(), profileLevelId.end(), [](unsigned char c) { return std::isxdigit(c); }))
        return H264Fit::None;
    const auto idc = std::strtoul(profileLevelId.substr(0, 2).c_str(), nullptr, 16);
    const auto flags = std::strtoul(profileLevelId.substr(2, 2).c_str(), nullptr, 16);
    if ((flags & 0x0f) != 0) return H264Fit::None; // reserved bits
    const bool set0 = flags & 0x80, set1 = flags & 0x40;
    // Constrained baseline: baseline with constraint_set1 (a stream main
    // decoders take too), or main / extended constrained down to it.
    if ((idc == 0x42 && set1) || (idc == 0x4d && set0) || (idc == 0x58 && set0 && set1))
        return H264Fit::ConstrainedBaseline;
    // Plain baseline decoders decode constrained baseline as well.
    return idc == 0x42 ? H264Fit::Baseline : H264Fit::None;
}

// The payload type of `encoding` (upper case) the server answers with, or -1.
// VP8: the first. VP9: the first of profile 0 (no profile-id means 0; the
// encoders take 8-bit 4:2:0, and a profile 2 decoder is not a profile 0
// one). H.264: packetization-mode 1 only (the payloader sends FU-A and
// STAP-A; mode 0 would need every NAL unit under the MTU from an encoder
// shared by every receiver), preferring a constrained-baseline payload type
// to a baseline one, so that the answer names the profile the server sends.
int findPayload(const Section& s, const std::string& encoding, std::string* profileLevelId) {
    int baseline = -1;
    std::string baselineProfile;
    for (int pt : s.formats) {
        auto it = s.encodings.find(pt);
        if (it == s.encodings.end() || it->second != encoding) continue;
        auto params = s.fmtp.find(pt);
        if (encoding == "VP9") {
            if (params == s.fmtp.end() || fmtpParameter(params->second, "profile-id").value_or("0") == "0") return pt;
            continue;
        }
        if (encoding != "H264") return pt;
        if (params == s.fmtp.end() || fmtpParameter(params->second, "packetization-mode") != "1") continue;
        const std::string profile = fmtpParameter(params->second, "profile-level-id").value_or("");
        const H264Fit fit = h264Fit(profile);
        if (fit == H264Fit::ConstrainedBaseline) {
            *profileLevelId = profile;
            return pt;
        }
        if (fit == H264Fit::Baseline && baseline < 0) {
            baseline = pt;
            baselineProfile = profile;
        }
    }
    *profileLevelId = baselineProfile;
    return baseline;
}

MediaDirection offerDirection(const Section& s) {
    // Port 0 rejects an m-line, except with bundle-only (max-bundle offerers
    // such as webrtcbin itself send that for every m-line but the first).
    const auto has = [&s](const char* name) { return s.attributes.count(name) > 0; };
    if ((s.port == 0 && !has("bundle-only")) || has("inactive")) return MediaDirection::Inactive;
    if (has("sendonly")) return MediaDirection::SendOnly;
    if (has("recvonly")) return MediaDirection::RecvOnly;
    return MediaDirection::SendRecv;
}

bool clientSends(MediaDirection d) { return d == MediaDirection::SendRecv || d == MediaDirection::SendOnly; }
bool clientReceives(MediaDirection d) { return d == MediaDirection::SendRecv || d == MediaDirection::RecvOnly; }

// Ours, answering the client's.
MediaDirection answerDirection(MediaDirection d, bool weSend) {
    const bool recv = clientSends(d);
    const bool send = weSend && clientReceives(d);
    if (send && recv) return MediaDirection::SendRecv;
    if (send) return MediaDirection::SendOnly;
    if (recv) return MediaDirection::RecvOnly;
    return MediaDirection::Inactive;
}

} // namespace

OfferPlan planOffer(std::string_view sdp, const OfferState& before, const std::vector<std::string>& videoCodecs) {
    const std::vector<Section> sections = parseSections(sdp);
    const auto count = static_cast<unsigned>(sections.size());
    if (count == 0) throw Error(ErrorCode::BadRequest, "offer.sdp: not an SDP offer with media sections");
    if (count < before.mlines) throw Error(ErrorCode::BadRequest, "offer.sdp: a renegotiation may not remove m-lines");
    if (count > kMaxMlines)
        throw Error(ErrorCode::BadRequest, "offer.sdp: " + std::to_string(count) + " m-lines, over the " +
                                               std::to_string(kMaxMlines) + " an offer may have");

    std::string videoNames; // "VP8, H264" for error messages
    for (const std::string& codec : videoCodecs) videoNames += (videoNames.empty() ? "" : ", ") + upper(codec);
    OfferPlan plan;
    OfferState& st = plan.state;
    st = before;
    st.ssrcMlines.clear(); // each offer lists every m-line's current SSRCs
    for (unsigned i = 0; i < count; ++i) {
        const Section& s = sections[i];
        for (const std::uint32_t ssrc : s.ssrcs) st.ssrcMlines.emplace(ssrc, i);
        auto mid = s.attributes.find("mid");
        plan.mids.push_back(mid == s.attributes.end() ? "" : mid->second);
        const MediaDirection dir = offerDirection(s);
        const bool isAudio = s.media == "audio", isVideo = s.media == "video";
        const int index = static_cast<int>(i);
        // The first video m-line is the camera; any other one the client
        // sends on is a screen share (docs/protocol.md, Media).
        if (isVideo && st.cameraMline < 0) st.cameraMline = index;
        if (isVideo && index != st.cameraMline && clientSends(dir)) plan.shares.insert(index);
        if (i < before.mlines || (!isAudio && !isVideo)) continue;
        std::string profileLevelId, codec;
        int pt = -1;
        if (isAudio) {
            pt = findPayload(s, "OPUS", &profileLevelId);
        } else {
            // The server's preference decides, not the offer's order: it keeps
            // the encoders a room runs to the fewest codecs.
            for (auto c = videoCodecs.begin(); c != videoCodecs.end() && pt < 0; ++c) {
                pt = findPayload(s, upper(*c), &profileLevelId);
                if (pt >= 0) codec = lower(*c);
            }
        }
        if (pt < 0 && dir != MediaDirection::Inactive)
            throw UnsupportedCodec(
                "offer.sdp: m-line " + std::to_string(i) + " (" + s.media + ") offers " +
                (isAudio ? "no Opus; this server mixes Opus"
                         : "none of the video codecs this server is configured for (" + videoNames +
                               "; H.264 needs packetization-mode=1 and a (constrained) baseline profile, "
                               "VP9 profile 0)"));
        const bool send =
            clientReceives(dir) && pt >= 0 && ((isAudio && st.audioMline < 0) || (isVideo && index == st.cameraMline));
        if (send && isAudio) {
            st.audioMline = index;
            st.audioPt = pt;
        } else if (send) {
            st.videoMline = index;
            st.videoPt = pt;
        }
        if (index == st.cameraMline) st.cameraCodec = codec;
        plan.added.push_back({i, s.media, pt, std::move(codec), std::move(profileLevelId), answerDirection(dir, send),
                              send, s.transportCcId});
    }
    if (plan.shares.size() > 1)
        throw Error(ErrorCode::BadRequest, "offer.sdp: m-lines " + std::to_string(*plan.shares.begin()) + " and " +
                                               std::to_string(*std::next(plan.shares.begin())) +
                                               " both send a screen share; one at a time");
    if (st.cameraMline < 0 && st.audioMline < 0 && plan.added.empty() && before.mlines == 0)
        throw Error(ErrorCode::BadRequest, "offer.sdp: needs an audio or a video m-line");
    st.mlines = count;
    return plan;
}

OfferMedia offerMedia(std::string_view sdp) {
    OfferMedia media;
    for (const Section& s : parseSections(sdp)) {
        if (s.media != "audio" && s.media != "video") continue;
        const MediaDirection dir = offerDirection(s);
        media.sends = media.sends || clientSends(dir);
        media.receives = media.receives || clientReceives(dir);
    }
    return media;
}

} // namespace tessera::protocol
