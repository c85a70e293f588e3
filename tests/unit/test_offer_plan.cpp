// SDP offer planning against offers recorded from real browsers
// (tests/data/record-offers.mjs) and small hand-made ones for the edges.
#include <fstream>
#include <functional>
#include <sstream>

#include <catch2/catch.hpp>

#include "tessera/protocol/error.h"
#include "tessera/protocol/offer_plan.h"

using namespace tessera;
using namespace tessera::protocol;

namespace {

std::string offer(const std::string& name) {
    std::ifstream in(std::string(TESSERA_SOURCE_DIR "/tests/data/") + name);
    REQUIRE(in);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// A minimal offer of the given m= lines, each followed by its attributes.
std::string sdp(std::initializer_list<std::string> sections) {
    std::string text = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
    for (const auto& s : sections) text += s;
    return text;
}
const std::string kAudio = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:a\r\na=rtpmap:111 opus/48000/2\r\n";
const std::string kVideo = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\na=rtpmap:96 VP8/90000\r\n";
const std::string kShare = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:s\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n";

bool badRequest(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.code() == ErrorCode::BadRequest;
    }
    return false;
}

} // namespace

TEST_CASE("offer plan: a camera and microphone from Chromium and Firefox", "[offer]") {
    struct Case {
        const char* file;
        int opus, vp8, transportCc; // the video line's transport-wide-cc extmap id
    };
    for (const Case& c : {Case{"offer-chromium-sendrecv.sdp", 111, 96, 3},
                          Case{"offer-firefox-sendrecv.sdp", 109, 120, 7}, Case{"offer-chromium.sdp", 111, 96, -1}}) {
        INFO(c.file);
        const OfferPlan plan = planOffer(offer(c.file), {}, {"vp8"});
        CHECK(plan.mids == std::vector<std::string>{"0", "1"});
        CHECK(plan.shares.empty());
        CHECK(plan.state.mlines == 2);
        CHECK((plan.state.audioMline == 0 && plan.state.audioPt == c.opus));
        CHECK((plan.state.cameraMline == 1 && plan.state.videoMline == 1 && plan.state.videoPt == c.vp8));
        REQUIRE(plan.added.size() == 2);
        CHECK((plan.added[0].media == "audio" && plan.added[0].pt == c.opus && plan.added[0].send &&
               plan.added[0].direction == MediaDirection::SendRecv));
        CHECK((plan.added[1].media == "video" && plan.added[1].pt == c.vp8 && plan.added[1].send &&
               plan.added[1].direction == MediaDirection::SendRecv));
        CHECK(plan.added[1].transportCcId == c.transportCc);
    }
}

TEST_CASE("offer plan: the transport-wide-cc extmap id, and only a valid one", "[offer]") {
    const std::string uri(kTransportCcUri);
    auto idOf = [](const std::string& extmap) {
        return planOffer(sdp({kVideo + extmap}), {}, {"vp8"}).added.at(0).transportCcId;
    };
    CHECK(idOf("a=extmap:5 " + uri + "\r\n") == 5);
    CHECK(idOf("a=extmap:2/sendrecv " + uri + " x\r\n") == 2);
    CHECK(idOf("a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n") == -1);
    CHECK(idOf("a=extmap:0 " + uri + "\r\n") == -1);
    CHECK(idOf("a=extmap:256 " + uri + "\r\n") == -1);
    CHECK(idOf("a=extmap:" + uri + "\r\n") == -1);
}

TEST_CASE("offer plan: a receive-only viewer gets send-only lines", "[offer]") {
    for (const char* file : {"offer-chromium-recvonly.sdp", "offer-firefox-recvonly.sdp"}) {
        INFO(file);
        const OfferPlan plan = planOffer(offer(file), {}, {"VP8"});
        REQUIRE(plan.added.size() == 2);
        CHECK((plan.added[0].send && plan.added[0].direction == MediaDirection::SendOnly));
        CHECK((plan.added[1].send && plan.added[1].direction == MediaDirection::SendOnly));
        CHECK((plan.state.audioMline == 0 && plan.state.videoMline == 1));
    }
}

TEST_CASE("offer plan: H.264 takes a packetization-mode 1 constrained baseline, and keeps its profile-level-id",
          "[offer]") {
    // Chromium lists 102 (42001f baseline, mode 1) first; 104 and 114 are
    // mode 0, 108 (42e01f, mode 1) constrained baseline, 116 main profile.
    const OfferPlan plan = planOffer(offer("offer-chromium-h264.sdp"), {}, {"h264"});
    CHECK(plan.state.videoPt == 108);
    CHECK(plan.state.audioPt == 111);
    REQUIRE(plan.added.size() == 2);
    CHECK(plan.added[1].profileLevelId == "42e01f");
    CHECK(plan.added[0].profileLevelId.empty());
    // The same offer has no VP8 for a VP8 room: refused, naming the codec.
    CHECK(badRequest([] { planOffer(offer("offer-chromium-h264.sdp"), {}, {"vp8"}); }));
    // And a VP8-only browser offer cannot join an H.264 room.
    CHECK(badRequest([] { planOffer(offer("offer-firefox-sendrecv.sdp"), {}, {"h264"}); }));
}

TEST_CASE("offer plan: H.264 profiles are read from their bits, not matched as text", "[offer]") {
    auto h264 = [](const std::string& fmtp) {
        return sdp(
            {kAudio, "m=video 9 UDP/TLS/RTP/SAVPF 97 98\r\na=mid:v\r\na=rtpmap:97 H264/90000\r\n"
                     "a=fmtp:97 " +
                         fmtp +
                         "\r\na=rtpmap:98 H264/90000\r\na=fmtp:98 packetization-mode=0;profile-level-id=42e01f\r\n"});
    };
    // x264 (and so tessera-client) writes constrained baseline 3.1 as 42c01f;
    // main and extended profile constrained down to baseline qualify too.
    for (const std::string id : {"42c01f", "42e01f", "42401f", "4d801f", "58c01e", "42C01F"}) {
        INFO(id);
        const OfferPlan plan = planOffer(h264("packetization-mode=1;profile-level-id=" + id), {}, {"h264"});
        CHECK(plan.state.videoPt == 97);
        CHECK(plan.added[1].profileLevelId == id);
    }
    // Plain baseline decodes constrained baseline: taken when nothing better is offered.
    CHECK(planOffer(h264("profile-level-id=42001f;packetization-mode=1"), {}, {"h264"}).state.videoPt == 97);
    // Main, high, mode 0 only, no profile, reserved bits: refused.
    for (const std::string fmtp :
         {"packetization-mode=1;profile-level-id=4d001f", "packetization-mode=1;profile-level-id=64001f",
          "profile-level-id=42e01f", "packetization-mode=1", "packetization-mode=1;profile-level-id=42e11f",
          "packetization-mode=1;profile-level-id=42e0"}) {
        INFO(fmtp);
        CHECK(badRequest([&] { planOffer(h264(fmtp), {}, {"h264"}); }));
    }
}

TEST_CASE("offer plan: a renegotiation adds a screen share and keeps the rest", "[offer]") {
    const OfferPlan first = planOffer(sdp({kAudio, kVideo}), {}, {"vp8"});
    const OfferPlan second = planOffer(sdp({kAudio, kVideo, kShare}), first.state, {"vp8"});
    CHECK(second.shares == std::set<int>{2});
    REQUIRE(second.added.size() == 1);
    // The share is only received: the room's video goes out on the camera line.
    CHECK(
        (second.added[0].index == 2 && !second.added[0].send && second.added[0].direction == MediaDirection::RecvOnly));
    CHECK((second.state.videoMline == 1 && second.state.cameraMline == 1 && second.state.mlines == 3));
    CHECK(second.mids == std::vector<std::string>{"a", "v", "s"});
    // Stopping the share (inactive) clears it; removing m-lines is refused.
    std::string stopped = kShare;
    stopped.replace(stopped.find("a=sendonly"), 10, "a=inactive");
    CHECK(planOffer(sdp({kAudio, kVideo, stopped}), second.state, {"vp8"}).shares.empty());
    CHECK(badRequest([&] { planOffer(sdp({kAudio}), second.state, {"vp8"}); }));
    // A new share beside the stopped one is taken; two at once are not.
    std::string next = kShare;
    next.replace(next.find("a=mid:s"), 7, "a=mid:t");
    CHECK(planOffer(sdp({kAudio, kVideo, stopped, next}), second.state, {"vp8"}).shares == std::set<int>{3});
    CHECK(badRequest([&] { planOffer(sdp({kAudio, kVideo, kShare, next}), second.state, {"vp8"}); }));
    CHECK(badRequest([&] { planOffer(sdp({kAudio, kVideo, kShare, next}), {}, {"vp8"}); }));
}

TEST_CASE("offer plan: each announced SSRC names its m-line, from the newest offer", "[offer]") {
    // Chromium's camera and its RTX (a=ssrc-group:FID), Firefox's likewise.
    CHECK(planOffer(offer("offer-chromium-sendrecv.sdp"), {}, {"vp8"}).state.ssrcMlines ==
          std::map<std::uint32_t, unsigned>{{4270337500u, 0}, {3462025081u, 1}, {3925746105u, 1}});
    CHECK(planOffer(offer("offer-firefox-sendrecv.sdp"), {}, {"vp8"}).state.ssrcMlines ==
          std::map<std::uint32_t, unsigned>{{3661927830u, 0}, {2055374982u, 1}, {1620258777u, 1}});
    CHECK(planOffer(offer("offer-chromium-recvonly.sdp"), {}, {"vp8"}).state.ssrcMlines.empty());

    const OfferPlan first = planOffer(sdp({kAudio, kVideo + "a=ssrc:11 cname:x\r\n"}), {}, {"vp8"});
    CHECK(first.state.ssrcMlines == std::map<std::uint32_t, unsigned>{{11u, 1}});
    // A share added later: its SSRC maps to its own m-line, not the bundle's first.
    const OfferPlan second = planOffer(
        sdp({kAudio, kVideo + "a=ssrc:11 cname:x\r\n", kShare + "a=ssrc:4294967295 cname:x\r\na=ssrc:22 msid:y z\r\n"}),
        first.state, {"vp8"});
    CHECK(second.state.ssrcMlines == std::map<std::uint32_t, unsigned>{{11u, 1}, {22u, 2}, {4294967295u, 2}});
    // A stopped share's SSRC is gone once an offer no longer lists it; malformed ones are ignored.
    std::string stopped = kShare;
    stopped.replace(stopped.find("a=sendonly"), 10, "a=inactive");
    const OfferPlan third = planOffer(sdp({kAudio + "a=ssrc:4294967296 cname:x\r\na=ssrc:x1 cname:x\r\na=ssrc:\r\n",
                                           kVideo + "a=ssrc:11 cname:x\r\n", stopped + "a=ssrc:-3 cname:x\r\n"}),
                                      second.state, {"vp8"});
    CHECK(third.state.ssrcMlines == std::map<std::uint32_t, unsigned>{{11u, 1}});
}

TEST_CASE("offer plan: at most kMaxMlines m-lines", "[offer][limits]") {
    std::string inactive = kShare;
    inactive.replace(inactive.find("a=sendonly"), 10, "a=inactive");
    std::string lines = kAudio + kVideo;
    for (unsigned i = 2; i < kMaxMlines; ++i) lines += inactive;
    CHECK(planOffer(sdp({lines}), {}, {"vp8"}).state.mlines == kMaxMlines);
    try {
        planOffer(sdp({lines + inactive}), {}, {"vp8"});
        FAIL("an offer of kMaxMlines + 1 m-lines was planned");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::BadRequest);
        CHECK(std::string(e.what()) == "offer.sdp: 65 m-lines, over the 64 an offer may have");
    }
}

TEST_CASE("offer plan: rejected, bundle-only and malformed lines", "[offer]") {
    // Port 0 without bundle-only rejects the line: no codec needed, nothing sent.
    const OfferPlan rejected = planOffer(
        sdp({kAudio, "m=video 0 UDP/TLS/RTP/SAVPF 100\r\na=mid:v\r\na=rtpmap:100 AV1/90000\r\n"}), {}, {"vp8"});
    REQUIRE(rejected.added.size() == 2);
    CHECK((rejected.added[1].pt == -1 && rejected.added[1].direction == MediaDirection::Inactive &&
           !rejected.added[1].send));
    // Port 0 with bundle-only (webrtcbin's own max-bundle offers) is live.
    const OfferPlan bundled = planOffer(sdp({kAudio, "m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=bundle-only\r\na=mid:v\r\n"
                                                     "a=rtpmap:96 VP8/90000\r\n"}),
                                        {}, {"vp8"});
    CHECK((bundled.added[1].send && bundled.state.videoMline == 1));
    // Not an offer, or an offer of neither audio nor video.
    CHECK(badRequest([] { planOffer("hello", {}, {"vp8"}); }));
    CHECK(badRequest([] { planOffer(sdp({"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"}), {}, {"vp8"}); }));
    // Only the first audio line carries the mix-minus.
    const OfferPlan twoAudio = planOffer(sdp({kAudio, kAudio}), {}, {"vp8"});
    CHECK(
        (twoAudio.added[0].send && !twoAudio.added[1].send && twoAudio.added[1].direction == MediaDirection::RecvOnly));
}

// Issue 15: each participant gets the server's most preferred codec among
// those its offer carries, for what it sends and what it receives alike.
TEST_CASE("offer plan: the video codec is the server's first preference the offer carries", "[offer][codecs]") {
    const std::vector<std::string> defaults = {"vp8", "h264", "vp9"};
    struct Case {
        const char* file;
        std::vector<std::string> preference;
        std::string codec; // "" : refused
        int pt;
    };
    const Case cases[] = {
        // Chromium offers VP8, H.264, AV1 and VP9 (profiles 0 and 2).
        {"offer-chromium-sendrecv.sdp", defaults, "vp8", 96},
        {"offer-chromium-sendrecv.sdp", {"h264", "vp8"}, "h264", 108}, // its constrained baseline, mode 1
        {"offer-chromium-sendrecv.sdp", {"vp9"}, "vp9", 98},           // profile 0, not 2 (pt 100)
        {"offer-chromium-recvonly.sdp", {"vp9", "vp8"}, "vp9", 98},
        {"offer-chromium-recvonly.sdp", defaults, "vp8", 96},
        // Firefox ESR offers VP8, VP9 and AV1; no H.264 without OpenH264.
        {"offer-firefox-sendrecv.sdp", defaults, "vp8", 120},
        {"offer-firefox-sendrecv.sdp", {"h264", "vp9", "vp8"}, "vp9", 121},
        {"offer-firefox-recvonly.sdp", {"h264", "vp9"}, "vp9", 121},
        {"offer-firefox-sendrecv.sdp", {"h264"}, "", -1},
        // A Chromium restricted to H.264 (as Safari prefers it): the server's
        // VP8 preference gives way.
        {"offer-chromium-h264.sdp", defaults, "h264", 108},
        {"offer-chromium-h264.sdp", {"vp8", "vp9"}, "", -1},
        // tessera-client --video-codec h264 (webrtcbin, x264's constrained
        // baseline as 42c01f, video and data bundle-only): the `offer` event
        // of the e2e test's H.264 client.
        {"offer-tessera-client-h264.sdp", defaults, "h264", 96},
        {"offer-tessera-client-h264.sdp", {"vp9", "h264"}, "h264", 96},
        {"offer-tessera-client-h264.sdp", {"vp8", "vp9"}, "", -1},
    };
    for (const Case& c : cases) {
        std::string order;
        for (const auto& codec : c.preference) order += codec + " ";
        INFO(c.file << " with video.codecs " << order);
        if (c.codec.empty()) {
            CHECK(badRequest([&] { planOffer(offer(c.file), {}, c.preference); }));
            continue;
        }
        const OfferPlan plan = planOffer(offer(c.file), {}, c.preference);
        CHECK(plan.state.cameraCodec == c.codec);
        CHECK(plan.state.videoPt == c.pt);
        REQUIRE(plan.added.size() == 2);
        CHECK(plan.added[0].codec.empty()); // audio
        CHECK(plan.added[1].codec == c.codec);
        CHECK(plan.added[1].pt == c.pt);
    }
}

TEST_CASE("offer plan: an offer with none of the server's codecs is refused, naming them", "[offer][codecs]") {
    try {
        planOffer(offer("offer-chromium-h264.sdp"), {}, {"vp8", "vp9"});
        FAIL("not refused");
    } catch (const UnsupportedCodec& e) { // WHIP's 422
        CHECK(e.code() == ErrorCode::BadRequest);
        CHECK_THAT(e.what(), Catch::Matchers::Contains("m-line 1 (video)"));
        CHECK_THAT(e.what(), Catch::Matchers::Contains("VP8, VP9"));
    }
}

TEST_CASE("offer plan: VP9 profile 0 only, and a screen share keeps its own codec", "[offer][codecs]") {
    // Profile 2 (10-bit) listed first: the profile 0 payload type is taken.
    const std::string vp9 = "m=video 9 UDP/TLS/RTP/SAVPF 100 98\r\na=mid:v\r\na=rtpmap:100 VP9/90000\r\n"
                            "a=fmtp:100 profile-id=2\r\na=rtpmap:98 VP9/90000\r\na=fmtp:98 profile-id=0\r\n";
    CHECK(planOffer(sdp({kAudio, vp9}), {}, {"vp9"}).state.videoPt == 98);
    const std::string only2 = "m=video 9 UDP/TLS/RTP/SAVPF 100\r\na=mid:v\r\na=rtpmap:100 VP9/90000\r\n"
                              "a=fmtp:100 profile-id=2\r\n";
    CHECK(badRequest([&] { planOffer(sdp({kAudio, only2}), {}, {"vp9"}); }));

    // A VP8 camera, then a share offered in VP9 only: the share is decoded as
    // VP9, the camera line (and so what the client receives) stays VP8.
    const OfferPlan first = planOffer(sdp({kAudio, kVideo}), {}, {"vp8", "h264", "vp9"});
    CHECK(first.state.cameraCodec == "vp8");
    const std::string share = "m=video 9 UDP/TLS/RTP/SAVPF 98\r\na=mid:s\r\na=sendonly\r\na=rtpmap:98 VP9/90000\r\n";
    const OfferPlan second = planOffer(sdp({kAudio, kVideo, share}), first.state, {"vp8", "h264", "vp9"});
    REQUIRE(second.added.size() == 1);
    CHECK(second.added[0].codec == "vp9");
    CHECK(second.state.cameraCodec == "vp8");
    CHECK(second.state.videoPt == 96);
}
