// WHIP's SDP side: trickle fragments in, answers with every candidate out.
#include <catch2/catch.hpp>

#include "tessera/protocol/error.h"
#include "tessera/protocol/whip.h"

using namespace tessera;
using namespace tessera::protocol;

TEST_CASE("whip: a trickle fragment as RFC 8840 writes it", "[whip]") {
    const auto f = whip::parseSdpFragment("a=ice-options:trickle ice2\r\n"
                                          "a=group:BUNDLE 0 1\r\n"
                                          "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
                                          "a=mid:0\r\n"
                                          "a=ice-ufrag:EsAw\r\n"
                                          "a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n"
                                          "a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host\r\n"
                                          "a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host\r\n"
                                          "a=end-of-candidates\r\n");
    CHECK(f.iceUfrag == "EsAw");
    CHECK(f.icePwd == "P2uYro0UCOQ4zxjKXaWCBui1");
    CHECK(f.endOfCandidates);
    REQUIRE(f.candidates.size() == 2);
    CHECK(f.candidates[0].candidate == "candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host");
    CHECK(f.candidates[0].sdpMid == "0");
    CHECK_FALSE(f.candidates[0].sdpMLineIndex);
    CHECK(f.candidates[1].candidate.ends_with("61765 typ host"));
}

TEST_CASE("whip: candidates before their section's a=mid, or with none, are placed", "[whip]") {
    const auto f = whip::parseSdpFragment("m=audio 9 UDP/TLS/RTP/SAVPF 111\n"
                                          "a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\n"
                                          "a=mid:a0\n"
                                          "m=video 9 UDP/TLS/RTP/SAVPF 96\n"
                                          "a=candidate:2 1 udp 1 127.0.0.1 5002 typ host\n");
    REQUIRE(f.candidates.size() == 2);
    CHECK(f.candidates[0].sdpMid == "a0");
    CHECK_FALSE(f.candidates[1].sdpMid);
    CHECK(f.candidates[1].sdpMLineIndex == 1u);
    CHECK_FALSE(f.endOfCandidates);
    CHECK_FALSE(f.iceUfrag);
}

TEST_CASE("whip: bad fragments are refused", "[whip]") {
    CHECK_THROWS_AS(whip::parseSdpFragment("{\"candidate\": 1}"), Error);
    CHECK_THROWS_AS(whip::parseSdpFragment("a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n"), Error);
    std::string many = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n";
    for (std::size_t i = 0; i <= whip::kMaxFragmentCandidates; ++i)
        many += "a=candidate:" + std::to_string(i) + " 1 udp 1 127.0.0.1 5000 typ host\r\n";
    CHECK_THROWS_AS(whip::parseSdpFragment(many), Error);
    // An empty body (a client's keep-alive PATCH) is no error.
    CHECK(whip::parseSdpFragment("").candidates.empty());
}

TEST_CASE("whip: the answer carries the server's candidates in their sections", "[whip]") {
    const std::string answer = "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-ufrag:srv1\r\n"
                               "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendrecv\r\n"
                               "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=sendrecv\r\n";
    const std::vector<IceCandidate> candidates = {
        {"candidate:1 1 UDP 2015363327 127.0.0.1 40000 typ host", std::string("0"), std::nullopt},
        {"candidate:2 1 UDP 2015363327 127.0.0.1 40002 typ host", std::nullopt, 1u},
        {"candidate:3 1 UDP 2015363327 127.0.0.1 40004 typ host", std::string("nope"), std::nullopt},
    };
    const std::string out = whip::withCandidates(answer, candidates, true);
    CHECK(out == "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-ufrag:srv1\r\n"
                 "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendrecv\r\n"
                 "a=candidate:1 1 UDP 2015363327 127.0.0.1 40000 typ host\r\na=end-of-candidates\r\n"
                 "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=sendrecv\r\n"
                 "a=candidate:2 1 UDP 2015363327 127.0.0.1 40002 typ host\r\na=end-of-candidates\r\n");
    CHECK(whip::iceUfrag(out) == "srv1");
    CHECK_FALSE(whip::iceUfrag("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"));
}

TEST_CASE("whip: ICE servers as Link headers, credentials quoted, unsafe URLs left out", "[whip]") {
    const std::vector<IceServer> servers = {
        {{"stun:stun.example.net:3478"}, "", ""},
        {{"turn:turn.example.net:3478?transport=udp", "turn:turn.example.net:3478?transport=tcp"},
         "1700000000:p1",
         "a\"b\\c"},
        {{"turn:evil>; rel=\"x\"", "stun:a b"}, "", ""},
    };
    const auto links = whip::iceServerLinks(servers);
    REQUIRE(links.size() == 3);
    CHECK(links[0] == "<stun:stun.example.net:3478>; rel=\"ice-server\"");
    CHECK(links[1] == "<turn:turn.example.net:3478?transport=udp>; rel=\"ice-server\"; username=\"1700000000:p1\"; "
                      "credential=\"a\\\"b\\\\c\"; credential-type=\"password\"");
    CHECK(links[2].starts_with("<turn:turn.example.net:3478?transport=tcp>"));
}

TEST_CASE("whip: a client reads the ICE servers back from the Link headers, joined as an HTTP library joins them",
          "[whip]") {
    const std::vector<IceServer> servers = {
        {{"stun:stun.example.net:3478"}, "", ""},
        {{"turn:turn.example.net:3478?transport=udp", "turns:turn.example.net:5349?transport=tcp"},
         "1700000000:p1",
         "a\"b\\c,d;e"},
    };
    std::string header;
    for (const auto& link : whip::iceServerLinks(servers)) header += (header.empty() ? "" : ", ") + link;
    const auto parsed = whip::parseIceServerLinks(header);
    REQUIRE(parsed.size() == 3);
    CHECK(parsed[0].urls == std::vector<std::string>{"stun:stun.example.net:3478"});
    CHECK(parsed[0].username.empty());
    CHECK(parsed[0].credential.empty());
    for (std::size_t i : {1, 2}) {
        INFO(i);
        CHECK(parsed[i].urls == std::vector<std::string>{servers[1].urls[i - 1]});
        CHECK(parsed[i].username == "1700000000:p1");
        CHECK(parsed[i].credential == "a\"b\\c,d;e");
    }
}

TEST_CASE("whip: Link headers of other relations, schemes and credential types, and malformed ones, are skipped",
          "[whip]") {
    const auto parsed = whip::parseIceServerLinks(
        R"(<https://example.net/>; rel="next", <STUN:a.example:3478>;REL=ICE-SERVER,)"
        R"( <turn:b.example:3478>; rel="ice-server"; username="u"; credential="c"; credential-type="oauth",)"
        R"( <http://c.example/>; rel="ice-server", garbage; rel="ice-server", <turn:e.example:3478>; rel="other ice-server"; Username=u2; credential="c2",)"
        R"( <turn:f.example:3478>; rel="ice-server" ; username = "u3" ; credential = "c3")");
    REQUIRE(parsed.size() == 3);
    // Schemes are case-insensitive (RFC 3986): the URL is kept as sent.
    CHECK(parsed[0].urls == std::vector<std::string>{"STUN:a.example:3478"});
    CHECK(parsed[1].urls == std::vector<std::string>{"turn:e.example:3478"});
    CHECK(parsed[1].username == "u2");
    CHECK(parsed[1].credential == "c2");
    CHECK(parsed[2].urls == std::vector<std::string>{"turn:f.example:3478"});
    CHECK(parsed[2].username == "u3");
    CHECK(parsed[2].credential == "c3");

    CHECK(whip::parseIceServerLinks("").empty());
    CHECK(whip::parseIceServerLinks(",,, ,").empty());
    CHECK(whip::parseIceServerLinks("<stun:x:1").empty());
    CHECK(whip::parseIceServerLinks(R"(<stun:x:1>; rel="ice-server", <turn:y:1>; rel="ice-server"; username="u)")
              .size() == 1);
    // Bounded: a flood of links gives kMaxIceServerLinks.
    std::string flood;
    for (int i = 0; i < 100; ++i) flood += "<stun:s" + std::to_string(i) + ":3478>; rel=\"ice-server\", ";
    CHECK(whip::parseIceServerLinks(flood).size() == whip::kMaxIceServerLinks);
    CHECK(whip::parseIceServerLinks("<stun:" + std::string(5000, 'a') + ">; rel=\"ice-server\"").empty());
}
