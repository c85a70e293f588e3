// Layout specs: data/layouts/*.json and the ones clients send.
#include "fuzz.h"

#include <tessera/protocol/layout_spec.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return tessera::fuzz::run(data, size, [](std::string_view json) { tessera::protocol::parseLayoutSpec(json); });
}
