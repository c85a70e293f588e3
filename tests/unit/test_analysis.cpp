// The pure analysis helpers on synthetic signals and frames.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>
#include <vector>

#include "tessera/analysis/frames.h"
#include "tessera/analysis/tones.h"

using namespace tessera::analysis;

namespace {

constexpr double kRate = 48000.0;

// Interleaved F32: every channel carries the same sum of sines.
std::vector<float> sines(std::vector<std::pair<double, double>> toneAmps, double seconds, unsigned channels = 1,
                         double rate = kRate) {
    const auto frames = static_cast<std::size_t>(seconds * rate);
    std::vector<float> out(frames * channels);
    for (std::size_t i = 0; i < frames; ++i) {
        double v = 0;
        for (auto [f, a] : toneAmps) v += a * std::sin(2 * std::numbers::pi * f * static_cast<double>(i) / rate + 0.3);
        for (unsigned c = 0; c < channels; ++c) out[i * channels + c] = static_cast<float>(v);
    }
    return out;
}

std::vector<std::int16_t> toS16(const std::vector<float>& in) {
    std::vector<std::int16_t> out(in.size());
    for (std::size_t i = 0; i < in.size(); ++i)
        out[i] = static_cast<std::int16_t>(std::lround(std::clamp(in[i] * 32768.0f, -32768.0f, 32767.0f)));
    return out;
}

// A packed RGB frame with padded rows, filled with `fill`.
struct TestFrame {
    int width;
    int height;
    std::size_t stride;
    std::vector<std::uint8_t> bytes;

    TestFrame(int w, int h, Rgb fill, std::size_t padding = 2)
        : width(w), height(h), stride(static_cast<std::size_t>(w) * 3 + padding),
          bytes(stride * static_cast<std::size_t>(h), 0xEE) {
        paint({0, 0, w, h}, fill);
    }
    void paint(Rect r, Rgb c) {
        for (int y = r.y; y < r.y + r.height; ++y)
            for (int x = r.x; x < r.x + r.width; ++x) {
                auto* p = bytes.data() + static_cast<std::size_t>(y) * stride + static_cast<std::size_t>(x) * 3;
                p[0] = c.r;
                p[1] = c.g;
                p[2] = c.b;
            }
    }
    FrameView view() const { return {bytes.data(), width, height, stride}; }
};

} // namespace

TEST_CASE("amplitudeToDbfs floors silence", "[analysis]") {
    CHECK(amplitudeToDbfs(1.0) == Approx(0.0));
    CHECK(amplitudeToDbfs(0.5) == Approx(-6.0206).margin(1e-3));
    CHECK(amplitudeToDbfs(0.0) == kSilenceDbfs);
    CHECK(amplitudeToDbfs(-1.0) == kSilenceDbfs);
    CHECK(amplitudeToDbfs(std::nan("")) == kSilenceDbfs);
    CHECK(amplitudeToDbfs(1e-9) == kSilenceDbfs);
}

TEST_CASE("Goertzel reads the amplitude of a pure tone", "[analysis]") {
    const auto x = sines({{440, 0.3}}, 1.0);
    CHECK(toneLevelDbfs(x, 1, kRate, 440) == Approx(20 * std::log10(0.3)).margin(0.05));
    // Off the tone: far below.
    CHECK(toneLevelDbfs(x, 1, kRate, 660) < -80);
    CHECK(toneLevelDbfs(x, 1, kRate, 880) < -80);
    // Full scale reads 0 dBFS.
    const auto full = sines({{1000, 1.0}}, 0.5);
    CHECK(toneLevelDbfs(full, 1, kRate, 1000) == Approx(0.0).margin(0.05));
}

TEST_CASE("Goertzel works at frequencies between bins and on short windows", "[analysis]") {
    // 100 ms: bins are 10 Hz apart; 443.7 Hz is between bins.
    const auto x = sines({{443.7, 0.25}}, 0.1);
    CHECK(toneLevelDbfs(x, 1, kRate, 443.7) == Approx(20 * std::log10(0.25)).margin(0.1));
}

TEST_CASE("Goertzel separates a mix of tones", "[analysis]") {
    const auto x = sines({{440, 0.3}, {660, 0.1}, {880, 0.02}}, 1.0, 2);
    const double freqs[] = {440, 660, 880, 550};
    const auto levels = toneLevelsDbfs(x, 2, kRate, freqs);
    REQUIRE(levels.size() == 4);
    CHECK(levels[0] == Approx(20 * std::log10(0.3)).margin(0.05));
    CHECK(levels[1] == Approx(20 * std::log10(0.1)).margin(0.05));
    CHECK(levels[2] == Approx(20 * std::log10(0.02)).margin(0.05));
    CHECK(levels[3] < -80);
}

TEST_CASE("Goertzel on S16 matches F32", "[analysis]") {
    const auto f = sines({{660, 0.3}}, 0.5, 2);
    const auto s = toS16(f);
    CHECK(toneLevelDbfs(s, 2, kRate, 660) == Approx(toneLevelDbfs(f, 2, kRate, 660)).margin(0.01));
    CHECK(toneLevelDbfs(s, 2, kRate, 440) < -70); // quantisation noise floor
    const double freqs[] = {660};
    CHECK(toneLevelsDbfs(s, 2, kRate, freqs).front() == Approx(20 * std::log10(0.3)).margin(0.05));
}

TEST_CASE("Goertzel finds a tone in noise", "[analysis]") {
    auto x = sines({{880, 0.1}}, 1.0);
    std::mt19937 rng(7);
    std::normal_distribution<float> noise(0.0f, 0.1f);
    for (auto& v : x) v += noise(rng);
    CHECK(toneLevelDbfs(x, 1, kRate, 880) == Approx(-20.0).margin(0.5));
    CHECK(toneLevelDbfs(x, 1, kRate, 440) < -45);
}

TEST_CASE("Goertzel degenerate inputs read silence", "[analysis]") {
    const std::vector<float> empty;
    CHECK(toneLevelDbfs(empty, 1, kRate, 440) == kSilenceDbfs);
    const auto x = sines({{440, 0.3}}, 0.1);
    CHECK(toneLevelDbfs(x, 0, kRate, 440) == kSilenceDbfs);
    CHECK(toneLevelDbfs(x, 1, kRate, 0) == kSilenceDbfs);
    CHECK(toneLevelDbfs(x, 1, kRate, 30000) == kSilenceDbfs); // above Nyquist
    const std::vector<float> zeros(4800, 0.0f);
    CHECK(toneLevelDbfs(zeros, 1, kRate, 440) == kSilenceDbfs);
    const double none[] = {1.0};
    CHECK(toneLevelsDbfs(empty, 1, kRate, none) == std::vector<double>{kSilenceDbfs});
}

TEST_CASE("RMS level", "[analysis]") {
    const auto x = sines({{440, 1.0}}, 1.0);
    CHECK(rmsDbfs(x) == Approx(-3.0103).margin(0.01));
    CHECK(rmsDbfs(toS16(sines({{440, 0.5}}, 1.0))) == Approx(-9.0309).margin(0.01));
    const std::vector<float> square(1000, 0.5f);
    CHECK(rmsDbfs(square) == Approx(-6.0206).margin(1e-3));
    CHECK(rmsDbfs(std::vector<float>{}) == kSilenceDbfs);
    CHECK(rmsDbfs(std::vector<std::int16_t>(100, 0)) == kSilenceDbfs);
}

TEST_CASE("parseFrequencyList", "[analysis]") {
    CHECK(parseFrequencyList("440,660,880") == std::vector<double>{440, 660, 880});
    CHECK(parseFrequencyList("440") == std::vector<double>{440});
    CHECK(parseFrequencyList(" 440, 660.5 ") == std::vector<double>{440, 660.5});
    CHECK_FALSE(parseFrequencyList(""));
    CHECK_FALSE(parseFrequencyList("440,"));
    CHECK_FALSE(parseFrequencyList("440,abc"));
    CHECK_FALSE(parseFrequencyList("440x"));
    CHECK_FALSE(parseFrequencyList("-5"));
    CHECK_FALSE(parseFrequencyList("0"));
}

TEST_CASE("parseColor and colour names", "[analysis]") {
    CHECK(parseColor("0xFF8000") == Rgb{255, 128, 0});
    CHECK(parseColor("#00ff7f") == Rgb{0, 255, 127});
    CHECK(parseColor("123456") == Rgb{0x12, 0x34, 0x56});
    CHECK(parseColor("0xFF102030") == Rgb{0x10, 0x20, 0x30});
    CHECK_FALSE(parseColor("0xFF80"));
    CHECK_FALSE(parseColor("0xGG0000"));
    CHECK_FALSE(parseColor(""));
    CHECK(toRgb24(Rgb{0x12, 0x34, 0x56}) == 0x123456u);
    CHECK(toString(Rgb{255, 0, 16}) == "#ff0010");

    CHECK(colorDistance(Rgb{0, 0, 0}, Rgb{3, 4, 0}) == Approx(5.0));
    CHECK(colorsClose(Rgb{250, 10, 5}, Rgb{255, 0, 0}));
    CHECK_FALSE(colorsClose(Rgb{200, 60, 0}, Rgb{255, 0, 0}));
    CHECK(classifyColor(Rgb{240, 20, 15}) == "red");
    CHECK(classifyColor(Rgb{20, 230, 30}) == "green");
    CHECK(classifyColor(Rgb{10, 10, 220}) == "blue");
    CHECK(classifyColor(Rgb{5, 5, 5}) == "black");
    CHECK(classifyColor(Rgb{250, 250, 240}) == "white");
    CHECK(classifyColor(Rgb{230, 230, 20}) == "yellow");

    const Rgb palette[] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    CHECK(nearestColor(Rgb{30, 200, 40}, palette) == 1u);
    CHECK_FALSE(nearestColor(Rgb{}, std::span<const Rgb>{}));
}

TEST_CASE("averageColor of rectangles, clipped, with padded rows", "[analysis]") {
    TestFrame f(64, 48, Rgb{10, 20, 30}, 4);
    f.paint({32, 0, 32, 48}, Rgb{200, 100, 50});
    CHECK(averageColor(f.view(), Rect{0, 0, 32, 48}) == Rgb{10, 20, 30});
    CHECK(averageColor(f.view(), Rect{32, 0, 32, 48}) == Rgb{200, 100, 50});
    CHECK(averageColor(f.view(), Rect{40, 10, 100, 100}) == Rgb{200, 100, 50}); // clipped
    // Half and half: the mean, rounded.
    CHECK(averageColor(f.view()) == Rgb{105, 60, 40});
    CHECK_FALSE(averageColor(f.view(), Rect{64, 0, 10, 10}));
    CHECK_FALSE(averageColor(f.view(), Rect{0, 0, 0, 10}));
    CHECK_FALSE(averageColor(FrameView{}, Rect{0, 0, 1, 1}));

    CHECK(colorCoverage(f.view(), Rgb{200, 100, 50}) == Approx(0.5));
    CHECK(colorCoverage(f.view(), Rect{32, 0, 32, 48}, Rgb{205, 95, 50}) == Approx(1.0));
    CHECK(colorCoverage(f.view(), Rgb{0, 255, 0}) == Approx(0.0));
}

TEST_CASE("makeThumbnail keeps tiles apart", "[analysis]") {
    // A 2x2 grid of colours on 640x360, as a composite would be.
    TestFrame f(640, 360, Rgb{255, 0, 0});
    f.paint({320, 0, 320, 180}, Rgb{0, 255, 0});
    f.paint({0, 180, 320, 180}, Rgb{0, 0, 255});
    f.paint({320, 180, 320, 180}, Rgb{255, 255, 0});
    const auto t = makeThumbnail(f.view());
    REQUIRE(t.width == 64);
    REQUIRE(t.height == 36);
    REQUIRE(t.rgb.size() == 64u * 36u * 3u);
    CHECK(t.at(0, 0) == Rgb{255, 0, 0});
    CHECK(t.at(31, 17) == Rgb{255, 0, 0});
    CHECK(t.at(32, 0) == Rgb{0, 255, 0});
    CHECK(t.at(0, 18) == Rgb{0, 0, 255});
    CHECK(t.at(63, 35) == Rgb{255, 255, 0});
    // A tile of the canvas, mapped onto the thumbnail.
    const Rect tile = scaleRect(Rect{320, 180, 320, 180}, 640, 360, t.width, t.height);
    CHECK(tile.x == 32);
    CHECK(tile.y == 18);
    CHECK(tile.width == 32);
    CHECK(tile.height == 18);
    CHECK(averageColor(t.view(), tile) == Rgb{255, 255, 0});
}

TEST_CASE("makeThumbnail averages blocks of odd sizes", "[analysis]") {
    // 5x3 frame onto 2x1: columns [0,2) and [2,5).
    TestFrame f(5, 3, Rgb{0, 0, 0}, 1);
    f.paint({2, 0, 3, 3}, Rgb{90, 90, 90});
    f.paint({4, 0, 1, 3}, Rgb{0, 0, 0});
    const auto t = makeThumbnail(f.view(), 2, 1);
    REQUIRE(t.width == 2);
    CHECK(t.at(0, 0) == Rgb{0, 0, 0});
    CHECK(t.at(1, 0) == Rgb{60, 60, 60});
    // A grid bigger than the frame is clamped; bad sizes give an empty thumbnail.
    CHECK(makeThumbnail(f.view(), 64, 36).width == 5);
    CHECK(makeThumbnail(f.view(), 0, 36).width == 0);
    CHECK(makeThumbnail(FrameView{}).rgb.empty());
}

TEST_CASE("scaleRect rounds inwards and keeps thin rectangles", "[analysis]") {
    // 1280x720 -> 64x36: 20 px per cell.
    const Rect a = scaleRect(Rect{10, 10, 100, 100}, 1280, 720, 64, 36);
    CHECK(a.x == 1);
    CHECK(a.y == 1);
    CHECK(a.width == 4); // cells 1..4 ([20,100) inside [10,110))
    CHECK(a.height == 4);
    const Rect thin = scaleRect(Rect{105, 0, 5, 720}, 1280, 720, 64, 36);
    CHECK(thin.width == 1);
    CHECK(thin.x == 5);
    CHECK(thin.height == 36);
    const Rect none = scaleRect(Rect{0, 0, 0, 10}, 1280, 720, 64, 36);
    CHECK(none.width == 0);
}

TEST_CASE("hex round trip", "[analysis]") {
    const std::uint8_t bytes[] = {0x00, 0x0f, 0xa5, 0xff};
    CHECK(toHex(bytes) == "000fa5ff");
    CHECK(fromHex("000FA5ff") == std::vector<std::uint8_t>{0x00, 0x0f, 0xa5, 0xff});
    CHECK_FALSE(fromHex("abc"));
    CHECK_FALSE(fromHex("zz"));
    TestFrame f(128, 72, Rgb{1, 2, 3});
    const auto t = makeThumbnail(f.view());
    const auto back = thumbnailFromHex(t.width, t.height, toHex(t.rgb));
    REQUIRE(back);
    CHECK(back->rgb == t.rgb);
    CHECK(back->at(10, 10) == Rgb{1, 2, 3});
    CHECK_FALSE(thumbnailFromHex(64, 36, "00"));
}
