// Colour sampling of packed RGB frames: averages, coverage, thumbnails,
// colour names and hex transport. Pure.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

#include "tessera/analysis/frames.h"
#include "tessera/analysis/tones.h"

namespace tessera::analysis {
namespace {

bool valid(const FrameView& frame) noexcept {
    return frame.data != nullptr && frame.width > 0 && frame.height > 0 &&
           frame.stride >= static_cast<std::size_t>(frame.width) * 3;
}

// `rect` clipped to the frame; width or height 0 when nothing is left.
Rect clip(const FrameView& frame, Rect rect) noexcept {
    const long x0 = std::max<long>(rect.x, 0);
    const long y0 = std::max<long>(rect.y, 0);
    const long x1 = std::min<long>(static_cast<long>(rect.x) + std::max(rect.width, 0), frame.width);
    const long y1 = std::min<long>(static_cast<long>(rect.y) + std::max(rect.height, 0), frame.height);
    if (x1 <= x0 || y1 <= y0) return {0, 0, 0, 0};
    return {static_cast<int>(x0), static_cast<int>(y0), static_cast<int>(x1 - x0), static_cast<int>(y1 - y0)};
}

const std::uint8_t* pixel(const FrameView& frame, int x, int y) noexcept {
    return frame.data + static_cast<std::size_t>(y) * frame.stride + static_cast<std::size_t>(x) * 3;
}

std::uint8_t roundedMean(std::uint64_t sum, std::uint64_t count) noexcept {
    return static_cast<std::uint8_t>((sum + count / 2) / count);
}

int hexDigit(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

struct NamedColor {
    std::string_view name;
    Rgb color;
};

constexpr std::array<NamedColor, 11> kNamedColors{{
    {"black", {0, 0, 0}},
    {"white", {255, 255, 255}},
    {"gray", {128, 128, 128}},
    {"red", {255, 0, 0}},
    {"green", {0, 255, 0}},
    {"blue", {0, 0, 255}},
    {"yellow", {255, 255, 0}},
    {"cyan", {0, 255, 255}},
    {"magenta", {255, 0, 255}},
    {"orange", {255, 165, 0}},
    {"purple", {128, 0, 128}},
}};

} // namespace

std::optional<Rgb> parseColor(std::string_view text) {
    if (text.starts_with("0x") || text.starts_with("0X"))
        text.remove_prefix(2);
    else if (text.starts_with("#"))
        text.remove_prefix(1);
    if (text.size() != 6 && text.size() != 8) return std::nullopt;
    if (text.size() == 8) text.remove_prefix(2); // alpha
    std::uint8_t bytes[3];
    for (std::size_t i = 0; i < 3; ++i) {
        const int hi = hexDigit(text[2 * i]);
        const int lo = hexDigit(text[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        bytes[i] = static_cast<std::uint8_t>(hi * 16 + lo);
    }
    return Rgb{bytes[0], bytes[1], bytes[2]};
}

std::uint32_t toRgb24(Rgb color) noexcept {
    return (std::uint32_t{color.r} << 16) | (std::uint32_t{color.g} << 8) | std::uint32_t{color.b};
}

std::string toString(Rgb color) {
    const std::uint8_t bytes[] = {color.r, color.g, color.b};
    return "#" + toHex(bytes);
}

double colorDistance(Rgb a, Rgb b) noexcept {
    const double dr = double(a.r) - double(b.r);
    const double dg = double(a.g) - double(b.g);
    const double db = double(a.b) - double(b.b);
    return std::sqrt(dr * dr + dg * dg + db * db);
}

bool colorsClose(Rgb a, Rgb b, double tolerance) noexcept { return colorDistance(a, b) <= tolerance; }

std::optional<std::size_t> nearestColor(Rgb color, std::span<const Rgb> palette) noexcept {
    std::optional<std::size_t> best;
    double bestDistance = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < palette.size(); ++i) {
        const double d = colorDistance(color, palette[i]);
        if (d < bestDistance) {
            bestDistance = d;
            best = i;
        }
    }
    return best;
}

std::string_view classifyColor(Rgb color) noexcept {
    std::string_view best = kNamedColors.front().name;
    double bestDistance = std::numeric_limits<double>::infinity();
    for (const auto& named : kNamedColors) {
        const double d = colorDistance(color, named.color);
        if (d < bestDistance) {
            bestDistance = d;
            best = named.name;
        }
    }
    return best;
}

std::optional<Rgb> averageColor(const FrameView& frame, Rect rect) noexcept {
    if (!valid(frame)) return std::nullopt;
    const Rect r = clip(frame, rect);
    if (r.width == 0) return std::nullopt;
    std::uint64_t sum[3] = {0, 0, 0};
    for (int y = r.y; y < r.y + r.height; ++y) {
        const std::uint8_t* p = pixel(frame, r.x, y);
        for (int x = 0; x < r.width; ++x, p += 3) {
            sum[0] += p[0];
            sum[1] += p[1];
            sum[2] += p[2];
        }
    }
    const auto count = static_cast<std::uint64_t>(r.width) * static_cast<std::uint64_t>(r.height);
    return Rgb{roundedMean(sum[0], count), roundedMean(sum[1], count), roundedMean(sum[2], count)};
}

std::optional<Rgb> averageColor(const FrameView& frame) noexcept {
    return averageColor(frame, Rect{0, 0, frame.width, frame.height});
}

double colorCoverage(const FrameView& frame, Rect rect, Rgb target, double tolerance) noexcept {
    if (!valid(frame)) return 0;
    const Rect r = clip(frame, rect);
    if (r.width == 0) return 0;
    std::uint64_t hits = 0;
    for (int y = r.y; y < r.y + r.height; ++y) {
        const std::uint8_t* p = pixel(frame, r.x, y);
        for (int x = 0; x < r.width; ++x, p += 3)
            if (colorsClose(Rgb{p[0], p[1], p[2]}, target, tolerance)) ++hits;
    }
    return static_cast<double>(hits) / (static_cast<double>(r.width) * static_cast<double>(r.height));
}

double colorCoverage(const FrameView& frame, Rgb target, double tolerance) noexcept {
    return colorCoverage(frame, Rect{0, 0, frame.width, frame.height}, target, tolerance);
}

Thumbnail makeThumbnail(const FrameView& frame, int width, int height) {
    Thumbnail thumb;
    if (!valid(frame) || width <= 0 || height <= 0) return thumb;
    width = std::min(width, frame.width);
    height = std::min(height, frame.height);
    thumb.width = width;
    thumb.height = height;
    thumb.rgb.resize(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3);
    // Cell (i, j) covers source columns [i*W/w, (i+1)*W/w) and rows likewise.
    const auto edge = [](int i, int source, int cells) {
        return static_cast<int>(static_cast<long long>(i) * source / cells);
    };
    std::uint8_t* out = thumb.rgb.data();
    for (int j = 0; j < height; ++j) {
        const int y0 = edge(j, frame.height, height);
        const int y1 = edge(j + 1, frame.height, height);
        for (int i = 0; i < width; ++i) {
            const int x0 = edge(i, frame.width, width);
            const int x1 = edge(i + 1, frame.width, width);
            const auto color = averageColor(frame, Rect{x0, y0, x1 - x0, y1 - y0}).value_or(Rgb{});
            *out++ = color.r;
            *out++ = color.g;
            *out++ = color.b;
        }
    }
    return thumb;
}

Rect scaleRect(Rect rect, int canvasWidth, int canvasHeight, int gridWidth, int gridHeight) noexcept {
    if (canvasWidth <= 0 || canvasHeight <= 0 || gridWidth <= 0 || gridHeight <= 0 || rect.width <= 0 ||
        rect.height <= 0)
        return {0, 0, 0, 0};
    // One axis: [a, a+len) of `canvas` onto cells of `grid`, inwards.
    const auto axis = [](long long a, long long len, long long canvas, long long grid, int& start, int& size) {
        const long long lo = std::clamp(a, 0LL, canvas);
        const long long hi = std::clamp(a + len, 0LL, canvas);
        long long first = (lo * grid + canvas - 1) / canvas; // ceil
        long long last = (hi * grid) / canvas;               // floor, exclusive
        if (last <= first && hi > lo) {
            // Narrower than a cell: the cell holding its centre.
            first = std::min(((lo + hi) / 2) * grid / canvas, grid - 1);
            last = first + 1;
        }
        start = static_cast<int>(first);
        size = static_cast<int>(std::max(last - first, 0LL));
    };
    Rect out;
    axis(rect.x, rect.width, canvasWidth, gridWidth, out.x, out.width);
    axis(rect.y, rect.height, canvasHeight, gridHeight, out.y, out.height);
    if (out.width == 0 || out.height == 0) return {0, 0, 0, 0};
    return out;
}

std::string toHex(std::span<const std::uint8_t> bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.resize(bytes.size() * 2);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        out[2 * i] = kDigits[bytes[i] >> 4];
        out[2 * i + 1] = kDigits[bytes[i] & 0x0F];
    }
    return out;
}

std::optional<std::vector<std::uint8_t>> fromHex(std::string_view hex) {
    if (hex.size() % 2 != 0) return std::nullopt;
    std::vector<std::uint8_t> out(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        const int hi = hexDigit(hex[2 * i]);
        const int lo = hexDigit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
    }
    return out;
}

std::optional<Thumbnail> thumbnailFromHex(int width, int height, std::string_view hex) {
    if (width <= 0 || height <= 0) return std::nullopt;
    auto bytes = fromHex(hex);
    if (!bytes || bytes->size() != static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3)
        return std::nullopt;
    return Thumbnail{width, height, std::move(*bytes)};
}

} // namespace tessera::analysis
