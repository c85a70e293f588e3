#include "tessera/protocol/room_token.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "tessera/protocol/error.h"
#include "tessera/protocol/messages.h"

namespace tessera::protocol {
namespace {

using Json = nlohmann::json;

[[noreturn]] void refuse(const std::string& why) { throw Error(ErrorCode::Unauthorized, "token: " + why); }

std::int64_t seconds(const Json& payload, const char* claim) {
    const Json& value = payload.at(claim);
    // NumericDate (RFC 7519): issuers may write a fraction; whole seconds are enough.
    if (!value.is_number() || !(value.get<double>() >= 0 && value.get<double>() < 1e15)) {
        refuse(std::string("\"") + claim + "\" must be a time in seconds since the epoch");
    }
    return value.is_number_integer() ? value.get<std::int64_t>() : static_cast<std::int64_t>(value.get<double>());
}

constexpr std::int64_t kMaxDuration = std::int64_t{366} * 24 * 3600;

} // namespace

RoomTokenClaims parseRoomTokenClaims(std::string_view payload) {
    const Json json = Json::parse(payload, nullptr, false);
    if (!json.is_object()) refuse("the payload is not a JSON object");
    RoomTokenClaims claims;
    const auto text = [&](const char* claim) {
        const auto found = json.find(claim);
        if (found == json.end() || !found->is_string()) refuse(std::string("needs \"") + claim + "\" (a string)");
        return found->get<std::string>();
    };
    claims.room = text("room");
    if (!isValidRoomName(claims.room)) refuse("\"room\" must be 1-64 characters of [A-Za-z0-9_-]");
    claims.name = text("name");
    if (!isValidName(claims.name)) refuse("\"name\" must be 1-64 characters, no control characters");
    if (!json.contains("exp")) refuse("needs \"exp\": room tokens must expire");
    claims.exp = seconds(json, "exp");
    if (json.contains("nbf")) claims.nbf = seconds(json, "nbf");
    if (json.contains("iat")) claims.iat = seconds(json, "iat");
    if (json.contains("jti")) claims.jti = text("jti");
    if (const auto grants = json.find("grants"); grants != json.end()) {
        if (!grants->is_array()) refuse("\"grants\" must be an array of \"publish\", \"subscribe\", \"admin\"");
        claims.grants = Grants{false, false, false};
        for (const Json& grant : *grants) {
            const std::string name = grant.is_string() ? grant.get<std::string>() : std::string();
            if (name == "publish") {
                claims.grants.publish = true;
            } else if (name == "subscribe") {
                claims.grants.subscribe = true;
            } else if (name == "admin") {
                claims.grants.admin = true;
            } else {
                refuse("\"grants\" must be an array of \"publish\", \"subscribe\", \"admin\"");
            }
        }
    }
    return claims;
}

std::string serializeRoomTokenClaims(const RoomTokenClaims& claims) {
    Json json = {{"room", claims.room}, {"name", claims.name}, {"exp", claims.exp}};
    if (claims.nbf) json["nbf"] = *claims.nbf;
    if (claims.iat) json["iat"] = *claims.iat;
    if (!claims.jti.empty()) json["jti"] = claims.jti;
    Json grants = Json::array();
    if (claims.grants.publish) grants.push_back("publish");
    if (claims.grants.subscribe) grants.push_back("subscribe");
    if (claims.grants.admin) grants.push_back("admin");
    json["grants"] = grants;
    return json.dump();
}

void checkRoomToken(const RoomTokenClaims& claims, std::string_view room, std::int64_t now) {
    if (claims.room != room) refuse("it is for another room");
    if (now > claims.exp + kClockSkewSeconds) refuse("expired");
    if (claims.nbf && now < *claims.nbf - kClockSkewSeconds) refuse("not valid yet");
}

Grants parseGrants(std::string_view list) {
    Grants grants{false, false, false};
    std::string_view rest = list;
    do {
        const std::size_t comma = rest.find(',');
        const std::string_view item = rest.substr(0, comma);
        if (item == "publish") {
            grants.publish = true;
        } else if (item == "subscribe") {
            grants.subscribe = true;
        } else if (item == "admin") {
            grants.admin = true;
        } else {
            throw Error(ErrorCode::BadRequest, "grants: a comma-separated list of publish, subscribe, admin");
        }
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    } while (!rest.empty());
    return grants;
}

std::optional<std::int64_t> parseDuration(std::string_view text) {
    constexpr std::string_view kSuffixes = "smhd";
    constexpr std::int64_t kUnits[] = {1, 60, 3600, 86400};
    std::int64_t unit = 1;
    if (const std::size_t at = text.empty() ? std::string_view::npos : kSuffixes.find(text.back());
        at != std::string_view::npos) {
        unit = kUnits[at];
        text.remove_suffix(1);
    }
    if (text.empty() || text.size() > 9 ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
    }
    const std::int64_t value = std::stoll(std::string(text)) * unit;
    if (value <= 0 || value > kMaxDuration) return std::nullopt;
    return value;
}

} // namespace tessera::protocol
