// libopus asks the CPU what it supports (the `cpuid` instruction) every
// time opus_custom_mode_create runs, when it is built with custom modes, as
// Debian builds it. Its multistream decoder and encoder, which GStreamer's
// opusdec and opusenc use, run it several times per packet, to compute
// their streams' sizes (opus_decoder_get_size, opus_encoder_get_size). On a
// virtual machine each `cpuid` traps to the hypervisor: 7.4 us here, ~60 us
// per decoded packet, 2.7 times the decode itself, and 16 % of an
// audio-only room's server (bench/README.md). libopus calls the function
// through its PLT, so this definition, exported by the executable
// (modes.dynlist), takes its place: the mode of 48 kHz with 20 ms frames is
// a constant table, looked up once; any other request goes to libopus.
#include "modes.h"

#include <atomic>
#include <cstdlib>

#include <dlfcn.h>
#include <opus/opus_custom.h>

namespace {

std::atomic<std::uint64_t> cachedLookups{0};

using Create = OpusCustomMode* (*)(opus_int32, int, int*);

Create libopusCreate() {
    // Called by libopus, this finds it loaded, as a plugin's dependency:
    // local to the plugin, so RTLD_NEXT would miss it. Called directly (the
    // unit test), it loads it. Its soname is its ABI's.
    void* libopus = dlopen("libopus.so.0", RTLD_LAZY | RTLD_LOCAL);
    void* create = libopus ? dlsym(libopus, "opus_custom_mode_create") : nullptr;
    if (!create) std::abort(); // libopus without custom modes never calls this
    return reinterpret_cast<Create>(create);
}

} // namespace

extern "C" __attribute__((visibility("default"))) OpusCustomMode* opus_custom_mode_create(opus_int32 Fs, int frame_size,
                                                                                          int* error) {
    static const Create create = libopusCreate();
    if (Fs == 48000 && frame_size == 960) {
        static OpusCustomMode* const mode = create(Fs, frame_size, nullptr);
        if (mode) {
            cachedLookups.fetch_add(1, std::memory_order_relaxed);
            if (error) *error = OPUS_OK;
            return mode;
        }
    }
    return create(Fs, frame_size, error);
}

namespace tessera::opus {

std::uint64_t cachedModeLookups() { return cachedLookups.load(std::memory_order_relaxed); }

} // namespace tessera::opus
