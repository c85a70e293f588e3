#pragma once
// Media files decoded back for the integration tests (recordings, live
// streams): small RGB frames with their stamps, and F32 stereo 48 kHz audio.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "harness.h"
#include "tessera/analysis/frames.h"

namespace tessera::testing {

inline constexpr int kThumbWidth = 160, kThumbHeight = 90;
// Files are decoded at 640x360 (the tests' recordings and streams are that
// size): big enough to read a stamp sender's picture.
inline constexpr int kDecodeWidth = 640, kDecodeHeight = 360;

// A file decoded to small RGB frames, the stamps in them (a --stamp sender's
// picture) and F32 stereo 48 kHz audio.
struct Decoded {
    struct Frame {
        double pts = 0; // seconds
        analysis::Thumbnail thumb;
        std::optional<std::uint16_t> stamp;
    };
    struct Chunk {
        double pts = 0, end = 0; // seconds
        std::size_t first = 0;   // index of its first sample frame in `audio`
    };
    std::vector<Frame> frames;
    std::vector<Chunk> chunks;
    std::vector<float> audio; // interleaved stereo
    std::string error;        // empty: decoded to the end
};

// Decodes any file GStreamer's decodebin plays (Matroska, WebM, MP4, FLV, MPEG-TS).
Decoded decodeFile(const std::string& path);
// Tone levels (dBFS) over the decoded audio between two times (seconds).
std::vector<double> toneLevels(const Decoded& d, double from, double to, const std::vector<double>& tones);
// The colour at (fx, fy), fractions of the frame.
analysis::Rgb colourAt(const Decoded::Frame& frame, double fx, double fy);
bool looksLike(analysis::Rgb a, Rgb b);

} // namespace tessera::testing
