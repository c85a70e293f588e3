// RoomPipeline's K+1 audio (docs/architecture.md, "Audio"): the full mix
// encoded once for every listener, and K speaker slots, each the sum of
// everyone but its owner (one mixer makes them all: mix_minus.h), encoded
// once for the owner;
// which speakers own the slots (policy::SpeakerSet, fed on the participants'
// decode threads); and starting the video part of a room when the first
// participant with video arrives.
#include "room_pipeline.h"

#include <gst/audio/gstaudioencoder.h>

#include "mix_minus.h"
#include "tessera/protocol/error.h"

#define GST_CAT_DEFAULT tessera_media_debug

namespace tessera::media {

namespace {

// Thread: any, once `encoder` has its format. How much input after a
// packet's end the packet codes (which the decoder plays in its overlap with
// the next packet).
GstClockTime encoderLookahead(GstElement* encoder) {
    if (!GST_IS_AUDIO_ENCODER(encoder)) return 20 * GST_MSECOND; // a whole frame, for an encoder that does not say
    return gst_util_uint64_scale_int(gst_audio_encoder_get_lookahead(GST_AUDIO_ENCODER(encoder)), GST_SECOND, 48000);
}

} // namespace

// The mixer starts at the first buffer it receives (configureMixer): the
// room's silence, before the pipeline plays. Every encode takes its input
// from the mixer's one output, so all K+1 share its 10 ms output grid and
// their encoders one 20 ms frame grid. That is what lets a receiver switch
// between encodes on a packet boundary with continuous RTP timestamps.
// Each encode is fed only while a receiver uses it (gateEncode): the full
// mix while someone listens to it, a slot while it has a speaker. A room of
// two speakers runs two.
void RoomPipeline::buildAudioEncodes() {
    GstBin* pipe = pipeline();
    m_encodeDemand = std::make_shared<EncodeDemand>(1 + m_config.audio.mixMinusSpeakers);
    for (std::size_t source = 0; source <= m_config.audio.mixMinusSpeakers; ++source) {
        ElementRef encoder = m_fragments.makeBin("audio-encode");
        // As for video (buildTier): one thread sends this encode to its
        // receivers, waiting in their webrtcbins' clocksync, not the mixer's.
        GstElement* send = leakyQueue(50);
        GstElement* tee = make("tee");
        g_object_set(tee, "allow-not-linked", TRUE, nullptr);
        gst_bin_add_many(pipe, encoder.get(), send, tee, nullptr);
        if (!gst_element_link_many(m_fullMix.get(), encoder.get(), send, tee, nullptr))
            throw Error(ErrorCode::Internal, "pipelines/audio-encode.pipeline: cannot link the room's mix to it "
                                             "(does it take F32 audio and produce Opus?)");
        ElementRef opus = requireByName(GST_BIN(encoder.get()), "encoder");
        GstPad* in = gst_element_get_static_pad(encoder.get(), "sink");
        gateEncode(in, m_encodeDemand, source, [opus] { return encoderLookahead(opus.get()); });
        if (source > 0) {
            // Slot k's mix travels with the full mix's buffer (mix_minus.h).
            gst_pad_add_probe(
                in, GST_PAD_PROBE_TYPE_BUFFER,
                [](GstPad*, GstPadProbeInfo* info, gpointer slot) noexcept {
                    // Thread: streaming (the mixer's).
                    GstBuffer* full = GST_PAD_PROBE_INFO_BUFFER(info);
                    GST_PAD_PROBE_INFO_DATA(info) = slotMix(full, GPOINTER_TO_SIZE(slot));
                    gst_buffer_unref(full);
                    return GST_PAD_PROBE_OK;
                },
                GSIZE_TO_POINTER(source - 1), nullptr);
        }
        gst_object_unref(in);
        m_encodeTees.push_back(ElementRef::borrow(tee));
        if (!m_encoder) m_encoder = opus;
    }
}

void RoomPipeline::onAudioLevel(const std::string& participantId, double levelDbfs, GstClockTime start) {
    std::lock_guard lock(m_speakersMutex);
    // Gone: a frame from a leaver's bin going down must not give it a slot again.
    if (!m_slotPads.count(participantId)) return;
    if (auto change = m_speakerSet.update(participantId, levelDbfs, g_get_monotonic_time() / 1000))
        applySlotChange(*change, start);
}

void RoomPipeline::applySlotChange(const policy::SpeakerSet::Change& change, GstClockTime onset) {
    const std::size_t slot = change.slot;
    // The new owner's loud frame has not reached the mixer yet (its level
    // is taken before the frame goes on): out of the slot's mix from that
    // frame on, so the slot's mix never has it.
    // (Without a pad yet, addAudioInput sets it on the pad.)
    if (const PadRef& pad = m_slotPads.at(change.joined))
        g_object_set(pad.get(), "slot", static_cast<gint>(slot), nullptr);
    // The full mix stops for it before its voice starts, by the encoder's
    // look-ahead: a packet carries that much of the input after its end,
    // which the decoder plays in its overlap with the next packet (measured:
    // without it, a speaker heard its own first 2-6 ms, 29 dB down).
    const GstClockTime lookahead = encoderLookahead(m_encoder.get());
    const GstClockTime cutoff =
        GST_CLOCK_TIME_IS_VALID(onset) && onset > lookahead ? onset - lookahead : GST_CLOCK_TIME_NONE;
    if (auto it = m_audioReceivers.find(change.joined); it != m_audioReceivers.end())
        it->second->select(slot + 1, cutoff);
    if (change.left) {
        // Quiet for a while (SpeakerSet's release time): back in the slot's
        // mix only with its silence, and back on the full mix.
        if (auto it = m_slotPads.find(*change.left); it != m_slotPads.end() && it->second)
            g_object_set(it->second.get(), "slot", -1, nullptr);
        if (auto it = m_audioReceivers.find(*change.left); it != m_audioReceivers.end()) it->second->select(0);
    }
    GST_CAT_DEBUG(tessera_media_debug, "room %s: speaker slot %zu: %s (was %s)", m_room.c_str(), slot,
                  change.joined.c_str(), change.left ? change.left->c_str() : "free");
}

void RoomPipeline::startVideo() {
    if (m_videoStarted) return;
    m_videoStarted = true;
    GST_CAT_INFO(tessera_media_debug, "room %s: video starts (compositor and tier branches)", m_room.c_str());
    for (const ElementRef& e : m_videoElements) {
        gst_element_set_locked_state(e.get(), FALSE);
        if (!gst_element_sync_state_with_parent(e.get()))
            throw Error(ErrorCode::Internal, std::string("room video: ") + GST_OBJECT_NAME(e.get()) + " cannot start");
    }
}

} // namespace tessera::media
