#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tessera/protocol/datachannel.h"
#include "tessera/protocol/error.h"

using namespace tessera;

namespace {
std::string errorOf(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::BadRequest);
        return e.what();
    }
    return "no error";
}
} // namespace

TEST_CASE("chat messages are parsed and relayed with sender and time", "[datachannel]") {
    CHECK(protocol::parseChat(R"({"text":"hello"})") == "hello");
    auto out = nlohmann::json::parse(protocol::serializeChat("p1", "Ann", "hello", 1700000000123));
    CHECK(out == nlohmann::json{{"from", "p1"}, {"name", "Ann"}, {"text", "hello"}, {"ts", 1700000000123}});
    CHECK_THAT(errorOf([] { protocol::parseChat("hello"); }), Catch::Contains("chat"));
    CHECK_THAT(errorOf([] { protocol::parseChat(R"({"text":5})"); }), Catch::Contains("chat.text"));
    CHECK_THAT(errorOf([] { protocol::parseChat(R"({"text":""})"); }), Catch::Contains("chat.text"));
    CHECK_THAT(errorOf([] { protocol::parseChat(std::string(20000, 'x')); }), Catch::Contains("16 KiB"));
}

TEST_CASE("file control messages get the sender added", "[datachannel]") {
    const auto control = protocol::annotateFileControl(
        R"({"type":"start","id":"abc1","name":"a.bin","size":5,"mime":"x/y"})", "p2", "Bo");
    CHECK(control.type == "start");
    CHECK(control.id == "abc1");
    auto out = nlohmann::json::parse(control.relayed);
    CHECK(out["from"] == "p2");
    CHECK(out["fromName"] == "Bo");
    CHECK(out["size"] == 5);
    CHECK_THAT(errorOf([] { protocol::annotateFileControl(R"({"id":"a"})", "p", "n"); }), Catch::Contains("file.type"));
    CHECK_THAT(errorOf([] { protocol::annotateFileControl(R"({"type":"start","id":"../x"})", "p", "n"); }),
               Catch::Contains("file.id"));
    CHECK_THAT(errorOf([] { protocol::annotateFileControl("[1]", "p", "n"); }), Catch::Contains("JSON object"));
}

TEST_CASE("file chunks name their transfer; malformed chunks are refused", "[datachannel]") {
    CHECK(protocol::chunkTransferId(std::string("\x02"
                                                "a1"
                                                "x",
                                                4)) == "a1");
    const std::string longest = std::string(1, '\x20') + std::string(32, 'z') + std::string(16384, '\0');
    CHECK(protocol::chunkTransferId(longest) == std::string(32, 'z'));
    for (const std::string& bad : {std::string(), std::string("\x00x", 2),
                                   std::string("\x02"
                                               "a1",
                                               3),
                                   std::string("\x05"
                                               "a1x",
                                               4),
                                   std::string("\x02"
                                               "a/x",
                                               4),
                                   std::string("\x21") + std::string(33, 'z') + "x", longest + "x"}) {
        INFO("chunk of " << bad.size() << " bytes");
        CHECK_THAT(errorOf([&] { protocol::chunkTransferId(bad); }), Catch::Contains("chunk"));
    }
    const auto cancel = nlohmann::json::parse(protocol::serverCancel("a1", "p1", "Ann", "too fast"));
    CHECK(cancel == nlohmann::json{
                        {"type", "cancel"}, {"id", "a1"}, {"from", "p1"}, {"fromName", "Ann"}, {"reason", "too fast"}});
}
