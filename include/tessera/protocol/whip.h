#pragma once
// WHIP (RFC 9725) over SDP: what its HTTP exchange carries besides the offer
// and the answer. A WHIP client cannot take trickled candidates from the
// server (there is no channel back), so the answer carries them all; the
// client's own arrive in PATCH bodies of type
// application/trickle-ice-sdpfrag (RFC 8840). Pure: no GStreamer, no HTTP.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/protocol/messages.h"

namespace tessera::protocol::whip {

// A PATCH body: the ICE credentials it names (an ICE restart when they differ
// from the session's) and its candidates, each tagged with the a=mid of the
// m= section it is in (or, without one, the section's index).
struct SdpFragment {
    std::optional<std::string> iceUfrag, icePwd;
    std::vector<IceCandidate> candidates;
    bool endOfCandidates = false;
};

// The most candidates one fragment may carry: a client's are a handful per
// interface, and each is handed to libnice.
inline constexpr std::size_t kMaxFragmentCandidates = 64;

// Throws Error(BadRequest) for a body that is not SDP lines (each "x=...")
// or carries more than kMaxFragmentCandidates candidates, or a candidate
// before any m= line (RFC 8840 puts them in one).
SdpFragment parseSdpFragment(std::string_view body);

// `sdp` (an answer) with `candidates` as a=candidate lines at the end of the
// m= sections they belong to (by sdpMid, else sdpMLineIndex, else the
// first), and a=end-of-candidates in every section when `complete`.
// Candidates that match no section are dropped.
std::string withCandidates(std::string_view sdp, const std::vector<IceCandidate>& candidates, bool complete);

// The a=ice-ufrag of an SDP (the first one, session or media level).
std::optional<std::string> iceUfrag(std::string_view sdp);

// The ICE servers a publisher may use, as Link header values (RFC 9725
// section 4.6): `<turn:h:3478?transport=udp>; rel="ice-server";
// username="..."; credential="..."; credential-type="password"`, one per URL.
// A URL with spaces, controls or angle brackets is left out.
std::vector<std::string> iceServerLinks(const std::vector<IceServer>& servers);

// The most ICE servers parseIceServerLinks reads: a server sends a few.
inline constexpr std::size_t kMaxIceServerLinks = 16;

// What a WHIP or WHEP client reads back from the 201's Link headers (RFC
// 8288 syntax), `header` being their values, comma-separated as an HTTP
// library joins repeated headers: each `<url>; rel="ice-server"` (a rel
// list naming ice-server) with its `username` and `credential`, as one
// IceServer each, in order. Links of another rel, URLs that are not stun:,
// stuns:, turn: or turns:, a credential-type other than "password", and
// malformed link values are skipped; at most kMaxIceServerLinks are kept,
// URLs and parameters of at most 1024 characters.
std::vector<IceServer> parseIceServerLinks(std::string_view header);

} // namespace tessera::protocol::whip
