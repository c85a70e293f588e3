#pragma once
// Linked whole into every executable that runs libopus (opus_modes_dep): see
// modes.cpp for why it replaces libopus's opus_custom_mode_create.
#include <cstdint>

namespace tessera::opus {

// How many of libopus's mode lookups this process answered from the cache:
// nonzero once an Opus decoder or encoder ran, if the replacement is in effect.
std::uint64_t cachedModeLookups();

} // namespace tessera::opus
