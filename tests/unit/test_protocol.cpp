// The signaling messages and HTTP bodies of PROTOCOL.md.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "tessera/protocol/api.h"
#include "tessera/protocol/messages.h"

using namespace tessera;
using namespace tessera::protocol;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

// The message of the Error that `f` throws; a failed check when it throws
// none, or one with another code.
template <class F>
std::string errorOf(F&& f, ErrorCode expected = ErrorCode::BadRequest) {
    try {
        f();
    } catch (const Error& e) {
        CHECK(e.code() == expected);
        return e.what();
    }
    FAIL_CHECK("no tessera::Error thrown");
    return {};
}

std::string clientError(const std::string& frame) {
    INFO("frame: " << frame);
    return errorOf([&] { parseClientMessage(frame); });
}

Join parseJoin(const std::string& frame) { return std::get<Join>(parseClientMessage(frame)); }

std::optional<IceCandidate> parseCandidate(const std::string& frame) {
    return std::get<Candidate>(parseClientMessage(frame)).candidate;
}

std::string joinWithName(const std::string& nameJson) {
    return R"({"type":"join","room":"r","name":)" + nameJson + "}";
}

} // namespace

TEST_CASE("error codes have their wire spelling and HTTP status", "[protocol]") {
    CHECK(toString(ErrorCode::BadRequest) == "bad-request");
    CHECK(toString(ErrorCode::Unauthorized) == "unauthorized");
    CHECK(toString(ErrorCode::RoomFull) == "room-full");
    CHECK(toString(ErrorCode::NotJoined) == "not-joined");
    CHECK(toString(ErrorCode::NotFound) == "not-found");
    CHECK(toString(ErrorCode::Conflict) == "conflict");
    CHECK(toString(ErrorCode::Internal) == "internal");

    CHECK(httpStatus(ErrorCode::BadRequest) == 400);
    CHECK(httpStatus(ErrorCode::Unauthorized) == 401);
    CHECK(httpStatus(ErrorCode::RoomFull) == 409);
    CHECK(httpStatus(ErrorCode::NotJoined) == 409);
    CHECK(httpStatus(ErrorCode::NotFound) == 404);
    CHECK(httpStatus(ErrorCode::Conflict) == 409);
    CHECK(httpStatus(ErrorCode::Internal) == 500);
}

TEST_CASE("room names are 1-64 of [A-Za-z0-9_-]", "[protocol]") {
    CHECK(isValidRoomName("a"));
    CHECK(isValidRoomName("Daily_Standup-2024"));
    CHECK(isValidRoomName(std::string(64, 'x')));
    CHECK_FALSE(isValidRoomName(""));
    CHECK_FALSE(isValidRoomName(std::string(65, 'x')));
    for (const char* bad : {"a b", "a/b", "../etc", "a.b", "caf\xc3\xa9", "a\n", "a%20"}) {
        INFO(bad);
        CHECK_FALSE(isValidRoomName(bad));
    }
}

TEST_CASE("join: required fields and defaults", "[protocol]") {
    const Join join = parseJoin(R"({"type":"join","room":"standup","name":"Alice"})");
    CHECK(join.room == "standup");
    CHECK(join.name == "Alice");
    CHECK_FALSE(join.token);
    CHECK_FALSE(join.maxBitrate);
    CHECK_FALSE(join.receiveOnly);
}

TEST_CASE("join: optional fields, nulls and unknown extras", "[protocol]") {
    const Join full = parseJoin(
        R"({"type":"join","room":"r","name":"Bob","token":"s3cret","maxBitrate":500000,"receiveOnly":true,"future":[1]})");
    CHECK(full.token == std::optional<std::string>("s3cret"));
    CHECK(full.maxBitrate == std::optional<std::int64_t>(500000));
    CHECK(full.receiveOnly);

    // JavaScript clients write "not given" as null as often as they omit it.
    const Join nulls =
        parseJoin(R"({"type":"join","room":"r","name":"Bob","token":null,"maxBitrate":null,"receiveOnly":null})");
    CHECK_FALSE(nulls.token);
    CHECK_FALSE(nulls.maxBitrate);
    CHECK_FALSE(nulls.receiveOnly);
}

TEST_CASE("join: names count characters, not bytes", "[protocol]") {
    std::string accented;
    for (int i = 0; i < 64; ++i) accented += "\xc3\xa9"; // é: 2 bytes
    CHECK(parseJoin(joinWithName("\"" + accented + "\"")).name == accented);
    CHECK(parseJoin(joinWithName(R"("\ud83d\ude00 Zo\u00eb")")).name == "\xf0\x9f\x98\x80 Zo\xc3\xab");

    CHECK_THAT(clientError(joinWithName("\"" + accented + "\xc3\xa9\"")),
               Contains("join.name") && Contains("1-64 characters"));
}

TEST_CASE("join: bad input names the field", "[protocol]") {
    struct Case {
        const char* frame;
        const char* expected;
    };
    const std::vector<Case> cases = {
        {R"({"type":"join","name":"A"})", "join.room: missing"},
        {R"({"type":"join","room":7,"name":"A"})", "join.room: must be a string"},
        {R"({"type":"join","room":null,"name":"A"})", "join.room: must be a string"},
        {R"({"type":"join","room":"","name":"A"})", "join.room: must be 1-64 characters of [A-Za-z0-9_-]"},
        {R"({"type":"join","room":"a b","name":"A"})", "join.room: must be 1-64 characters of [A-Za-z0-9_-]"},
        {R"({"type":"join","room":"../x","name":"A"})", "join.room: must be 1-64 characters of [A-Za-z0-9_-]"},
        {R"({"type":"join","room":"r"})", "join.name: missing"},
        {R"({"type":"join","room":"r","name":["A"]})", "join.name: must be a string"},
        {R"({"type":"join","room":"r","name":""})", "join.name: must be 1-64 characters"},
        {R"({"type":"join","room":"r","name":"A\u0007"})", "join.name: must not contain control characters"},
        {R"({"type":"join","room":"r","name":"A\tB"})", "join.name: must not contain control characters"},
        {R"({"type":"join","room":"r","name":"A\u0085"})", "join.name: must not contain control characters"},
        {R"({"type":"join","room":"r","name":"A","token":42})", "join.token: must be a string"},
        {R"({"type":"join","room":"r","name":"A","maxBitrate":0})", "join.maxBitrate: must be a positive integer"},
        {R"({"type":"join","room":"r","name":"A","maxBitrate":-5})", "join.maxBitrate: must be a positive integer"},
        {R"({"type":"join","room":"r","name":"A","maxBitrate":1.5e6})", "join.maxBitrate: must be a positive integer"},
        {R"({"type":"join","room":"r","name":"A","maxBitrate":"1000"})", "join.maxBitrate: must be a positive integer"},
        {R"({"type":"join","room":"r","name":"A","maxBitrate":9223372036854775808})",
         "join.maxBitrate: must be a positive integer"},
        {R"({"type":"join","room":"r","name":"A","receiveOnly":"yes"})", "join.receiveOnly: must be a boolean"},
        {R"({"type":"join","room":"r","name":"A","receiveOnly":1})", "join.receiveOnly: must be a boolean"},
    };
    for (const Case& c : cases) {
        CHECK_THAT(clientError(c.frame), StartsWith(c.expected));
    }
    CHECK(parseJoin(R"({"type":"join","room":"r","name":"A","maxBitrate":9223372036854775807})").maxBitrate ==
          std::optional<std::int64_t>(9223372036854775807));
}

TEST_CASE("join: ill-formed UTF-8 is rejected", "[protocol]") {
    for (const char* bytes : {"\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"}) {
        INFO("bytes of the name are not UTF-8");
        const std::string message = clientError(joinWithName(std::string("\"A") + bytes + "\""));
        CHECK_FALSE(message.empty());
    }
    // A lone surrogate escape decodes to no valid code point either.
    CHECK_FALSE(clientError(joinWithName(R"("\ud800")")).empty());
}

TEST_CASE("frames that are not a typed JSON object", "[protocol]") {
    CHECK_THAT(clientError(""), StartsWith("message: not valid JSON"));
    CHECK_THAT(clientError("{"), StartsWith("message: not valid JSON"));
    CHECK_THAT(clientError("hello"), StartsWith("message: not valid JSON"));
    CHECK_THAT(clientError(R"({"type":"leave"} trailing)"), StartsWith("message: not valid JSON"));
    // Found by tests/fuzz: a number beyond a double is out_of_range, not parse_error, in nlohmann/json.
    CHECK(clientError("1e444") == "message: not valid JSON (number out of range)");
    CHECK(clientError(R"({"type":"join","maxBitrate":-1e999})") == "message: not valid JSON (number out of range)");
    CHECK(errorOf([] { parseServerMessage("1e444"); }) == "message: not valid JSON (number out of range)");
    for (const char* notObject : {"[]", "42", "null", R"("join")"}) {
        CHECK(clientError(notObject) == "message: must be a JSON object");
    }
    CHECK(clientError(R"({"room":"r"})") == "type: missing");
    CHECK(clientError(R"({"type":1})") == "type: must be a string");
    CHECK(clientError(R"({"type":null})") == "type: must be a string");
    CHECK(clientError(R"({"type":"joinn"})") == "type: unknown message type \"joinn\"");
    // Server-to-client types are not client messages.
    CHECK_THAT(clientError(R"({"type":"answer","sdp":"v=0"})"), StartsWith("type: unknown message type"));
    // A long unknown type is quoted only in part.
    CHECK(clientError(R"({"type":")" + std::string(1000, 'x') + "\"}").size() < 100);
}

TEST_CASE("frames over 64 KiB are refused before parsing", "[protocol]") {
    const std::string head = R"({"type":"join","room":"r","name":"A"})";
    std::string exact = head + std::string(kMaxFrameBytes - head.size(), ' ');
    REQUIRE(exact.size() == 64 * 1024);
    CHECK(std::holds_alternative<Join>(parseClientMessage(exact)));
    CHECK(clientError(exact + " ") == "frame exceeds 64 KiB");
    CHECK(errorOf([&] { parseServerMessage(exact + " "); }) == "frame exceeds 64 KiB");
}

TEST_CASE("offer and leave", "[protocol]") {
    const auto offer = parseClientMessage(R"({"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"})");
    CHECK(std::get<Offer>(offer).sdp == "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n");
    CHECK(clientError(R"({"type":"offer"})") == "offer.sdp: missing");
    CHECK(clientError(R"({"type":"offer","sdp":{}})") == "offer.sdp: must be a string");
    CHECK(clientError(R"({"type":"offer","sdp":""})") == "offer.sdp: must not be empty");

    CHECK(std::holds_alternative<Leave>(parseClientMessage(R"({"type":"leave"})")));
    CHECK(std::holds_alternative<Leave>(parseClientMessage(R"({"type":"leave","reason":"bye"})")));
}

TEST_CASE("audio-only: a boolean, both ways; anything else names the field", "[protocol][audio-only]") {
    CHECK(std::get<AudioOnlyRequest>(parseClientMessage(R"({"type":"audio-only","enabled":true})")).enabled);
    CHECK_FALSE(
        std::get<AudioOnlyRequest>(parseClientMessage(R"({"type":"audio-only","enabled":false,"x":1})")).enabled);
    CHECK(clientError(R"({"type":"audio-only"})") == "audio-only.enabled: missing");
    for (const char* bad : {"1", "\"true\"", "null", "{}", "[true]"})
        CHECK(clientError(std::string(R"({"type":"audio-only","enabled":)") + bad + "}") ==
              "audio-only.enabled: must be a boolean");
    CHECK(serialize(ClientMessage{AudioOnlyRequest{true}}) == R"({"type":"audio-only","enabled":true})");

    CHECK(serialize(ServerMessage{AudioOnly{true, "link"}}) ==
          R"({"type":"audio-only","enabled":true,"reason":"link"})");
    CHECK(serialize(ServerMessage{AudioOnly{false, ""}}) == R"({"type":"audio-only","enabled":false})");
    const auto back = std::get<AudioOnly>(parseServerMessage(serialize(ServerMessage{AudioOnly{true, "request"}})));
    CHECK(back.enabled);
    CHECK(back.reason == "request");
    CHECK(errorOf([] { parseServerMessage(R"({"type":"audio-only","enabled":true})"); }) ==
          "audio-only.reason: is required when enabled");
}

TEST_CASE("candidate: the shapes browsers send", "[protocol]") {
    // RTCIceCandidate.toJSON(), including usernameFragment (ignored).
    auto full = parseCandidate(
        R"({"type":"candidate","candidate":{"candidate":"candidate:1 1 UDP 2122252543 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}})");
    REQUIRE(full);
    CHECK(full->candidate == "candidate:1 1 UDP 2122252543 127.0.0.1 50000 typ host");
    CHECK(full->sdpMid == std::optional<std::string>("0"));
    CHECK(full->sdpMLineIndex == std::optional<unsigned>(0));

    auto midOnly = parseCandidate(R"({"type":"candidate","candidate":{"candidate":"c","sdpMid":"video"}})");
    REQUIRE(midOnly);
    CHECK(midOnly->sdpMid == std::optional<std::string>("video"));
    CHECK_FALSE(midOnly->sdpMLineIndex);

    auto indexOnly =
        parseCandidate(R"({"type":"candidate","candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":1}})");
    REQUIRE(indexOnly);
    CHECK_FALSE(indexOnly->sdpMid);
    CHECK(indexOnly->sdpMLineIndex == std::optional<unsigned>(1));

    // End of candidates: null, or an empty candidate string.
    CHECK_FALSE(parseCandidate(R"({"type":"candidate","candidate":null})"));
    CHECK_FALSE(parseCandidate(R"({"type":"candidate","candidate":{"candidate":"","sdpMid":"0","sdpMLineIndex":0}})"));
    CHECK_FALSE(parseCandidate(R"({"type":"candidate","candidate":{"candidate":""}})"));
}

TEST_CASE("candidate: bad shapes name the field", "[protocol]") {
    struct Case {
        const char* frame;
        const char* expected;
    };
    const std::vector<Case> cases = {
        {R"({"type":"candidate"})", "candidate.candidate: missing"},
        {R"({"type":"candidate","candidate":"candidate:1 1 UDP 1 1.2.3.4 5 typ host"})",
         "candidate.candidate: must be an object or null"},
        {R"({"type":"candidate","candidate":[]})", "candidate.candidate: must be an object or null"},
        {R"({"type":"candidate","candidate":{"sdpMid":"0"}})", "candidate.candidate.candidate: missing"},
        {R"({"type":"candidate","candidate":{"candidate":null,"sdpMid":"0"}})",
         "candidate.candidate.candidate: must be a string"},
        {R"({"type":"candidate","candidate":{"candidate":"c","sdpMid":0}})",
         "candidate.candidate.sdpMid: must be a string"},
        {R"({"type":"candidate","candidate":{"candidate":"c","sdpMLineIndex":-1}})",
         "candidate.candidate.sdpMLineIndex: must be a non-negative integer or null"},
        {R"({"type":"candidate","candidate":{"candidate":"c","sdpMLineIndex":0.5}})",
         "candidate.candidate.sdpMLineIndex: must be a non-negative integer or null"},
        {R"({"type":"candidate","candidate":{"candidate":"c","sdpMLineIndex":"0"}})",
         "candidate.candidate.sdpMLineIndex: must be a non-negative integer or null"},
        {R"({"type":"candidate","candidate":{"candidate":"c","sdpMLineIndex":4294967296}})",
         "candidate.candidate.sdpMLineIndex: must be a non-negative integer or null"},
        {R"({"type":"candidate","candidate":{"candidate":"c"}})", "candidate.candidate: needs sdpMid or sdpMLineIndex"},
        {R"({"type":"candidate","candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":null}})",
         "candidate.candidate: needs sdpMid or sdpMLineIndex"},
    };
    for (const Case& c : cases) {
        CHECK(clientError(c.frame) == c.expected);
    }
}

TEST_CASE("server messages serialise as PROTOCOL.md shows them", "[protocol]") {
    Joined joined{"p1", "standup", {{"p2", "Bob"}}, {}};
    joined.iceServers.push_back({{"stun:stun.example.org:3478"}, "", ""});
    joined.iceServers.push_back(
        {{"turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"}, "u", "c"});
    CHECK(
        serialize(ServerMessage{joined}) ==
        R"({"type":"joined","id":"p1","room":"standup","participants":[{"id":"p2","name":"Bob"}],)"
        R"("iceServers":[{"urls":["stun:stun.example.org:3478"]},)"
        R"({"urls":["turn:turn.example.org:3478?transport=udp","turns:turn.example.org:5349"],"username":"u","credential":"c"}]})");
    CHECK(serialize(ServerMessage{Joined{"p1", "r", {}, {}}}) ==
          R"({"type":"joined","id":"p1","room":"r","participants":[],"iceServers":[]})");
    CHECK(serialize(ServerMessage{Answer{"v=0\r\n"}}) == R"({"type":"answer","sdp":"v=0\r\n"})");
    CHECK(serialize(ServerMessage{Candidate{IceCandidate{"candidate:1", std::nullopt, 0u}}}) ==
          R"({"type":"candidate","candidate":{"candidate":"candidate:1","sdpMid":null,"sdpMLineIndex":0}})");
    CHECK(serialize(ServerMessage{Candidate{IceCandidate{"candidate:1", "0", std::nullopt}}}) ==
          R"({"type":"candidate","candidate":{"candidate":"candidate:1","sdpMid":"0","sdpMLineIndex":null}})");
    CHECK(serialize(ServerMessage{Candidate{}}) == R"({"type":"candidate","candidate":null})");
    CHECK(serialize(ServerMessage{ParticipantJoined{"p3", "Zo\xc3\xab"}}) ==
          "{\"type\":\"participant-joined\",\"id\":\"p3\",\"name\":\"Zo\xc3\xab\"}");
    CHECK(serialize(ServerMessage{ParticipantLeft{"p3"}}) == R"({"type":"participant-left","id":"p3"})");
    CHECK(serialize(ServerMessage{LayoutChanged{"speaker"}}) == R"({"type":"layout","layout":"speaker"})");
    CHECK(serialize(ServerMessage{Speaker{"p2"}}) == R"({"type":"speaker","id":"p2"})");
    CHECK(serialize(ServerMessage{ErrorMessage{ErrorCode::RoomFull, "room \"r\" is full at 25"}}) ==
          R"({"type":"error","code":"room-full","message":"room \"r\" is full at 25"})");
}

TEST_CASE("serialising bytes that are not UTF-8 does not throw", "[protocol]") {
    std::string text;
    REQUIRE_NOTHROW(text = serialize(ServerMessage{ErrorMessage{ErrorCode::Internal, "bad \xff byte"}}));
    CHECK(std::holds_alternative<ErrorMessage>(parseServerMessage(text)));
}

TEST_CASE("server messages round-trip", "[protocol]") {
    const Joined joined{"p1",
                        "r",
                        {{"p2", "Bob"}, {"p3", "Zo\xc3\xab"}},
                        {{{"stun:s.example.org"}, "", ""}, {{"turn:t.example.org"}, "user", "pass"}}};
    const auto back = std::get<Joined>(parseServerMessage(serialize(ServerMessage{joined})));
    CHECK(back.id == "p1");
    CHECK(back.room == "r");
    REQUIRE(back.participants.size() == 2);
    CHECK(back.participants[1].id == "p3");
    CHECK(back.participants[1].name == "Zo\xc3\xab");
    REQUIRE(back.iceServers.size() == 2);
    CHECK(back.iceServers[0].urls == std::vector<std::string>{"stun:s.example.org"});
    CHECK(back.iceServers[0].username.empty());
    CHECK(back.iceServers[1].username == "user");
    CHECK(back.iceServers[1].credential == "pass");

    CHECK(std::get<Answer>(parseServerMessage(serialize(ServerMessage{Answer{"v=0"}}))).sdp == "v=0");
    const auto candidate = std::get<Candidate>(
        parseServerMessage(serialize(ServerMessage{Candidate{IceCandidate{"candidate:9", "1", 1u}}})));
    REQUIRE(candidate.candidate);
    CHECK(candidate.candidate->candidate == "candidate:9");
    CHECK(candidate.candidate->sdpMid == std::optional<std::string>("1"));
    CHECK(candidate.candidate->sdpMLineIndex == std::optional<unsigned>(1));
    CHECK_FALSE(std::get<Candidate>(parseServerMessage(serialize(ServerMessage{Candidate{}}))).candidate);
    const auto joinedOne =
        std::get<ParticipantJoined>(parseServerMessage(serialize(ServerMessage{ParticipantJoined{"p4", "Dee"}})));
    CHECK(joinedOne.id == "p4");
    CHECK(joinedOne.name == "Dee");
    CHECK(std::get<ParticipantLeft>(parseServerMessage(serialize(ServerMessage{ParticipantLeft{"p4"}}))).id == "p4");
    CHECK(std::get<LayoutChanged>(parseServerMessage(serialize(ServerMessage{LayoutChanged{"grid"}}))).layout ==
          "grid");
    CHECK(std::get<Speaker>(parseServerMessage(serialize(ServerMessage{Speaker{"p2"}}))).id == "p2");
    CHECK(serialize(ServerMessage{RecordingChanged{true}}) == R"({"type":"recording","recording":true})");
    CHECK_FALSE(
        std::get<RecordingChanged>(parseServerMessage(serialize(ServerMessage{RecordingChanged{false}}))).recording);
    CHECK_THROWS_WITH(parseServerMessage(R"({"type":"recording","recording":1})"),
                      "recording.recording: must be a boolean");
    const SendSize small{"camera", true, 416, 234, 150000};
    CHECK(serialize(ServerMessage{small}) ==
          R"({"type":"send-size","source":"camera","active":true,"width":416,"height":234,"maxBitrate":150000})");
    CHECK(std::get<SendSize>(parseServerMessage(serialize(ServerMessage{small}))) == small);
    const SendSize hidden{"screen", false, 0, 0, 0};
    CHECK(std::get<SendSize>(parseServerMessage(serialize(ServerMessage{hidden}))) == hidden);
    CHECK_THROWS_WITH(
        parseServerMessage(R"({"type":"send-size","source":"mic","active":true,"width":2,"height":2,"maxBitrate":1})"),
        "send-size.source: must be camera or screen");
    CHECK_THROWS_WITH(
        parseServerMessage(
            R"({"type":"send-size","source":"camera","active":true,"width":99999,"height":2,"maxBitrate":1})"),
        "send-size.width: must be an integer from 0 to 32768");
    CHECK_THROWS_WITH(
        parseServerMessage(
            R"({"type":"send-size","source":"camera","active":true,"width":2,"height":-2,"maxBitrate":1})"),
        "send-size.height: must be an integer from 0 to 32768");
    for (ErrorCode code : {ErrorCode::BadRequest, ErrorCode::Unauthorized, ErrorCode::RoomFull, ErrorCode::NotJoined,
                           ErrorCode::NotFound, ErrorCode::Conflict, ErrorCode::Internal, ErrorCode::Forbidden,
                           ErrorCode::RateLimited, ErrorCode::Timeout, ErrorCode::ServerFull}) {
        const auto error =
            std::get<ErrorMessage>(parseServerMessage(serialize(ServerMessage{ErrorMessage{code, "why"}})));
        CHECK(error.code == code);
        CHECK(error.message == "why");
    }
}

TEST_CASE("on-screen: who is in the composite and who is left out, both ways; bad lists named", "[protocol]") {
    const OnScreen some{{"p1", "p2"}, {"p3"}};
    CHECK(serialize(ServerMessage{some}) == R"({"type":"on-screen","shown":["p1","p2"],"hidden":["p3"]})");
    CHECK(std::get<OnScreen>(parseServerMessage(serialize(ServerMessage{some}))) == some);
    // Nobody sends video yet: two empty lists, never absent ones.
    CHECK(serialize(ServerMessage{OnScreen{}}) == R"({"type":"on-screen","shown":[],"hidden":[]})");
    CHECK(std::get<OnScreen>(parseServerMessage(R"({"type":"on-screen","shown":[],"hidden":[]})")) == OnScreen{});
    CHECK_THROWS_WITH(parseServerMessage(R"({"type":"on-screen","shown":[]})"), "on-screen.hidden: missing");
    CHECK_THROWS_WITH(parseServerMessage(R"({"type":"on-screen","shown":"p1","hidden":[]})"),
                      "on-screen.shown: must be an array");
    CHECK_THROWS_WITH(parseServerMessage(R"({"type":"on-screen","shown":["p1",2],"hidden":[]})"),
                      "on-screen.shown[1]: must be a string");
    CHECK_THROWS_WITH(parseServerMessage(R"({"type":"on-screen","shown":["p1"],"hidden":["p1"]})"),
                      "on-screen.hidden: \"p1\" is also shown");
    // A client that does not know it gets an unknown type, which the contract lets it ignore.
    CHECK_THROWS_WITH(parseClientMessage(R"({"type":"on-screen","shown":[],"hidden":[]})"),
                      "type: unknown message type \"on-screen\"");
}

TEST_CASE("server messages: RTCIceServer urls may be one string; bad input names the field", "[protocol]") {
    const auto joined = std::get<Joined>(parseServerMessage(
        R"({"type":"joined","id":"a","room":"r","participants":[],"iceServers":[{"urls":"stun:s"}]})"));
    REQUIRE(joined.iceServers.size() == 1);
    CHECK(joined.iceServers[0].urls == std::vector<std::string>{"stun:s"});

    auto serverError = [](const std::string& frame) { return errorOf([&] { parseServerMessage(frame); }); };
    CHECK(serverError(R"({"type":"joined","id":"a","room":"r","participants":{},"iceServers":[]})") ==
          "joined.participants: must be an array");
    CHECK(serverError(R"({"type":"joined","id":"a","room":"r","participants":[{"id":"b"}],"iceServers":[]})") ==
          "joined.participants[0].name: missing");
    CHECK(serverError(R"({"type":"joined","id":"a","room":"r","participants":[],"iceServers":[{"urls":5}]})") ==
          "joined.iceServers[0].urls: must be a string or an array of strings");
    CHECK(serverError(R"({"type":"error","code":"teapot","message":"m"})") ==
          "error.code: unknown error code \"teapot\"");
    CHECK(serverError(R"({"type":"speaker"})") == "speaker.id: missing");
    CHECK(serverError(R"({"type":"join","room":"r","name":"A"})") == "type: unknown message type \"join\"");
}

TEST_CASE("client messages round-trip", "[protocol]") {
    Join join{"room-1", "Zo\xc3\xab", "tok", 750000, true};
    const Join back = std::get<Join>(parseClientMessage(serialize(ClientMessage{join})));
    CHECK(back.room == join.room);
    CHECK(back.name == join.name);
    CHECK(back.token == join.token);
    CHECK(back.maxBitrate == join.maxBitrate);
    CHECK(back.receiveOnly);

    const Join minimal = std::get<Join>(parseClientMessage(serialize(ClientMessage{Join{"r", "A", {}, {}, false}})));
    CHECK_FALSE(minimal.token);
    CHECK_FALSE(minimal.maxBitrate);
    CHECK_FALSE(minimal.receiveOnly);

    CHECK(serialize(ClientMessage{Offer{"v=0"}}) == R"({"type":"offer","sdp":"v=0"})");
    CHECK(std::get<Offer>(parseClientMessage(serialize(ClientMessage{Offer{"v=0"}}))).sdp == "v=0");
    const auto candidate = std::get<Candidate>(
        parseClientMessage(serialize(ClientMessage{Candidate{IceCandidate{"candidate:2", std::nullopt, 3u}}})));
    REQUIRE(candidate.candidate);
    CHECK_FALSE(candidate.candidate->sdpMid);
    CHECK(candidate.candidate->sdpMLineIndex == std::optional<unsigned>(3));
    CHECK_FALSE(std::get<Candidate>(parseClientMessage(serialize(ClientMessage{Candidate{}}))).candidate);
    CHECK(serialize(ClientMessage{Leave{}}) == R"({"type":"leave"})");
    CHECK(std::holds_alternative<Leave>(parseClientMessage(serialize(ClientMessage{Leave{}}))));
}

TEST_CASE("api: room list, room detail and error bodies", "[protocol]") {
    CHECK(api::serialize(std::vector<api::RoomSummary>{}) == "[]");
    CHECK(api::serialize(std::vector<api::RoomSummary>{{"a", 2, "grid", false}, {"b", 1, "speaker", true}}) ==
          R"([{"room":"a","participants":2,"layout":"grid","recording":false,"viewers":0},)"
          R"({"room":"b","participants":1,"layout":"speaker","recording":true,"viewers":0}])");

    api::RoomDetail detail{"a", "grid", true, {}, {}, {}, {}, {}};
    detail.participants.push_back(
        {"p1", "Alice", "low", true, 1000, 2000, 3, true, "", "h264", std::nullopt, std::nullopt, std::nullopt});
    detail.participants.push_back(
        {"p2", "Bob", "high", false, 0, 0, 0, false, "vp9", "vp9", std::nullopt, std::nullopt, std::nullopt});
    CHECK(
        api::serialize(detail) ==
        R"({"room":"a","layout":"grid","recording":true,"participants":[)"
        R"({"id":"p1","name":"Alice","tier":"low","sendCodec":null,"receiveCodec":"h264","receiveOnly":true,"bitrateIn":1000,"bitrateOut":2000,"packetsLost":3,"connected":true},)"
        R"({"id":"p2","name":"Bob","tier":"high","sendCodec":"vp9","receiveCodec":"vp9","receiveOnly":false,"bitrateIn":0,"bitrateOut":0,"packetsLost":0,"connected":false}],"viewers":[]})");
    // The bandwidth estimate appears once there is one.
    detail.participants.back().estimatedBps = 255'000;
    CHECK(api::serialize(detail).ends_with(R"("connected":false,"estimatedBps":255000}],"viewers":[]})"));
    // The camera's decoded size and its last send-size, once known.
    detail.participants.back().decodedSize = protocol::VideoSize{412, 232};
    detail.participants.back().sendSize = protocol::SendSize{"camera", true, 412, 232, 155573};
    CHECK(api::serialize(detail).ends_with(
        R"("estimatedBps":255000,"decodedSize":{"width":412,"height":232},)"
        R"("sendSize":{"active":true,"width":412,"height":232,"maxBitrate":155573}}],"viewers":[]})"));
    // Its data channels, once it opened one with the server.
    detail.participants.back().dataChannels = {"chat", "file"};
    CHECK(api::serialize(detail).ends_with(R"("maxBitrate":155573},"dataChannels":["chat","file"]}],"viewers":[]})"));

    // A viewer: only what it receives.
    detail.viewers.push_back(
        {"p3", "Player", "low", true, 999, 150000, 9, true, "", "vp8", std::nullopt, std::nullopt, std::nullopt});
    CHECK(api::serialize(detail).ends_with(
        R"("viewers":[{"id":"p3","name":"Player","tier":"low","receiveCodec":"vp8","bitrateOut":150000,"connected":true}]})"));
    detail.viewers.clear();

    detail.recordingFile = "/rec/a.mkv";
    detail.recordingError = "disk full";
    CHECK(api::serialize(detail).ends_with(R"(,"recordingFile":"/rec/a.mkv","recordingError":"disk full"})"));

    CHECK(api::serializeError(ErrorCode::NotFound, "no room \"x\"") ==
          R"({"error":"not-found","message":"no room \"x\""})");
}

TEST_CASE("api: layout requests", "[protocol]") {
    const auto byName = api::parseLayoutRequest(R"({"layout":"speaker"})");
    CHECK(byName.name == std::optional<std::string>("speaker"));
    CHECK_FALSE(byName.spec);

    const auto bySpec =
        api::parseLayoutRequest(R"({"layout":{"name":"solo","slots":[{"x":0,"y":0,"w":1,"h":1,"source":"speaker"}]}})");
    CHECK_FALSE(bySpec.name);
    REQUIRE(bySpec.spec);
    CHECK(bySpec.spec->name == "solo");
    REQUIRE(bySpec.spec->slots.size() == 1);
    CHECK(bySpec.spec->slots[0].source == Slot::Source::Speaker);

    auto requestError = [](const std::string& body) { return errorOf([&] { api::parseLayoutRequest(body); }); };
    CHECK_THAT(requestError("grid"), StartsWith("body: not valid JSON"));
    CHECK(requestError(R"(["grid"])") == "body: must be a JSON object");
    CHECK(requestError(R"({"layout":1e444})") == "body: not valid JSON (number out of range)");
    CHECK(requestError(R"({"name":"grid"})") == "layout: missing");
    CHECK(requestError(R"({"layout":"../grid"})") == "layout: must be 1-64 characters of [A-Za-z0-9_-]");
    CHECK(requestError(R"({"layout":3})") == "layout: must be a layout name or a layout spec object");
    // The spec parser's own message, under the field it is about.
    CHECK_THAT(requestError(R"({"layout":{"name":"x","slots":"all"}})"), StartsWith("layout: ") && Contains("slots"));
    CHECK(requestError(R"({"layout":)" + std::string(100, '[') + std::string(100, ']') + "}") ==
          "body: nested deeper than 32 levels");
}

TEST_CASE("api: recording start body, answers and metadata", "[protocol][recording]") {
    CHECK_FALSE(api::parseRecordingStart("").format);
    CHECK_FALSE(api::parseRecordingStart("  \n").format);
    CHECK_FALSE(api::parseRecordingStart("{}").format);
    CHECK(api::parseRecordingStart(R"({"format":"webm"})").format == std::optional<std::string>("webm"));
    CHECK(api::parseRecordingStart(R"({"format":"mp4"})").format == std::optional<std::string>("mp4"));
    for (const char* bad :
         {R"({"format":"avi"})", R"({"format":"../x"})", R"({"format":3})", "[]", "nope", R"({"format":1e444})"}) {
        INFO(bad);
        CHECK_THROWS_AS(api::parseRecordingStart(bad), Error);
    }
    CHECK(api::serializeRecordingStarted("/r/a.mkv") == R"({"file":"/r/a.mkv"})");
    CHECK(api::serializeRecordingStopped("/r/a.mkv", 10.5) == R"({"file":"/r/a.mkv","duration":10.5})");

    api::RecordingMetadata m;
    m.room = "a";
    m.format = "mkv";
    m.file = "/r/a.mkv";
    m.started = "2026-01-02T03:04:05Z";
    m.segments.push_back({"/r/a.mkv", 0});
    m.timeline.push_back({1.5, "join", "p1", "Alice"});
    const auto json = nlohmann::json::parse(api::serialize(m));
    CHECK(json.at("state") == "recording");
    CHECK_FALSE(json.contains("duration"));
    CHECK(json.at("segments").at(0).at("file") == "/r/a.mkv");
    CHECK(json.at("timeline").at(0).at("event") == "join");
    CHECK(json.at("timeline").at(0).at("offset") == 1.5);
    m.state = "finished";
    m.duration = 12.25;
    CHECK(nlohmann::json::parse(api::serialize(m)).at("duration") == 12.25);
}

TEST_CASE("api: live start bodies, RTMP URLs and their redaction", "[protocol][live]") {
    const auto live = api::parseLiveStart(R"({"hls": true, "rtmp": "rtmp://h.example/app/key", "retry": true})");
    CHECK(live.hls);
    CHECK(live.retry);
    CHECK(live.rtmp == std::vector<std::string>{"rtmp://h.example/app/key"});
    CHECK(api::parseLiveStart(R"({"rtmp": ["rtmp://a/x/1", "rtmps://b:443/y/2"]})").rtmp.size() == 2);
    for (const char* bad : {"", "[]", "{}", "{\"hls\": false}", "{\"hls\": 1}", "{\"retry\": true}", "{\"rtmp\": 5}",
                            "{\"rtmp\": \"http://a/b/c\"}", "{\"rtmp\": \"rtmp://\"}", "{\"rtmp\": \"rtmp://host\"}",
                            "{\"rtmp\": \"rtmp:///app/key\"}", "{\"rtmp\": \"rtmp://h/app key\"}",
                            "{\"rtmp\": [\"rtmp://a/b/c\", 3]}", "{\"hls\": true, \"other\": 1}", "{\"hls\": true"}) {
        INFO(bad);
        CHECK_THROWS_AS(api::parseLiveStart(bad), Error);
    }
    CHECK(api::isRtmpUrl("rtmp://127.0.0.1:1935/live/test"));
    CHECK(api::isRtmpUrl("rtmps://live.example:443/app"));
    CHECK_FALSE(api::isRtmpUrl("rtmp://a/b/\x7f"));
    CHECK_FALSE(api::isRtmpUrl("rtmp://a/b/c\nHost: x"));
    CHECK_FALSE(api::isRtmpUrl("rtmp://a/b/" + std::string(api::kMaxRtmpUrl, 'k')));
    CHECK(api::redactRtmpUrl("rtmp://h:1935/live/secret") == "rtmp://h:1935/live/***");
    CHECK(api::redactRtmpUrl("rtmps://h/app/sub/secret?token=x") == "rtmps://h/app/sub/***");
    CHECK(api::redactRtmpUrl("rtmp://h/app") == "rtmp://h/app");
    CHECK(api::redactRtmpUrl("rtmp://h/app?key=x") == "rtmp://h/app?***");
    CHECK(
        api::serializeLive({{"hls", "hls", "/live/r/index.m3u8", "running", false, "", std::nullopt, 0}}) ==
        R"({"live":[{"id":"hls","kind":"hls","url":"/live/r/index.m3u8","state":"running","retry":false,"failures":0}]})");
}
