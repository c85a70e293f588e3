#include "audio_switch.h"

namespace tessera::media {

void AudioSwitch::select(std::size_t source, GstClockTime cutoff) {
    std::lock_guard lock(m_mutex);
    if (source == m_current) {
        m_pending.reset();
        m_cutoff = GST_CLOCK_TIME_NONE;
        return;
    }
    m_pending = source;
    m_cutoff = cutoff;
}

bool AudioSwitch::pass(std::size_t source, GstClockTime start, GstClockTime duration) {
    std::lock_guard lock(m_mutex);
    // A packet the current source already covered (the new source's copy of
    // it, or a late duplicate) would play the same 20 ms twice.
    const bool fresh = !GST_CLOCK_TIME_IS_VALID(m_last) || !GST_CLOCK_TIME_IS_VALID(start) || start > m_last;
    if (m_pending && source == *m_pending) {
        if (!fresh) return false;
        m_current = source;
        m_pending.reset();
        m_cutoff = GST_CLOCK_TIME_NONE;
    } else if (source != m_current || !fresh) {
        return false;
    } else if (GST_CLOCK_TIME_IS_VALID(m_cutoff) && GST_CLOCK_TIME_IS_VALID(start) &&
               start + (GST_CLOCK_TIME_IS_VALID(duration) ? duration : 0) > m_cutoff) {
        return false; // would carry the receiver's own voice: the new source's copy follows
    }
    m_last = start;
    return true;
}

namespace {

struct EncodeProbe {
    std::shared_ptr<AudioSwitch> chooser;
    std::size_t source;
    GstSegment segment; // the encode's, to compare running times across encodes
};

} // namespace

void watchEncode(GstPad* pad, std::shared_ptr<AudioSwitch> chooser, std::size_t source) {
    auto* data = new EncodeProbe{std::move(chooser), source, {}};
    gst_segment_init(&data->segment, GST_FORMAT_TIME);
    gst_pad_add_probe(
        pad, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
        [](GstPad*, GstPadProbeInfo* info, gpointer user) noexcept {
            // Thread: streaming (the source encoder's). Nothing here throws.
            auto* d = static_cast<EncodeProbe*>(user);
            if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
                GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
                if (GST_EVENT_TYPE(event) == GST_EVENT_SEGMENT) gst_event_copy_segment(event, &d->segment);
                return GST_PAD_PROBE_OK;
            }
            GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
            const GstClockTime start =
                gst_segment_to_running_time(&d->segment, GST_FORMAT_TIME, GST_BUFFER_PTS(buffer));
            return d->chooser->pass(d->source, start, GST_BUFFER_DURATION(buffer)) ? GST_PAD_PROBE_OK
                                                                                   : GST_PAD_PROBE_DROP;
        },
        data, [](gpointer d) noexcept { delete static_cast<EncodeProbe*>(d); });
}

} // namespace tessera::media
