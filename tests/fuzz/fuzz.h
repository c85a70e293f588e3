#pragma once
// The shape every fuzz target shares: run the parser on the input and accept
// tessera::Error, the documented answer to bad input. Anything else escapes
// and libFuzzer reports it as a crash.
#include <tessera/protocol/error.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tessera::fuzz {

template <typename Parse>
int run(const std::uint8_t* data, std::size_t size, Parse parse) {
    try {
        parse(std::string_view(reinterpret_cast<const char*>(data), size));
    } catch (const Error&) {}
    return 0;
}

} // namespace tessera::fuzz
