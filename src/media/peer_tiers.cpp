// PeerCore's quality tier: which tier encoder's tee feeds the receiver, and
// moving it to another without a decoder ever seeing a stream mid-GOP, nor
// its picture stopping for the wait. On the audio-only tier no tee feeds it:
// the video m-line stays (nothing is renegotiated) but carries nothing until
// video resumes on a key frame.
#include <condition_variable>

#include "peer.h"
#include "peer_detail.h"

#define GST_CAT_DEFAULT tessera_media_debug

namespace tessera::media {
using namespace peer_detail;

// A step from one video tier to another. The receiver keeps its old tier's
// frames until the new tier's first key frame, and takes the new tier from
// that frame on: its picture does not stop while the key frame is awaited
// (the encoders' key-frame limit, 500 ms, and the frame's encode).
struct TierStep {
    std::string why; // "peer … switched to tier …", for the log
    std::int64_t startUs = 0;
    std::size_t oldTier;
    ElementRef oldTee;
    PadRef oldPad, newPad, entry;
    std::shared_ptr<EntryWatch> watch;
    std::function<void()> done; // posted to the main loop once stepped
    std::mutex mutex;           // guards state
    std::condition_variable changed;
    // Waiting: for the new tier's key frame. Swapping: it came, the old pad
    // is awaited. Swapped: the new tier feeds the entry. Cancelled: the peer
    // stopped first; its teardown detaches both pads.
    enum class State { Waiting, Swapping, Swapped, Cancelled } state = State::Waiting;
};

namespace {

// Moves a receiver's entry pad off its tier's tee, to the audio-only tier,
// once the old tee pad is idle.
struct ToAudioOnly {
    ElementRef oldTee;
    PadRef entry;
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
GstPadProbeReturn toAudioOnlyIdle(GstPad* oldPad, GstPadProbeInfo*, gpointer data) noexcept {
    glib::guarded("tier switch probe", [&] {
        auto* sw = static_cast<ToAudioOnly*>(data);
        gst_pad_unlink(oldPad, sw->entry.get());
        gst_element_release_request_pad(sw->oldTee.get(), oldPad);
        post(std::move(sw->done));
    });
    return GST_PAD_PROBE_REMOVE;
}

using SharedStep = std::shared_ptr<TierStep>;
void freeStep(gpointer data) noexcept { delete static_cast<SharedStep*>(data); }

// Thread: the old tier's streaming thread, in an IDLE probe on the old pad
// (or the new tier's, when the old pad was idle already). Idle, the old pad
// is not pushing into the entry, so no frame of the old tier can follow the
// new tier's key frame into it.
GstPadProbeReturn stepIdle(GstPad* oldPad, GstPadProbeInfo*, gpointer data) noexcept {
    TierStep& step = **static_cast<SharedStep*>(data);
    glib::guarded("tier step probe", [&] {
        std::lock_guard lock(step.mutex);
        if (step.state != TierStep::State::Swapping) return; // cancelled
        gst_pad_unlink(oldPad, step.entry.get());
        gst_element_release_request_pad(step.oldTee.get(), oldPad);
        if (step.watch) step.watch->startedUs = -1; // starts again with the key frame about to go in
        gst_pad_link(step.newPad.get(), step.entry.get());
        step.state = TierStep::State::Swapped;
        post(std::move(step.done));
    });
    step.changed.notify_all();
    return GST_PAD_PROBE_REMOVE;
}

// Thread: streaming (the new tier's, in a buffer probe on its unlinked tee
// pad: what it drops is lost to no one). At the key frame it waits for the
// old pad to go idle, which takes at most the old tier's push of one frame
// into this receiver: nothing in that push waits for this thread.
GstPadProbeReturn stepAtKeyFrame(GstPad* pad, GstPadProbeInfo* info, gpointer data) noexcept {
    GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
    const SharedStep step = *static_cast<SharedStep*>(data); // a copy: REMOVE frees `data`
    std::unique_lock lock(step->mutex);
    if (step->state == TierStep::State::Swapped) return GST_PAD_PROBE_REMOVE; // the key frame, pushed again below
    if (step->state != TierStep::State::Waiting || GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT))
        return GST_PAD_PROBE_DROP;
    step->state = TierStep::State::Swapping;
    lock.unlock();
    const std::int64_t keyUs = g_get_monotonic_time();
    gst_pad_add_probe(step->oldPad.get(), GST_PAD_PROBE_TYPE_IDLE, stepIdle, new SharedStep(step), freeStep);
    lock.lock();
    step->changed.wait(lock, [&] { return step->state != TierStep::State::Swapping; });
    if (step->state != TierStep::State::Swapped) return GST_PAD_PROBE_DROP; // cancelled
    lock.unlock();
    GST_CAT_INFO(tessera_media_debug,
                 "%s: its key frame went in after %" G_GINT64_FORMAT " ms (waited %" G_GINT64_FORMAT
                 " us for the old tier)",
                 step->why.c_str(), (g_get_monotonic_time() - step->startUs) / 1000, g_get_monotonic_time() - keyUs);
    // Pushed again now that the pad is linked, so that the new tier's caps
    // and segment go first: this push sent them before its probes, to no peer.
    gst_pad_push(pad, gst_buffer_ref(buffer));
    return GST_PAD_PROBE_DROP;
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
    const std::string why = "peer " + m_id + " switched to tier " + name(next);
    if (!oldPad) {
        // From audio only: nothing streams into the entry yet, so no wait.
        if (m_entryWatch) m_entryWatch->startedUs = -1; // it starts again on the new tier's key frame
        linkFromKeyFrame(m_room, next, m_offer.cameraCodec, why, m_videoTeePad.get(), m_videoEntry.get());
        return;
    }
    m_switching = true;
    if (m_videoTeePad) {
        // The old tier goes on (and is counted) until the new one's key frame.
        auto step = std::make_shared<TierStep>();
        step->why = why;
        step->startUs = g_get_monotonic_time();
        step->oldTier = old;
        step->oldTee = std::move(oldTee);
        step->oldPad = std::move(oldPad);
        step->newPad = m_videoTeePad;
        step->entry = m_videoEntry;
        step->watch = m_entryWatch;
        step->done = [w = WeakCore(weak_from_this()), step = std::weak_ptr(step)] {
            if (auto core = w.lock()) core->stepped(step.lock());
        };
        m_step = step;
        gst_pad_add_probe(m_videoTeePad.get(), GST_PAD_PROBE_TYPE_BUFFER, stepAtKeyFrame, new SharedStep(step),
                          freeStep);
        m_room.requestKeyFrame(next, m_offer.cameraCodec, why);
        return;
    }
    m_room.removeReceiver(old, m_offer.cameraCodec);
    auto* sw = new ToAudioOnly{std::move(oldTee), m_videoEntry, [w = WeakCore(weak_from_this())] {
                                   if (auto core = w.lock()) core->m_switching = false;
                               }};
    gst_pad_add_probe(oldPad.get(), GST_PAD_PROBE_TYPE_IDLE, toAudioOnlyIdle, sw,
                      [](gpointer d) noexcept { delete static_cast<ToAudioOnly*>(d); });
}

void PeerCore::stepped(const std::shared_ptr<TierStep>& step) {
    if (!step || step != m_step) return; // the peer stopped first
    m_room.removeReceiver(step->oldTier, m_offer.cameraCodec);
    m_step.reset();
    m_switching = false;
}

std::optional<PadDetach> PeerCore::cancelStep() {
    if (!m_step) return std::nullopt;
    const std::shared_ptr<TierStep> step = std::move(m_step);
    bool swapped = false;
    {
        std::lock_guard lock(step->mutex);
        swapped = step->state == TierStep::State::Swapped;
        if (!swapped) step->state = TierStep::State::Cancelled;
    }
    step->changed.notify_all();
    m_room.removeReceiver(step->oldTier, m_offer.cameraCodec);
    if (swapped) return std::nullopt; // the old pad is released already
    return PadDetach{step->oldTee, step->oldPad};
}

} // namespace tessera::media
