#pragma once
// URI schemes (RFC 3986 3.1), for the ICE server URLs of the configuration
// and of a WHIP/WHEP Link header. Pure string logic.
#include <initializer_list>
#include <string_view>

namespace tessera::protocol {

// Whether `uri` is "<scheme>:<something>" with `scheme` one of `schemes`
// (each given without its ':'). Schemes compare case-insensitively, as RFC
// 3986 says they do ("STUN:host" is "stun:host"); a scheme with nothing after
// its ':' names no server, so it is not one.
bool hasScheme(std::string_view uri, std::initializer_list<std::string_view> schemes) noexcept;

} // namespace tessera::protocol
