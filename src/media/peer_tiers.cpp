// PeerCore's quality tier: which tier encoder's tee feeds the receiver, and
// moving it to another without a decoder ever seeing a stream mid-GOP. On
// the audio-only tier no tee feeds it: the video m-line stays (nothing is
// renegotiated) but carries nothing until video resumes on a key frame.
#include "peer.h"
#include "peer_detail.h"

#define GST_CAT_DEFAULT tessera_media_debug

namespace tessera::media {
using namespace peer_detail;

namespace {

// Moves a receiver's entry pad off a tier tee once the old tee pad is idle,
// onto another tier's (newPad) or none (the audio-only tier). On a new tier
// the receiver skips frames until its key frame, so its decoder never sees a
// delta frame of a stream it has not begun.
struct TierSwitch {
    PeerRoom* room; // alive while its streaming threads run this probe
    std::size_t next;
    std::string codec;
    std::string why; // for the key frame's log line
    ElementRef oldTee;
    PadRef entry, newPad; // newPad empty: audio only
    std::function<void()> done;
};

// Thread: streaming (the new tier's, in a buffer probe).
GstPadProbeReturn dropUntilKeyFrame(GstPad*, GstPadProbeInfo* info, gpointer) noexcept {
    if (GST_BUFFER_FLAG_IS_SET(GST_PAD_PROBE_INFO_BUFFER(info), GST_BUFFER_FLAG_DELTA_UNIT)) return GST_PAD_PROBE_DROP;
    return GST_PAD_PROBE_REMOVE;
}

// Thread: any. Feeds `entry` from `newPad` starting at the tier's next key frame, and asks for one.
void linkFromKeyFrame(PeerRoom& room, std::size_t tier, const std::string& codec, const std::string& why,
                      GstPad* newPad, GstPad* entry) {
    gst_pad_add_probe(entry, GST_PAD_PROBE_TYPE_BUFFER, dropUntilKeyFrame, nullptr, nullptr);
    gst_pad_link(newPad, entry);
    room.requestKeyFrame(tier, codec, why);
}

// Thread: streaming (the old tier's, in an IDLE probe).
GstPadProbeReturn switchIdle(GstPad* oldPad, GstPadProbeInfo*, gpointer data) noexcept {
    glib::guarded("tier switch probe", [&] {
        auto* sw = static_cast<TierSwitch*>(data);
        gst_pad_unlink(oldPad, sw->entry.get());
        gst_element_release_request_pad(sw->oldTee.get(), oldPad);
        if (sw->newPad) linkFromKeyFrame(*sw->room, sw->next, sw->codec, sw->why, sw->newPad.get(), sw->entry.get());
        post(std::move(sw->done));
    });
    return GST_PAD_PROBE_REMOVE;
}

const char* reasonName(policy::AudioOnlyReason reason) {
    switch (reason) {
    case policy::AudioOnlyReason::Requested: return "request";
    case policy::AudioOnlyReason::Declared: return "maxBitrate";
    case policy::AudioOnlyReason::Link: return "link";
    case policy::AudioOnlyReason::None: break;
    }
    return "";
}

} // namespace

void PeerCore::updateTier(const policy::TierInput& input) {
    const std::int64_t nowMs = g_get_monotonic_time() / 1000;
    policy::TierInput withEstimate = input;
    // Asked on every stats poll too, so silent feedback counts even when none comes.
    withEstimate.estimatedBps = m_bwe.estimate(nowMs);
    withEstimate.estimateFromLossAlone = m_bwe.lossAlone();
    withEstimate.audioOnlyRequested = m_audioOnlyRequested;
    {
        std::lock_guard lock(m_mutex);
        if (withEstimate.estimatedBps) m_stats.estimatedBps = static_cast<std::uint64_t>(*withEstimate.estimatedBps);
    }
    if (!m_bin || !m_tiers || !m_videoEntry || m_switching) return;
    m_tiers->update(withEstimate, nowMs);
    driveProbe(nowMs);
    if (const auto proven = m_tiers->provenBps()) {
        m_bwe.raiseTo(*proven, nowMs);
        GST_CAT_INFO(tessera_media_debug,
                     "peer %s: a passed trial or probe: its link carries %" G_GINT64_FORMAT " kbit/s", m_id.c_str(),
                     *proven / 1000);
    }
    if (const auto refuted = m_tiers->refutedBps()) m_bwe.capBelow(*refuted, nowMs);
    if (m_tiers->currentIndex() != m_tier) {
        // What moved it, for whoever reads why a receiver's picture changed.
        const auto kbps = [](std::optional<std::int64_t> bps) {
            return bps ? std::to_string(*bps / 1000) + " kbit/s" : std::string("none");
        };
        const std::string loss = withEstimate.lossFraction
                                     ? std::to_string(static_cast<int>(*withEstimate.lossFraction * 100 + 0.5)) + " %"
                                     : std::string("none");
        GST_CAT_INFO(tessera_media_debug, "peer %s: tier inputs: estimate %s%s, declared %s, reported loss %s",
                     m_id.c_str(), kbps(withEstimate.estimatedBps).c_str(),
                     withEstimate.estimateFromLossAlone ? " (cut on loss alone)" : "",
                     kbps(withEstimate.declaredBps).c_str(), loss.c_str());
        switchTier(m_tiers->currentIndex());
    }
    tellAudioOnly();
}

void PeerCore::setAudioOnly(bool audioOnly) {
    m_audioOnlyRequested = audioOnly;
    updateTier({m_options.maxBitrate, std::nullopt, std::nullopt});
}

void PeerCore::tellAudioOnly() {
    // A tier asked for by name (a WHEP viewer's ?tier=) has no selector and
    // is never audio only. A trial of the lowest tier is not video back yet:
    // the client keeps saying "audio only" until it passes, rather than
    // flicker at each one.
    if (!m_tiers || m_tiers->inTrial()) return;
    const std::string reason = reasonName(m_tiers->audioOnlyReason());
    if (reason == m_toldAudioOnly) return;
    // Nothing to tell a client that has always had video.
    const bool first = !m_toldAudioOnly;
    m_toldAudioOnly = reason;
    if (first && reason.empty()) return;
    m_listener.onAudioOnly(!reason.empty(), reason);
}

PadRef PeerCore::takeTier(std::size_t tier) {
    m_tier = tier;
    if (tier >= m_parts.ladder.size()) {
        m_videoTee = {};
        std::lock_guard lock(m_mutex);
        m_stats.tier = policy::kAudioOnly;
        return {};
    }
    m_videoTee = ElementRef::borrow(m_room.addReceiver(tier, m_offer.cameraCodec));
    {
        std::lock_guard lock(m_mutex);
        m_stats.tier = m_parts.ladder.at(tier).name;
    }
    return PadRef::adopt(gst_element_request_pad_simple(m_videoTee.get(), "src_%u"));
}

void PeerCore::switchTier(std::size_t next) {
    const auto name = [&](std::size_t t) {
        return t < m_parts.ladder.size() ? m_parts.ladder[t].name.c_str() : policy::kAudioOnly;
    };
    GST_CAT_INFO(tessera_media_debug, "peer %s: tier %s -> %s", m_id.c_str(), name(m_tier), name(next));
    PadRef oldPad = std::move(m_videoTeePad);
    ElementRef oldTee = m_videoTee;
    const std::size_t old = m_tier;
    m_videoTeePad = takeTier(next);
    std::string why = "peer " + m_id + " switched to tier " + name(next);
    if (m_entryWatch) m_entryWatch->startedUs = -1; // it starts again on the new tier's key frame
    if (!oldPad) {
        // From audio only: nothing streams into the entry yet, so no wait.
        linkFromKeyFrame(m_room, next, m_offer.cameraCodec, why, m_videoTeePad.get(), m_videoEntry.get());
        return;
    }
    m_room.removeReceiver(old, m_offer.cameraCodec);
    m_switching = true;
    auto* sw = new TierSwitch{&m_room,
                              next,
                              m_offer.cameraCodec,
                              std::move(why),
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
