// Room tokens: the claims and their rules (pure), and the HS256 signature
// through libjwt, with tokens made here the way an attacker would make them.
#include <glib.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "tessera/auth/jwt.h"
#include "tessera/protocol/error.h"
#include "tessera/protocol/room_token.h"

using namespace tessera;
using namespace tessera::protocol;

namespace {

constexpr std::int64_t kNow = 1'800'000'000;
const std::string kSecret = "0123456789abcdef0123456789abcdef";

RoomTokenClaims claims(const std::string& room = "standup", const std::string& name = "Ada") {
    return RoomTokenClaims{room, name, kNow + 3600, kNow, kNow, "", Grants{}};
}

std::string base64url(const std::string& text) {
    gchar* encoded = g_base64_encode(reinterpret_cast<const guchar*>(text.data()), text.size());
    std::string out = encoded;
    g_free(encoded);
    for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
    while (!out.empty() && out.back() == '=') out.pop_back();
    return out;
}

// The token's three segments with the payload replaced.
std::string withPayload(const std::string& token, const std::string& payload) {
    const auto first = token.find('.'), second = token.find('.', first + 1);
    return token.substr(0, first + 1) + base64url(payload) + token.substr(second);
}

void refused(const std::function<void()>& action, const std::string& reason) {
    try {
        action();
        FAIL("accepted; expected: " << reason);
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::Unauthorized);
        CHECK_THAT(e.what(), Catch::Matchers::Contains(reason));
    }
}

} // namespace

TEST_CASE("room token claims: what is read, what is required", "[token]") {
    const RoomTokenClaims read = parseRoomTokenClaims(
        R"({"room": "standup", "name": "Ada", "exp": 1800003600, "nbf": 1800000000.5, "iss": "app", "grants": ["subscribe"]})");
    CHECK(read.room == "standup");
    CHECK(read.name == "Ada");
    CHECK(read.exp == 1800003600);
    CHECK(read.nbf == 1800000000);
    CHECK_FALSE(read.iat.has_value());
    CHECK(read.grants == Grants{false, true, false});
    // Without "grants": a participant's rights, never admin.
    CHECK(parseRoomTokenClaims(R"({"room": "r", "name": "n", "exp": 1})").grants == Grants{true, true, false});
    // What serialize writes reads back the same.
    const RoomTokenClaims admin{"r", "n", 5, 3, 2, "id-1", Grants{false, false, true}};
    const RoomTokenClaims back = parseRoomTokenClaims(serializeRoomTokenClaims(admin));
    CHECK(back.room == "r");
    CHECK(back.exp == 5);
    CHECK(back.nbf == 3);
    CHECK(back.iat == 2);
    CHECK(back.jti == "id-1");
    CHECK(back.grants == admin.grants);

    for (const auto& [payload, reason] : std::vector<std::pair<std::string, std::string>>{
             {"[1]", "not a JSON object"},
             {"{", "not a JSON object"},
             {R"({"name": "n", "exp": 1})", R"(needs "room")"},
             {R"({"room": "a/b", "name": "n", "exp": 1})", R"("room" must be)"},
             {R"({"room": "r", "exp": 1})", R"(needs "name")"},
             {R"({"room": "r", "name": "", "exp": 1})", R"("name" must be)"},
             {R"({"room": "r", "name": "a\u0007b", "exp": 1})", R"("name" must be)"},
             {R"({"room": "r", "name": "n"})", R"(needs "exp")"},
             {R"({"room": "r", "name": "n", "exp": "tomorrow"})", R"("exp" must be)"},
             {R"({"room": "r", "name": "n", "exp": -5})", R"("exp" must be)"},
             {R"({"room": "r", "name": "n", "exp": 1, "nbf": null})", R"("nbf" must be)"},
             {R"({"room": "r", "name": "n", "exp": 1, "grants": "admin"})", R"("grants" must be)"},
             {R"({"room": "r", "name": "n", "exp": 1, "grants": ["root"]})", R"("grants" must be)"},
         }) {
        INFO(payload);
        refused([&] { parseRoomTokenClaims(payload); }, reason);
    }
}

TEST_CASE("room token rules: its room only, from nbf to exp, with 30 s of clock skew", "[token]") {
    const RoomTokenClaims c = claims();
    CHECK_NOTHROW(checkRoomToken(c, "standup", kNow));
    refused([&] { checkRoomToken(c, "other", kNow); }, "another room");
    refused([&] { checkRoomToken(c, "Standup", kNow); }, "another room");
    // Expiry: accepted up to the skew past it, not a second more.
    CHECK_NOTHROW(checkRoomToken(c, "standup", c.exp + kClockSkewSeconds));
    refused([&] { checkRoomToken(c, "standup", c.exp + kClockSkewSeconds + 1); }, "expired");
    // Not before: accepted from the skew before it.
    RoomTokenClaims later = c;
    later.nbf = kNow + 600;
    refused([&] { checkRoomToken(later, "standup", kNow + 600 - kClockSkewSeconds - 1); }, "not valid yet");
    CHECK_NOTHROW(checkRoomToken(later, "standup", kNow + 600 - kClockSkewSeconds));
    later.nbf.reset();
    CHECK_NOTHROW(checkRoomToken(later, "standup", 0));
}

TEST_CASE("tessera token's grants and durations", "[token]") {
    CHECK(parseGrants("publish,subscribe") == Grants{true, true, false});
    CHECK(parseGrants("subscribe") == Grants{false, true, false});
    CHECK(parseGrants("admin,publish") == Grants{true, false, true});
    for (const char* bad : {"", "publish,,subscribe", "Publish", "publish subscribe", "root"}) {
        INFO(bad);
        CHECK_THROWS_AS(parseGrants(bad), Error);
    }
    CHECK(parseDuration("90") == 90);
    CHECK(parseDuration("90s") == 90);
    CHECK(parseDuration("15m") == 900);
    CHECK(parseDuration("1h") == 3600);
    CHECK(parseDuration("7d") == 7 * 86400);
    CHECK(parseDuration("366d") == 366 * 86400);
    for (const char* bad : {"", "h", "0", "0h", "-5m", "1.5h", "1w", "367d", "99999999999"}) {
        INFO(bad);
        CHECK_FALSE(parseDuration(bad).has_value());
    }
}

TEST_CASE("room tokens: only HS256 signed with the secret verifies", "[token][jwt]") {
    const std::string token = auth::mintRoomToken(claims(), kSecret);
    const RoomTokenClaims verified = auth::verifyRoomToken(token, kSecret);
    CHECK(verified.room == "standup");
    CHECK(verified.name == "Ada");
    CHECK(verified.exp == kNow + 3600);
    CHECK(verified.grants == Grants{true, true, false});

    refused([&] { auth::verifyRoomToken(token, kSecret + "x"); }, "not a JWT signed by this server");
    refused([&] { auth::verifyRoomToken("", kSecret); }, "not a JWT signed by this server");
    refused([&] { auth::verifyRoomToken("a.b.c", kSecret); }, "not a JWT signed by this server");
    // A payload changed under the old signature (another room, admin added).
    const std::string forged = serializeRoomTokenClaims(
        RoomTokenClaims{"boardroom", "Ada", kNow + 3600, kNow, kNow, "", Grants{true, true, true}});
    refused([&] { auth::verifyRoomToken(withPayload(token, forged), kSecret); }, "not a JWT signed by this server");
    // Unsigned: "alg": "none", with and without a signature segment.
    const std::string none = base64url(R"({"alg":"none","typ":"JWT"})") + "." + base64url(forged);
    for (const std::string& unsigned_ : {none + ".", none, none + "." + token.substr(token.rfind('.') + 1)}) {
        INFO(unsigned_);
        refused([&] { auth::verifyRoomToken(unsigned_, kSecret); }, "");
    }
    // Signed with the same secret but another algorithm.
    const std::string hs512 = base64url(R"({"alg":"HS512","typ":"JWT"})") + "." + base64url(forged) + ".AAAA";
    refused([&] { auth::verifyRoomToken(hs512, kSecret); }, "");
    // A well-signed token whose claims are bad is refused for its claims.
    refused([&] { auth::verifyRoomToken(auth::mintRoomToken(claims("standup", ""), kSecret), kSecret); },
            R"("name" must be)");
}
