#include "tessera/auth/jwt.h"

#include <jwt.h>

#include <cstdlib>
#include <memory>

#include "tessera/protocol/error.h"

namespace tessera::auth {
namespace {

using JwtPtr = std::unique_ptr<jwt_t, decltype(&jwt_free)>;
struct FreeString {
    void operator()(char* text) const noexcept { std::free(text); }
};
using StringPtr = std::unique_ptr<char, FreeString>;

const unsigned char* keyBytes(std::string_view secret) { return reinterpret_cast<const unsigned char*>(secret.data()); }

} // namespace

protocol::RoomTokenClaims verifyRoomToken(std::string_view token, std::string_view secret) {
    if (secret.empty()) throw Error(ErrorCode::Internal, "no token secret configured");
    jwt_t* decoded = nullptr;
    const std::string text(token);
    const int status = jwt_decode(&decoded, text.c_str(), keyBytes(secret), static_cast<int>(secret.size()));
    const JwtPtr jwt(decoded, &jwt_free);
    if (status != 0 || !jwt) throw Error(ErrorCode::Unauthorized, "token: not a JWT signed by this server");
    // libjwt decodes an unsigned ("alg": "none") token without complaint,
    // and would check another algorithm's signature with our secret as its
    // key: only HS256, which it verified with the secret, counts.
    if (jwt_get_alg(jwt.get()) != JWT_ALG_HS256)
        throw Error(ErrorCode::Unauthorized, "token: must be signed with HS256");
    const StringPtr payload(jwt_get_grants_json(jwt.get(), nullptr));
    if (!payload) throw Error(ErrorCode::Unauthorized, "token: no payload");
    return protocol::parseRoomTokenClaims(payload.get());
}

std::string mintRoomToken(const protocol::RoomTokenClaims& claims, std::string_view secret) {
    if (secret.empty()) throw Error(ErrorCode::BadRequest, "no token secret configured (tokenSecret, --token-secret)");
    jwt_t* created = nullptr;
    if (jwt_new(&created) != 0) throw Error(ErrorCode::Internal, "cannot create a JWT");
    const JwtPtr jwt(created, &jwt_free);
    if (jwt_add_grants_json(jwt.get(), protocol::serializeRoomTokenClaims(claims).c_str()) != 0 ||
        jwt_set_alg(jwt.get(), JWT_ALG_HS256, keyBytes(secret), static_cast<int>(secret.size())) != 0) {
        throw Error(ErrorCode::Internal, "cannot sign the token");
    }
    const StringPtr encoded(jwt_encode_str(jwt.get()));
    if (!encoded) throw Error(ErrorCode::Internal, "cannot encode the token");
    return encoded.get();
}

} // namespace tessera::auth
