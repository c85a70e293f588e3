#pragma once
// Pure colour sampling of decoded video frames for tessera-client, the tests
// and the benchmark: packed RGB pixels in, numbers out. No GStreamer, no JSON.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::analysis {

struct Rgb {
    std::uint8_t r = 0;
    std::uint8_t g = 0;
    std::uint8_t b = 0;
    friend bool operator==(const Rgb&, const Rgb&) = default;
};

// "0xRRGGBB", "#RRGGBB" or "RRGGBB" (case-insensitive); also 8 hex digits
// "0xAARRGGBB" (alpha ignored, the form videotestsrc uses).
std::optional<Rgb> parseColor(std::string_view text);
// Packs as 0xRRGGBB.
std::uint32_t toRgb24(Rgb color) noexcept;
// "#rrggbb".
std::string toString(Rgb color);

// Euclidean distance in RGB (0 .. ~441.7).
double colorDistance(Rgb a, Rgb b) noexcept;
// Distance <= tolerance. 40 absorbs the drift of a solid colour through
// I420 + VP8/H.264 + conversion back to RGB.
bool colorsClose(Rgb a, Rgb b, double tolerance = 40.0) noexcept;
// Index of the palette entry nearest to `color`; nullopt for an empty palette.
std::optional<std::size_t> nearestColor(Rgb color, std::span<const Rgb> palette) noexcept;

// A name for the colour among black, white, gray, red, green, blue, yellow,
// cyan, magenta, orange, purple (the nearest of those reference colours).
std::string_view classifyColor(Rgb color) noexcept;

// A packed RGB image (3 bytes per pixel) in someone else's memory; `stride`
// is the byte distance between rows (>= 3 * width; GStreamer pads RGB rows
// to 4 bytes).
struct FrameView {
    const std::uint8_t* data = nullptr;
    int width = 0;
    int height = 0;
    std::size_t stride = 0;
};

struct Rect {
    int x = 0;
    int y = 0;
    int width = 0;
    int height = 0;
};

// Average colour of `rect` clipped to the frame; nullopt if nothing is left.
std::optional<Rgb> averageColor(const FrameView& frame, Rect rect) noexcept;
// Average colour of the whole frame; nullopt for an empty frame.
std::optional<Rgb> averageColor(const FrameView& frame) noexcept;

// Fraction (0..1) of pixels within `tolerance` of `target` in `rect`
// (clipped; 0 if empty).
double colorCoverage(const FrameView& frame, Rect rect, Rgb target, double tolerance = 40.0) noexcept;
double colorCoverage(const FrameView& frame, Rgb target, double tolerance = 40.0) noexcept;

// A frame downsampled to a small grid: each cell the average colour of the
// block of source pixels it covers (blocks partition the frame; no pixel is
// counted twice or skipped).
struct Thumbnail {
    int width = 0;
    int height = 0;
    std::vector<std::uint8_t> rgb; // width * height * 3, packed rows

    FrameView view() const noexcept { return {rgb.data(), width, height, static_cast<std::size_t>(width) * 3}; }
    Rgb at(int x, int y) const noexcept {
        const auto* p =
            rgb.data() +
            (static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)) * 3;
        return {p[0], p[1], p[2]};
    }
};

inline constexpr int kThumbnailWidth = 64;
inline constexpr int kThumbnailHeight = 36;

// Empty Thumbnail (width 0) if the frame is empty or the grid size is not
// positive. A grid larger than the frame is clamped to the frame size.
Thumbnail makeThumbnail(const FrameView& frame, int width = kThumbnailWidth, int height = kThumbnailHeight);

// Maps a rectangle in a canvas of canvasWidth x canvasHeight (e.g. a layout
// tile in the composite) onto a grid of gridWidth x gridHeight (e.g. the
// thumbnail), rounding inwards so the result covers only cells fully inside
// the tile where possible (at least one cell when the rectangle is not
// empty).
Rect scaleRect(Rect rect, int canvasWidth, int canvasHeight, int gridWidth, int gridHeight) noexcept;

// Lower-case hex, two digits per byte.
std::string toHex(std::span<const std::uint8_t> bytes);
// nullopt for an odd length or a non-hex digit.
std::optional<std::vector<std::uint8_t>> fromHex(std::string_view hex);
// The inverse of toHex(thumbnail.rgb); nullopt if the size does not match.
std::optional<Thumbnail> thumbnailFromHex(int width, int height, std::string_view hex);

} // namespace tessera::analysis
