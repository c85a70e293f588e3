// Config files (and the command-line flags, which go through the same path).
#include "fuzz.h"

#include <tessera/protocol/config.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return tessera::fuzz::run(data, size, [](std::string_view text) {
        tessera::Config config;
        tessera::applyConfigJson(config, text);
    });
}
