#pragma once
// Planning the answer to a client's SDP offer: which m-line is the camera,
// which are screen shares, where the server sends the room's audio and video,
// which payload types carry them, and the direction of each answered m-line.
// Pure: reads the SDP text, links no GStreamer, so it is unit-tested against
// offers recorded from real browsers (tests/data/offer-*.sdp).
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/protocol/error.h"

namespace tessera::protocol {

inline constexpr std::string_view kTransportCcUri =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

enum class MediaDirection { SendRecv, SendOnly, RecvOnly, Inactive };

// What earlier offers of the same connection settled: m-lines are never
// re-planned, only new ones added (a renegotiation may add a screen share).
struct OfferState {
    unsigned mlines = 0;  // m-lines already answered
    int cameraMline = -1; // the first video m-line; later ones are screen shares
    int audioMline = -1;  // where the server sends the mix-minus audio
    int videoMline = -1;  // where the server sends the composite
    int audioPt = -1, videoPt = -1;
    // The camera m-line's codec ("vp8", "h264", "vp9"; "" without one): one
    // negotiated codec carries both directions of a sendrecv m-line, so it is
    // both what the server decodes from the client and what it encodes for it.
    std::string cameraCodec;
    // The newest offer's a=ssrc lines (RTX's included): which m-line each
    // SSRC the client announced is sent on. webrtcbin 1.22 loses that
    // mapping when it heard of an SSRC before the description announcing it
    // (or timed it out as a sender meanwhile), and then hands the stream to
    // the bundle's first m-line; the peer routes by this instead.
    std::map<std::uint32_t, unsigned> ssrcMlines;
};

struct PlannedLine {
    unsigned index;
    std::string media;          // "audio" or "video"
    int pt;                     // the payload type of the line's codec, or -1 (inactive line without one)
    std::string codec;          // video: the line's codec by config name ("vp8", "h264", "vp9"); audio: ""
    std::string profileLevelId; // H.264: the offer's profile-level-id of `pt`, which the answer repeats
    MediaDirection direction;   // the server's, in the answer
    bool send;                  // the server sends the room's audio or video on it
    // The offer's a=extmap id for transport-wide congestion control
    // (kTransportCcUri), -1 when it offers none: the answer repeats it and
    // the server's video and audio carry it, so the client's feedback measures its link.
    int transportCcId = -1;
};

struct OfferPlan {
    OfferState state;               // after this offer
    std::vector<std::string> mids;  // per m-line ("" without a=mid)
    std::set<int> shares;           // video m-lines the client sends a screen share on
    std::vector<PlannedLine> added; // new audio and video m-lines, in order
};

// Thrown by planOffer for an active m-line with none of the server's codecs:
// a well-formed offer the server cannot take. A BadRequest on the WebSocket
// (docs/protocol.md); WHIP answers it 422 (RFC 9725).
class UnsupportedCodec : public Error {
public:
    explicit UnsupportedCodec(const std::string& message) : Error(ErrorCode::BadRequest, message) {}
};

// The most m-lines an offer may have. Each is a transceiver in the peer's
// webrtcbin; a browser adds one for every screen share it starts (a stopped
// one stays, inactive), so this is a long call's worth of shares, and a
// script cannot make the server build thousands.
inline constexpr unsigned kMaxMlines = 64;

// Plans the answer to `sdp`. `videoCodecs` is the server's preference list
// (video.codecs: "vp8", "h264", "vp9", any case): each video m-line takes the
// first of them it offers in a form the server sends and decodes (H.264:
// packetization-mode 1, constrained baseline or baseline; VP9: profile 0),
// whatever the offer's own order. Audio is Opus. Throws Error(BadRequest) for
// an offer that has no m-line or more than kMaxMlines, removes m-lines, or
// sends more than one screen share at a time (each is a decode and a tile,
// charged to the room), and UnsupportedCodec for an active audio or video
// m-line with none of the server's codecs.
OfferPlan planOffer(std::string_view sdp, const OfferState& before, const std::vector<std::string>& videoCodecs);

// Whether an offer's active audio and video m-lines send media to the server
// and ask for media from it (data channels aside): what a room token's
// grants are checked against (docs/security.md).
struct OfferMedia {
    bool sends = false;
    bool receives = false;
};
OfferMedia offerMedia(std::string_view sdp);

} // namespace tessera::protocol
