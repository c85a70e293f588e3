#include "tessera/auth/random.h"

#include <sys/random.h>

#include <cerrno>
#include <system_error>
#include <vector>

namespace tessera::auth {

std::string randomHex(std::size_t bytes) {
    std::vector<unsigned char> buffer(bytes);
    for (std::size_t got = 0; got < bytes;) {
        // Blocks only until the pool is first seeded, early in boot; a signal
        // may cut a read short.
        const ssize_t n = getrandom(buffer.data() + got, bytes - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::system_error(errno, std::generic_category(), "getrandom");
        }
        got += static_cast<std::size_t>(n);
    }
    constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * bytes);
    for (const unsigned char b : buffer) {
        out += kDigits[b >> 4];
        out += kDigits[b & 0x0f];
    }
    return out;
}

} // namespace tessera::auth
