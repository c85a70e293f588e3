// Tone levels (Goertzel) and RMS over interleaved PCM. Pure.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <numbers>
#include <string>

#include "tessera/analysis/frames.h"
#include "tessera/analysis/tones.h"

namespace tessera::analysis {
namespace {

constexpr double kS16FullScale = 32768.0;

// Mono downmix, scaled to full scale 1.0.
template <typename Sample>
std::vector<double> downmix(std::span<const Sample> interleaved, unsigned channels, double scale) {
    std::vector<double> mono;
    if (channels == 0) return mono;
    const std::size_t frames = interleaved.size() / channels;
    mono.resize(frames);
    const double factor = 1.0 / (scale * channels);
    for (std::size_t i = 0; i < frames; ++i) {
        double sum = 0;
        for (unsigned c = 0; c < channels; ++c) sum += static_cast<double>(interleaved[i * channels + c]);
        mono[i] = sum * factor;
    }
    return mono;
}

// Hann window, computed once per call and shared by every frequency.
std::vector<double> hann(std::size_t n) {
    std::vector<double> window(n, 1.0);
    if (n < 2) return window;
    const double step = 2.0 * std::numbers::pi / static_cast<double>(n - 1);
    for (std::size_t i = 0; i < n; ++i) window[i] = 0.5 - 0.5 * std::cos(step * static_cast<double>(i));
    return window;
}

// Generalised Goertzel: |DTFT| of the windowed signal at exactly `frequency`,
// turned into the amplitude of a sinusoid there (2|X| / sum(window)).
double goertzelAmplitude(const std::vector<double>& mono, const std::vector<double>& window, double windowSum,
                         double sampleRate, double frequency) noexcept {
    if (mono.empty() || !(frequency > 0) || !(frequency < sampleRate / 2) || !(windowSum > 0)) return 0;
    const double omega = 2.0 * std::numbers::pi * frequency / sampleRate;
    const double coeff = 2.0 * std::cos(omega);
    double s1 = 0;
    double s2 = 0;
    for (std::size_t i = 0; i < mono.size(); ++i) {
        const double s = mono[i] * window[i] + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    const double power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    return 2.0 * std::sqrt(std::max(power, 0.0)) / windowSum;
}

template <typename Sample>
std::vector<double> levels(std::span<const Sample> interleaved, unsigned channels, double sampleRate,
                           std::span<const double> frequencies, double scale) {
    std::vector<double> out(frequencies.size(), kSilenceDbfs);
    const auto mono = downmix(interleaved, channels, scale);
    if (mono.empty() || !(sampleRate > 0)) return out;
    const auto window = hann(mono.size());
    double windowSum = 0;
    for (double w : window) windowSum += w;
    for (std::size_t i = 0; i < frequencies.size(); ++i)
        out[i] = amplitudeToDbfs(goertzelAmplitude(mono, window, windowSum, sampleRate, frequencies[i]));
    return out;
}

template <typename Sample>
double rms(std::span<const Sample> samples, double scale) noexcept {
    if (samples.empty()) return kSilenceDbfs;
    double sum = 0;
    for (Sample s : samples) {
        const double v = static_cast<double>(s) / scale;
        sum += v * v;
    }
    return amplitudeToDbfs(std::sqrt(sum / static_cast<double>(samples.size())));
}

} // namespace

double amplitudeToDbfs(double amplitude) noexcept {
    if (!(amplitude > 0)) return kSilenceDbfs;
    const double db = 20.0 * std::log10(amplitude);
    return db < kSilenceDbfs ? kSilenceDbfs : db;
}

double toneLevelDbfs(std::span<const float> interleaved, unsigned channels, double sampleRate,
                     double frequency) noexcept {
    try {
        const double f[] = {frequency};
        return levels(interleaved, channels, sampleRate, f, 1.0).front();
    } catch (...) { // allocation failure
        return kSilenceDbfs;
    }
}

double toneLevelDbfs(std::span<const std::int16_t> interleaved, unsigned channels, double sampleRate,
                     double frequency) noexcept {
    try {
        const double f[] = {frequency};
        return levels(interleaved, channels, sampleRate, f, kS16FullScale).front();
    } catch (...) {
        return kSilenceDbfs;
    }
}

std::vector<double> toneLevelsDbfs(std::span<const float> interleaved, unsigned channels, double sampleRate,
                                   std::span<const double> frequencies) {
    return levels(interleaved, channels, sampleRate, frequencies, 1.0);
}

std::vector<double> toneLevelsDbfs(std::span<const std::int16_t> interleaved, unsigned channels, double sampleRate,
                                   std::span<const double> frequencies) {
    return levels(interleaved, channels, sampleRate, frequencies, kS16FullScale);
}

double rmsDbfs(std::span<const float> samples) noexcept { return rms(samples, 1.0); }

double rmsDbfs(std::span<const std::int16_t> samples) noexcept { return rms(samples, kS16FullScale); }

std::optional<std::vector<double>> parseFrequencyList(std::string_view text) {
    std::vector<double> out;
    while (true) {
        const auto comma = text.find(',');
        std::string_view item = text.substr(0, comma);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        double value = 0;
        const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
        if (item.empty() || ec != std::errc() || end != item.data() + item.size() || !(value > 0) || !(value < 100000))
            return std::nullopt;
        out.push_back(value);
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return out;
}

} // namespace tessera::analysis
