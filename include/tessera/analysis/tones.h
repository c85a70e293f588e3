#pragma once
// Pure signal analysis for tessera-client, the tests and the benchmark: tone
// levels (Goertzel) over received audio. No GStreamer, no JSON.
//
// Level conventions (dBFS, full scale = 1.0 for F32, 32768 for S16):
// - toneLevelDbfs: 20*log10(peak amplitude of the sinusoid at that
//   frequency). A full-scale sine reads 0 dBFS; audiotestsrc volume=0.3 reads
//   about -10.5 dBFS.
// - rmsDbfs: 20*log10(RMS). A full-scale sine reads -3.01 dBFS.
// Both are floored at kSilenceDbfs, so silence is a finite number (JSON has no
// -inf).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::analysis {

inline constexpr double kSilenceDbfs = -120.0;

// 20*log10(amplitude), floored at kSilenceDbfs (also for 0, negative or NaN).
double amplitudeToDbfs(double amplitude) noexcept;

// Level of the sinusoid at `frequency` Hz in interleaved samples with
// `channels` channels (averaged to mono first). Hann-windowed Goertzel
// evaluated at exactly `frequency` (no bin rounding), so the frequency
// resolution is about 2 * sampleRate / frames: use >= 100 ms of audio to
// separate tones 20 Hz apart, 1 s for 2 Hz. Empty input, channels == 0 or a
// frequency outside (0, sampleRate/2) reads kSilenceDbfs.
double toneLevelDbfs(std::span<const float> interleaved, unsigned channels, double sampleRate,
                     double frequency) noexcept;
double toneLevelDbfs(std::span<const std::int16_t> interleaved, unsigned channels, double sampleRate,
                     double frequency) noexcept;

// toneLevelDbfs for several frequencies at once (one downmix), same order.
std::vector<double> toneLevelsDbfs(std::span<const float> interleaved, unsigned channels, double sampleRate,
                                   std::span<const double> frequencies);
std::vector<double> toneLevelsDbfs(std::span<const std::int16_t> interleaved, unsigned channels, double sampleRate,
                                   std::span<const double> frequencies);

// RMS over all samples of all channels, in dBFS.
double rmsDbfs(std::span<const float> samples) noexcept;
double rmsDbfs(std::span<const std::int16_t> samples) noexcept;

// "440,660.5,880" -> {440, 660.5, 880}. nullopt if empty, if an item is not a
// number or is not in (0, 100000).
std::optional<std::vector<double>> parseFrequencyList(std::string_view text);

} // namespace tessera::analysis
