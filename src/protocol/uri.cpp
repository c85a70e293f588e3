#include "tessera/protocol/uri.h"

#include <algorithm>
#include <cctype>

namespace tessera::protocol {

bool hasScheme(std::string_view uri, std::initializer_list<std::string_view> schemes) noexcept {
    const auto colon = uri.find(':');
    if (colon == std::string_view::npos || colon + 1 == uri.size()) return false;
    const std::string_view scheme = uri.substr(0, colon);
    const auto sameLetter = [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
    };
    return std::any_of(schemes.begin(), schemes.end(), [&](std::string_view candidate) {
        return std::equal(scheme.begin(), scheme.end(), candidate.begin(), candidate.end(), sameLetter);
    });
}

} // namespace tessera::protocol
