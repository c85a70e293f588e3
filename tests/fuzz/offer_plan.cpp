// SDP offer planning: a client's offer, first and as a renegotiation of
// itself, for each video codec a server can have and for all of them.
#include "fuzz.h"

#include <tessera/protocol/offer_plan.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tessera::protocol;
    static const std::vector<std::vector<std::string>> preferences = {
        {"vp8"}, {"h264"}, {"vp9"}, {"vp8", "h264", "vp9"}};
    for (const auto& codecs : preferences) {
        tessera::fuzz::run(data, size, [&codecs](std::string_view sdp) {
            offerMedia(sdp);
            const OfferPlan first = planOffer(sdp, {}, codecs);
            planOffer(sdp, first.state, codecs);
        });
    }
    return 0;
}
