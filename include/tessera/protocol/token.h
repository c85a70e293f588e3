#pragma once
// Comparison of secrets (join and admin tokens).
#include <cstddef>
#include <string_view>

namespace tessera {

// Takes the same time wherever the first difference is, so that response
// timing does not reveal how much of a guessed token was right. An empty
// expected token matches nothing: "no token configured" is the caller's case.
inline bool tokensEqual(std::string_view given, std::string_view expected) noexcept {
    if (expected.empty()) return false;
    unsigned diff = given.size() == expected.size() ? 0 : 1;
    for (std::size_t i = 0; i < given.size(); ++i) {
        diff |= static_cast<unsigned char>(given[i]) ^ static_cast<unsigned char>(expected[i % expected.size()]);
    }
    return diff == 0;
}

} // namespace tessera
