// SDP offer planning: a client's offer, first and as a renegotiation of
// itself, for each video codec a room can have.
#include "fuzz.h"

#include <tessera/protocol/offer_plan.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tessera::protocol;
    for (const char* codec : {"VP8", "H264", "VP9"}) {
        tessera::fuzz::run(data, size, [codec](std::string_view sdp) {
            offerMedia(sdp);
            const OfferPlan first = planOffer(sdp, {}, codec);
            planOffer(sdp, first.state, codec);
        });
    }
    return 0;
}
