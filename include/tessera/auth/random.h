#pragma once
// Secrets the server makes up (WHIP/WHEP resource ids): from the kernel's
// CSPRNG, getrandom(2). GLib's g_random_* is a Mersenne Twister, predictable
// from its outputs, so it makes no secret.
#include <cstddef>
#include <string>

namespace tessera::auth {

// `bytes` random bytes as 2 * `bytes` lower-case hex digits. Throws
// std::system_error if the kernel gives none (no getrandom(2)).
std::string randomHex(std::size_t bytes);

} // namespace tessera::auth
