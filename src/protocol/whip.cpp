#include "tessera/protocol/whip.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include <glib.h>

#include "tessera/protocol/error.h"
#include "tessera/protocol/uri.h"

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

namespace {

// A cursor over one header value, with RFC 8288 / RFC 9110 lexemes. Each
// read returns nullopt (and leaves the position anywhere) on bad syntax.
class LinkLexer {
public:
    explicit LinkLexer(std::string_view text) : m_text(text) {}
    bool done() const { return m_pos >= m_text.size(); }
    void skipSpace() {
        while (!done() && (m_text[m_pos] == ' ' || m_text[m_pos] == '\t')) ++m_pos;
    }
    bool take(char c) {
        skipSpace();
        if (done() || m_text[m_pos] != c) return false;
        ++m_pos;
        return true;
    }
    // Past the next ',' outside a quoted string or <...>: the next link value.
    void skipValue() {
        bool quoted = false, bracketed = false;
        for (; !done(); ++m_pos) {
            const char c = m_text[m_pos];
            if (quoted) {
                if (c == '\\')
                    ++m_pos;
                else if (c == '"')
                    quoted = false;
            } else if (c == '"' && !bracketed) {
                quoted = true;
            } else if (c == '<') {
                bracketed = true;
            } else if (c == '>') {
                bracketed = false;
            } else if (c == ',' && !bracketed) {
                ++m_pos;
                return;
            }
        }
    }
    std::optional<std::string> uri() {
        if (!take('<')) return std::nullopt;
        const auto end = m_text.find('>', m_pos);
        if (end == std::string_view::npos || end - m_pos > kMaxLength) return std::nullopt;
        std::string out(m_text.substr(m_pos, end - m_pos));
        m_pos = end + 1;
        return out;
    }
    // An RFC 9110 token, lower-cased (parameter names are case-insensitive).
    std::optional<std::string> token() {
        skipSpace();
        std::string out;
        while (!done() && isTokenChar(m_text[m_pos]) && out.size() < kMaxLength)
            out += static_cast<char>(std::tolower(static_cast<unsigned char>(m_text[m_pos++])));
        if (out.empty()) return std::nullopt;
        return out;
    }
    // A token or a quoted string (its escapes undone).
    std::optional<std::string> value() {
        skipSpace();
        if (done() || m_text[m_pos] != '"') {
            const std::size_t start = m_pos;
            while (!done() && isTokenChar(m_text[m_pos])) ++m_pos;
            if (m_pos == start || m_pos - start > kMaxLength) return std::nullopt;
            return std::string(m_text.substr(start, m_pos - start));
        }
        std::string out;
        for (++m_pos; !done(); ++m_pos) {
            char c = m_text[m_pos];
            if (c == '"') {
                ++m_pos;
                return out;
            }
            if (c == '\\') {
                if (++m_pos >= m_text.size()) break;
                c = m_text[m_pos];
            }
            if (out.size() >= kMaxLength) break;
            out += c;
        }
        return std::nullopt; // unterminated, or too long
    }

private:
    static constexpr std::size_t kMaxLength = 1024;
    static bool isTokenChar(char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    }
    std::string_view m_text;
    std::size_t m_pos = 0;
};

// One link value at the lexer: its URL and parameters, or nullopt.
std::optional<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>> linkValue(LinkLexer& in) {
    auto url = in.uri();
    if (!url) return std::nullopt;
    std::vector<std::pair<std::string, std::string>> params;
    while (in.take(';')) {
        auto name = in.token();
        if (!name) return std::nullopt;
        std::string value;
        if (in.take('=')) {
            auto v = in.value();
            if (!v) return std::nullopt;
            value = std::move(*v);
        }
        params.emplace_back(std::move(*name), std::move(value));
    }
    in.skipSpace();
    if (!in.done() && !in.take(',')) return std::nullopt;
    return std::pair{std::move(*url), std::move(params)};
}

} // namespace

std::vector<IceServer> parseIceServerLinks(std::string_view header) {
    std::vector<IceServer> servers;
    LinkLexer in(header);
    while (servers.size() < kMaxIceServerLinks) {
        while (in.take(',')) {}
        in.skipSpace();
        if (in.done()) break;
        const auto link = linkValue(in);
        if (!link) {
            in.skipValue();
            continue;
        }
        IceServer server{{link->first}, {}, {}};
        bool ice = false, password = true;
        for (const auto& [name, value] : link->second) {
            if (name == "rel") {
                // A space-separated list of relation types, case-insensitive.
                for (std::size_t at = 0; at <= value.size();) {
                    const auto end = std::min(value.find(' ', at), value.size());
                    if (g_ascii_strncasecmp(value.data() + at, "ice-server", end - at) == 0 &&
                        end - at == std::string_view("ice-server").size())
                        ice = true;
                    at = end + 1;
                }
            } else if (name == "username") {
                server.username = value;
            } else if (name == "credential") {
                server.credential = value;
            } else if (name == "credential-type") {
                password = g_ascii_strcasecmp(value.c_str(), "password") == 0;
            }
        }
        if (ice && password && hasScheme(link->first, {"stun", "stuns", "turn", "turns"}))
            servers.push_back(std::move(server));
    }
    return servers;
}

} // namespace tessera::protocol::whip
