// PeerCore's quality tier: which tier encoder's tee feeds the receiver, and
// moving it to another without a decoder ever seeing a stream mid-GOP.
#include "peer.h"
#include "peer_detail.h"

#define GST_CAT_DEFAULT tessera_media_debug

namespace tessera::media {
using namespace peer_detail;

namespace {

// Moves a receiver's entry pad from one tier tee to another once the old
// tee pad is idle; the receiver then skips frames until the new tier's key
// frame, so its decoder never sees a delta frame of a stream it has not begun.
struct TierSwitch {
    PeerRoom* room; // alive while its streaming threads run this probe
    std::size_t next;
    std::string codec;
    std::string why; // for the key frame's log line
    ElementRef oldTee;
    PadRef entry, newPad;
    std::function<void()> done;
};

// Thread: streaming (the new tier's, in a buffer probe).
GstPadProbeReturn dropUntilKeyFrame(GstPad*, GstPadProbeInfo* info, gpointer) noexcept {
    if (GST_BUFFER_FLAG_IS_SET(GST_PAD_PROBE_INFO_BUFFER(info), GST_BUFFER_FLAG_DELTA_UNIT)) return GST_PAD_PROBE_DROP;
    return GST_PAD_PROBE_REMOVE;
}

// Thread: streaming (the old tier's, in an IDLE probe).
GstPadProbeReturn switchIdle(GstPad* oldPad, GstPadProbeInfo*, gpointer data) noexcept {
    glib::guarded("tier switch probe", [&] {
        auto* sw = static_cast<TierSwitch*>(data);
        gst_pad_unlink(oldPad, sw->entry.get());
        gst_element_release_request_pad(sw->oldTee.get(), oldPad);
        gst_pad_add_probe(sw->entry.get(), GST_PAD_PROBE_TYPE_BUFFER, dropUntilKeyFrame, nullptr, nullptr);
        gst_pad_link(sw->newPad.get(), sw->entry.get());
        sw->room->requestKeyFrame(sw->next, sw->codec, sw->why);
        post(std::move(sw->done));
    });
    return GST_PAD_PROBE_REMOVE;
}

} // namespace

void PeerCore::updateTier(const policy::TierInput& input) {
    const std::int64_t nowMs = g_get_monotonic_time() / 1000;
    policy::TierInput withEstimate = input;
    // Asked on every stats poll too, so silent feedback counts even when none comes.
    withEstimate.estimatedBps = m_bwe.estimate(nowMs);
    {
        std::lock_guard lock(m_mutex);
        if (withEstimate.estimatedBps) m_stats.estimatedBps = static_cast<std::uint64_t>(*withEstimate.estimatedBps);
    }
    if (!m_tiers || !m_videoTeePad || m_switching) return;
    if (!m_tiers->update(withEstimate, nowMs) || m_tiers->currentIndex() == m_tier) return;
    // What moved it, for whoever reads why a receiver's picture changed.
    const auto kbps = [](std::optional<std::int64_t> bps) {
        return bps ? std::to_string(*bps / 1000) + " kbit/s" : std::string("none");
    };
    const std::string loss = withEstimate.lossFraction
                                 ? std::to_string(static_cast<int>(*withEstimate.lossFraction * 100 + 0.5)) + " %"
                                 : std::string("none");
    GST_CAT_INFO(tessera_media_debug, "peer %s: tier inputs: estimate %s, declared %s, reported loss %s", m_id.c_str(),
                 kbps(withEstimate.estimatedBps).c_str(), kbps(withEstimate.declaredBps).c_str(), loss.c_str());
    switchTier(m_tiers->currentIndex());
}

PadRef PeerCore::takeTier(std::size_t tier) {
    m_videoTee = ElementRef::borrow(m_room.addReceiver(tier, m_offer.cameraCodec));
    m_tier = tier;
    {
        std::lock_guard lock(m_mutex);
        m_stats.tier = m_parts.ladder.at(tier).name;
    }
    return PadRef::adopt(gst_element_request_pad_simple(m_videoTee.get(), "src_%u"));
}

void PeerCore::switchTier(std::size_t next) {
    GST_CAT_INFO(tessera_media_debug, "peer %s: tier %s -> %s", m_id.c_str(), m_parts.ladder.at(m_tier).name.c_str(),
                 m_parts.ladder.at(next).name.c_str());
    PadRef oldPad = std::move(m_videoTeePad);
    ElementRef oldTee = m_videoTee;
    const std::size_t old = m_tier;
    m_videoTeePad = takeTier(next);
    m_room.removeReceiver(old, m_offer.cameraCodec);
    m_switching = true;
    if (m_entryWatch) m_entryWatch->startedUs = -1; // it starts again on the new tier's key frame
    auto* sw = new TierSwitch{&m_room,
                              next,
                              m_offer.cameraCodec,
                              "peer " + m_id + " switched to tier " + m_parts.ladder.at(next).name,
                              std::move(oldTee),
                              m_videoEntry,
                              m_videoTeePad,
                              [w = WeakCore(weak_from_this())] {
                                  if (auto core = w.lock()) core->m_switching = false;
                              }};
    gst_pad_add_probe(oldPad.get(), GST_PAD_PROBE_TYPE_IDLE, switchIdle, sw,
                      [](gpointer d) noexcept { delete static_cast<TierSwitch*>(d); });
}

} // namespace tessera::media
