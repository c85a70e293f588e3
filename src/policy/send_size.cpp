#include "tessera/policy/send_size.h"

#include <algorithm>
#include <cmath>

namespace tessera::policy {
namespace {

unsigned evenAtLeast2(double value) {
    const auto even = 2 * static_cast<long long>(std::floor(value / 2));
    return static_cast<unsigned>(std::max(2LL, even));
}

} // namespace

SendRequest sendRequest(unsigned tileWidth, unsigned tileHeight, const SendSizeInput& input) {
    if (tileWidth == 0 || tileHeight == 0 || input.canvasWidth == 0 || input.canvasHeight == 0) return {false, 0, 0, 0};
    // Rounded down: a sender asked for a pixel more than is shown spends bits
    // the composite throws away.
    double scale = 1;
    if (input.outputWidth > 0 && input.outputHeight > 0)
        scale = std::min({1.0, static_cast<double>(input.outputWidth) / input.canvasWidth,
                          static_cast<double>(input.outputHeight) / input.canvasHeight});
    const unsigned width = evenAtLeast2(tileWidth * scale), height = evenAtLeast2(tileHeight * scale);
    const double share =
        static_cast<double>(tileWidth) * tileHeight / (static_cast<double>(input.canvasWidth) * input.canvasHeight);
    const std::int64_t most = std::max<std::int64_t>(0, input.outputBitrate);
    const double bits = std::min(static_cast<double>(most),
                                 std::max(static_cast<double>(kMinSendBitrate), share * static_cast<double>(most)));
    return {true, width, height, std::llround(bits)};
}

} // namespace tessera::policy
