#include "tessera/analysis/stamp.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace tessera::analysis::stamp {
namespace {

// Where the blocks sit, as fractions of the sender's frame.
constexpr double kLeft = 0.10;
constexpr double kRight = 0.90;
constexpr double kTop = 0.15;
constexpr double kMiddle = 0.50;
constexpr double kBottom = 0.85;

// BT.601 limited range: magenta, black, white.
constexpr std::uint8_t kMagentaY = 105, kMagentaU = 212, kMagentaV = 234;
constexpr std::uint8_t kBlackY = 16, kWhiteY = 235, kGrey = 128;

constexpr int kClickHz = 4000;
constexpr double kClickMs = 10;
constexpr double kClickAmplitude = 0.8;
constexpr float kOnsetStep = 0.2f;    // sample-to-sample change that marks a click
constexpr double kQuietSeconds = 0.5; // a new click needs this much quiet first

void fill(std::uint8_t* plane, int stride, int x0, int y0, int x1, int y1, std::uint8_t value) {
    for (int y = y0; y < y1; ++y) std::fill(plane + y * stride + x0, plane + y * stride + x1, value);
}

bool isMagenta(const std::uint8_t* p) { return p[0] > 150 && p[2] > 150 && p[1] < 100; }

// Mean of R+G+B over the central half of a rectangle.
double brightness(const analysis::FrameView& f, double x0, double y0, double x1, double y1) {
    const double cx = (x0 + x1) / 2, cy = (y0 + y1) / 2, hw = (x1 - x0) / 4, hh = (y1 - y0) / 4;
    const int xa = std::clamp(static_cast<int>(std::lround(cx - hw)), 0, f.width - 1);
    const int xb = std::clamp(static_cast<int>(std::lround(cx + hw)), xa + 1, f.width);
    const int ya = std::clamp(static_cast<int>(std::lround(cy - hh)), 0, f.height - 1);
    const int yb = std::clamp(static_cast<int>(std::lround(cy + hh)), ya + 1, f.height);
    double sum = 0;
    for (int y = ya; y < yb; ++y)
        for (int x = xa; x < xb; ++x) {
            const std::uint8_t* p = f.data + y * f.stride + x * 3;
            sum += p[0] + p[1] + p[2];
        }
    return sum / ((xb - xa) * (yb - ya) * 3.0);
}

} // namespace

void paintI420(const I420View& f, std::uint16_t value) {
    fill(f.y, f.yStride, 0, 0, f.width, f.height, kMagentaY);
    fill(f.u, f.uStride, 0, 0, f.width / 2, f.height / 2, kMagentaU);
    fill(f.v, f.vStride, 0, 0, f.width / 2, f.height / 2, kMagentaV);
    // Chroma blocks in 2x2 units: keep edges even.
    const auto px = [&](double fraction) { return static_cast<int>(fraction * f.width) & ~1; };
    const auto py = [&](double fraction) { return static_cast<int>(fraction * f.height) & ~1; };
    const int top = py(kTop), middle = py(kMiddle), bottom = py(kBottom);
    fill(f.u, f.uStride, px(kLeft) / 2, top / 2, px(kRight) / 2, bottom / 2, kGrey);
    fill(f.v, f.vStride, px(kLeft) / 2, top / 2, px(kRight) / 2, bottom / 2, kGrey);
    for (int i = 0; i < kBits; ++i) {
        const bool one = (value >> (kBits - 1 - i)) & 1;
        const int x0 = px(kLeft + (kRight - kLeft) * i / kBits);
        const int x1 = px(kLeft + (kRight - kLeft) * (i + 1) / kBits);
        fill(f.y, f.yStride, x0, top, x1, middle, one ? kWhiteY : kBlackY);
        fill(f.y, f.yStride, x0, middle, x1, bottom, one ? kBlackY : kWhiteY);
    }
}

std::optional<std::uint16_t> readRgb(const analysis::FrameView& f) {
    if (!f.data || f.width < 16 || f.height < 16) return std::nullopt;
    int x0 = f.width, y0 = f.height, x1 = -1, y1 = -1, count = 0;
    for (int y = 0; y < f.height; y += 2)
        for (int x = 0; x < f.width; x += 2)
            if (isMagenta(f.data + y * f.stride + x * 3)) {
                x0 = std::min(x0, x);
                x1 = std::max(x1, x);
                y0 = std::min(y0, y);
                y1 = std::max(y1, y);
                ++count;
            }
    const double w = x1 - x0 + 2, h = y1 - y0 + 2;
    if (count < 50 || w < 48 || h < 27) return std::nullopt;
    std::uint16_t value = 0;
    for (int i = 0; i < kBits; ++i) {
        const double bx0 = x0 + w * (kLeft + (kRight - kLeft) * i / kBits);
        const double bx1 = x0 + w * (kLeft + (kRight - kLeft) * (i + 1) / kBits);
        const double upper = brightness(f, bx0, y0 + h * kTop, bx1, y0 + h * kMiddle);
        const double lower = brightness(f, bx0, y0 + h * kMiddle, bx1, y0 + h * kBottom);
        if (std::abs(upper - lower) < 60) return std::nullopt;
        value = static_cast<std::uint16_t>((value << 1) | (upper > lower ? 1 : 0));
    }
    return value;
}

double elapsedMs(std::uint16_t stamp, double nowMs) {
    const double now = std::fmod(nowMs, 65536.0);
    double d = now - stamp;
    if (d < 0) d += 65536.0;
    return d;
}

void paintClicks(std::int16_t* samples, std::size_t count, double startMs, int rate) {
    const double endMs = startMs + 1000.0 * static_cast<double>(count) / rate;
    const auto burst = static_cast<long long>(kClickMs * rate / 1000);
    for (double second = std::floor((startMs - kClickMs) / 1000.0) * 1000.0; second < endMs; second += 1000.0) {
        const auto first = std::llround((second - startMs) * rate / 1000.0); // may be < 0
        for (long long k = std::max(0LL, -first); k < burst && first + k < static_cast<long long>(count); ++k) {
            const double phase = 2.0 * std::numbers::pi * kClickHz * static_cast<double>(k) / rate;
            samples[first + k] = static_cast<std::int16_t>(std::lround(kClickAmplitude * 32767.0 * std::sin(phase)));
        }
    }
}

std::vector<std::size_t> ClickDetector::feed(const float* samples, std::size_t count) {
    std::vector<std::size_t> onsets;
    const auto quiet = static_cast<std::uint64_t>(kQuietSeconds * 48000);
    for (std::size_t i = 0; i < count; ++i) {
        const bool loud = std::abs(samples[i] - m_previous) > kOnsetStep;
        m_previous = samples[i];
        if (loud) {
            if (m_quiet >= quiet) onsets.push_back(i);
            m_quiet = 0;
        } else {
            ++m_quiet;
        }
    }
    return onsets;
}

double clickLatencyMs(double onsetMs) { return std::fmod(onsetMs, 1000.0); }

} // namespace tessera::analysis::stamp
