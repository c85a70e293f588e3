// The benchmark's picture and sound stamps (tools/client/stamp.h).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "tessera/analysis/stamp.h"

using namespace tessera::analysis;

namespace {

// BT.601 limited-range I420 to packed RGB, nearest-neighbour scaled into a
// w x h rectangle at (ox, oy) of an RGB canvas: a tile in a composite.
void blit(const std::vector<std::uint8_t>& y, const std::vector<std::uint8_t>& u, const std::vector<std::uint8_t>& v,
          int sw, int sh, std::vector<std::uint8_t>& rgb, int stride, int ox, int oy, int w, int h) {
    for (int j = 0; j < h; ++j)
        for (int i = 0; i < w; ++i) {
            const int sx = i * sw / w, sy = j * sh / h;
            const double Y = 1.164 * (y[sy * sw + sx] - 16);
            const double U = u[(sy / 2) * (sw / 2) + sx / 2] - 128, V = v[(sy / 2) * (sw / 2) + sx / 2] - 128;
            const auto clamp = [](double c) { return static_cast<std::uint8_t>(std::clamp(c, 0.0, 255.0)); };
            std::uint8_t* p = &rgb[(oy + j) * stride + (ox + i) * 3];
            p[0] = clamp(Y + 1.596 * V);
            p[1] = clamp(Y - 0.392 * U - 0.813 * V);
            p[2] = clamp(Y + 2.017 * U);
        }
}

} // namespace

TEST_CASE("a picture stamp survives scaling into a tile of a composite", "[stamp]") {
    const int sw = 640, sh = 360;
    std::vector<std::uint8_t> y(sw * sh), u(sw * sh / 4), v(sw * sh / 4);
    for (std::uint16_t value : {std::uint16_t{0}, std::uint16_t{0xA5C3}, std::uint16_t{0xFFFF}, std::uint16_t{1234}}) {
        stamp::paintI420({y.data(), sw, u.data(), sw / 2, v.data(), sw / 2, sw, sh}, value);
        const int cw = 1280, ch = 720;
        std::vector<std::uint8_t> rgb(cw * ch * 3, 40);         // a grey composite
        blit(y, u, v, sw, sh, rgb, cw * 3, 520, 300, 250, 140); // a 5x5-grid-sized tile
        const auto read = stamp::readRgb({rgb.data(), cw, ch, static_cast<std::size_t>(cw * 3)});
        REQUIRE(read);
        CHECK(*read == value);
    }
}

TEST_CASE("no stamp is read from a picture without the magenta tile", "[stamp]") {
    std::vector<std::uint8_t> rgb(320 * 180 * 3, 200);
    CHECK_FALSE(stamp::readRgb({rgb.data(), 320, 180, 320 * 3}));
}

TEST_CASE("stamp arithmetic wraps at 2^16 ms", "[stamp]") {
    CHECK(stamp::elapsedMs(65500, 65536.0 * 7 + 30) == Approx(66));
    CHECK(stamp::elapsedMs(100, 65536.0 + 250.5) == Approx(150.5));
    CHECK(stamp::clickLatencyMs(1700000000123.0) == Approx(123));
}

TEST_CASE("a click painted at a whole second is found where it was painted", "[stamp]") {
    // 100 ms of audio starting 40 ms before a whole second.
    std::vector<std::int16_t> s(4800, 0);
    stamp::paintClicks(s.data(), s.size(), 1699999999960.0, 48000);
    std::vector<float> f(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) f[i] = s[i] / 32768.0f;
    stamp::ClickDetector detector;
    std::vector<float> quiet(48000, 0.0f);
    CHECK(detector.feed(quiet.data(), quiet.size()).empty());
    const auto onsets = detector.feed(f.data(), f.size());
    REQUIRE(onsets.size() == 1);
    CHECK(std::abs(static_cast<double>(onsets[0]) - 1920.0) <= 2); // 40 ms in
}
