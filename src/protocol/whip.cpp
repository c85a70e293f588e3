#include "tessera/protocol/whip.h"

#include <algorithm>

#include "tessera/protocol/error.h"

namespace tessera::protocol::whip {
namespace {

// Calls `line` for each line of `text`, without its "\r\n" or "\n".
template <typename F>
void forEachLine(std::string_view text, F&& line) {
    while (!text.empty()) {
        const auto eol = text.find('\n');
        std::string_view l = text.substr(0, eol);
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        line(l);
        text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    }
}

std::optional<std::string_view> attribute(std::string_view line, std::string_view name) {
    if (!line.starts_with("a=") || !line.substr(2).starts_with(name)) return std::nullopt;
    const std::string_view rest = line.substr(2 + name.size());
    if (rest.empty()) return rest;
    if (rest.front() != ':') return std::nullopt;
    return rest.substr(1);
}

} // namespace

SdpFragment parseSdpFragment(std::string_view body) {
    SdpFragment fragment;
    int section = -1; // the m= section the lines are in; -1: session level
    std::optional<std::string> mid;
    forEachLine(body, [&](std::string_view line) {
        if (line.empty()) return;
        if (line.size() < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z')
            throw Error(ErrorCode::BadRequest, "not an SDP fragment: a line is not \"x=...\"");
        if (line[0] == 'm') {
            ++section;
            mid.reset();
        } else if (auto value = attribute(line, "mid")) {
            mid = std::string(*value);
            // Candidates read before their section's a=mid belong to it too.
            for (auto& c : fragment.candidates)
                if (!c.sdpMid && c.sdpMLineIndex == static_cast<unsigned>(section)) {
                    c.sdpMid = mid;
                    c.sdpMLineIndex.reset();
                }
        } else if (auto value = attribute(line, "ice-ufrag")) {
            fragment.iceUfrag = std::string(*value);
        } else if (auto value = attribute(line, "ice-pwd")) {
            fragment.icePwd = std::string(*value);
        } else if (attribute(line, "end-of-candidates")) {
            fragment.endOfCandidates = true;
        } else if (line.starts_with("a=candidate:")) {
            if (section < 0) throw Error(ErrorCode::BadRequest, "a candidate outside any m= section");
            if (fragment.candidates.size() == kMaxFragmentCandidates)
                throw Error(ErrorCode::BadRequest,
                            "more than " + std::to_string(kMaxFragmentCandidates) + " candidates in one fragment");
            IceCandidate c{std::string(line.substr(2)), mid, std::nullopt};
            if (!mid) c.sdpMLineIndex = static_cast<unsigned>(section);
            fragment.candidates.push_back(std::move(c));
        }
    });
    return fragment;
}

std::string withCandidates(std::string_view sdp, const std::vector<IceCandidate>& candidates, bool complete) {
    // The sections' mids first: a candidate may name a later section.
    std::vector<std::string> mids;
    forEachLine(sdp, [&](std::string_view line) {
        if (line.starts_with("m="))
            mids.emplace_back();
        else if (auto value = attribute(line, "mid"); value && !mids.empty())
            mids.back() = std::string(*value);
    });
    std::vector<std::vector<const IceCandidate*>> per(mids.size());
    for (const IceCandidate& c : candidates) {
        std::size_t index = 0;
        if (c.sdpMid) {
            index = mids.size();
            for (std::size_t i = 0; i < mids.size(); ++i)
                if (mids[i] == *c.sdpMid) index = i;
        } else if (c.sdpMLineIndex) {
            index = *c.sdpMLineIndex;
        }
        if (index < per.size()) per[index].push_back(&c);
    }
    std::string out;
    int section = -1;
    auto close = [&] {
        if (section < 0) return;
        for (const IceCandidate* c : per[static_cast<std::size_t>(section)]) out += "a=" + c->candidate + "\r\n";
        if (complete) out += "a=end-of-candidates\r\n";
    };
    forEachLine(sdp, [&](std::string_view line) {
        if (line.empty()) return;
        if (line.starts_with("m=")) {
            close();
            ++section;
        }
        out.append(line);
        out += "\r\n";
    });
    close();
    return out;
}

std::optional<std::string> iceUfrag(std::string_view sdp) {
    std::optional<std::string> found;
    forEachLine(sdp, [&](std::string_view line) {
        if (auto value = attribute(line, "ice-ufrag"); value && !found) found = std::string(*value);
    });
    return found;
}

std::vector<std::string> iceServerLinks(const std::vector<IceServer>& servers) {
    // An RFC 9110 quoted-string: '"' and '\\' escaped.
    const auto quoted = [](std::string_view text) {
        std::string out = "\"";
        for (const char c : text) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        return out + "\"";
    };
    std::vector<std::string> links;
    for (const IceServer& server : servers) {
        for (const std::string& url : server.urls) {
            // A URL that would end the <...> early or split the header is not sent.
            if (url.empty() || std::any_of(url.begin(), url.end(), [](unsigned char c) {
                    return c <= ' ' || c == '<' || c == '>' || c == 0x7f;
                }))
                continue;
            std::string link = "<" + url + ">; rel=\"ice-server\"";
            if (!server.username.empty() || !server.credential.empty())
                link += "; username=" + quoted(server.username) + "; credential=" + quoted(server.credential) +
                        "; credential-type=\"password\"";
            links.push_back(std::move(link));
        }
    }
    return links;
}

} // namespace tessera::protocol::whip
