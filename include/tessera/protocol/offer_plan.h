#pragma once
// Planning the answer to a client's SDP offer: which m-line is the camera,
// which are screen shares, where the server sends the room's audio and video,
// which payload types carry them, and the direction of each answered m-line.
// Pure: reads the SDP text, links no GStreamer, so it is unit-tested against
// offers recorded from real browsers (tests/data/offer-*.sdp).
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

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
};

struct PlannedLine {
    unsigned index;
    std::string media;          // "audio" or "video"
    int pt;                     // the payload type of the server's codec, or -1 (inactive line without it)
    std::string profileLevelId; // H.264: the offer's profile-level-id of `pt`, which the answer repeats
    MediaDirection direction;   // the server's, in the answer
    bool send;                  // the server sends the room's audio or video on it
    // The offer's a=extmap id for transport-wide congestion control
    // (kTransportCcUri), -1 when it offers none: the answer repeats it and
    // the server's video carries it, so the client's feedback measures its link.
    int transportCcId = -1;
};

struct OfferPlan {
    OfferState state;               // after this offer
    std::vector<std::string> mids;  // per m-line ("" without a=mid)
    std::set<int> shares;           // video m-lines the client sends a screen share on
    std::vector<PlannedLine> added; // new audio and video m-lines, in order
};

// Plans the answer to `sdp`. `videoCodec` is the room's ("VP8", "H264",
// "VP9", any case); audio is Opus. Throws Error(BadRequest) for an offer that
// has no m-line, removes m-lines, or offers an active audio or video m-line
// without the room's codec.
OfferPlan planOffer(std::string_view sdp, const OfferState& before, std::string_view videoCodec);

// Whether an offer's active audio and video m-lines send media to the server
// and ask for media from it (data channels aside): what a room token's
// grants are checked against (docs/security.md).
struct OfferMedia {
    bool sends = false;
    bool receives = false;
};
OfferMedia offerMedia(std::string_view sdp);

} // namespace tessera::protocol
