#pragma once
// Machine-readable time stamps in pictures and sound, for the benchmark's
// glass-to-glass latency (bench/README.md). Pure: no GStreamer.
//
// Picture: the sender's whole frame is magenta with two rows of kBits
// black/white blocks inside: the upper row is the stamp (most significant bit
// first, white = 1), the lower row its complement, so that a reader can tell
// a clean read from a blurred one. The magenta border lets the reader find
// the tile anywhere in a composite, whatever the layout.
// Sound: a short 4 kHz burst at every whole second of the sender's wall clock.
#include <cstdint>
#include <optional>
#include <vector>

#include "tessera/analysis/frames.h"
#include "tessera/analysis/tones.h"

namespace tessera::analysis::stamp {

constexpr int kBits = 16; // the stamp is wall-clock milliseconds modulo 2^16

struct I420View {
    std::uint8_t* y;
    int yStride;
    std::uint8_t* u;
    int uStride;
    std::uint8_t* v;
    int vStride;
    int width;
    int height;
};

// Paints `value` over the whole frame (see above).
void paintI420(const I420View& frame, std::uint16_t value);

// Finds the magenta tile in a packed RGB frame and reads its stamp; nullopt
// if there is no tile or a block is ambiguous.
std::optional<std::uint16_t> readRgb(const analysis::FrameView& frame);

// Milliseconds from `stamp` to `nowMs` (both wall clock), modulo 2^16.
double elapsedMs(std::uint16_t stamp, double nowMs);

// Audio clicks. Writes the burst into mono S16 samples whose first sample
// plays at wall-clock `startMs` (rate Hz), wherever a whole second falls in them.
void paintClicks(std::int16_t* samples, std::size_t count, double startMs, int rate);

// Finds click onsets in received mono F32 audio; keeps its state between
// buffers. Returns the onsets' sample offsets within `samples`.
class ClickDetector {
public:
    std::vector<std::size_t> feed(const float* samples, std::size_t count);

private:
    float m_previous = 0.0f;
    std::uint64_t m_quiet = 0; // samples since the last loud one
};

// Latency of a click heard at wall-clock `onsetMs`: the time since the last
// whole second (clicks are sent once a second, so delays must be < 1 s).
double clickLatencyMs(double onsetMs);

} // namespace tessera::analysis::stamp
