#include "audio_switch.h"

#include "gst_util.h"

namespace tessera::media {

AudioSwitch::AudioSwitch(std::size_t source, std::shared_ptr<EncodeDemand> demand)
    : m_demand(std::move(demand)), m_current(source) {
    use(source, 1);
}

void AudioSwitch::use(std::size_t source, int delta) {
    if (m_demand) m_demand->add(source, delta);
}

void AudioSwitch::takePending() {
    use(m_current, -1);
    m_current = *m_pending;
    m_pending.reset();
    m_pendingCaughtUp = false;
    m_cutoff = GST_CLOCK_TIME_NONE;
}

void AudioSwitch::select(std::size_t source, GstClockTime cutoff) {
    std::lock_guard lock(m_mutex);
    m_pendingCaughtUp = false;
    if (m_pending == source) {
        m_cutoff = cutoff;
        return;
    }
    if (m_pending) use(*m_pending, -1);
    m_pending.reset();
    m_cutoff = GST_CLOCK_TIME_NONE;
    if (source == m_current) return;
    m_pending = source;
    use(source, 1);
    m_cutoff = cutoff;
}

void AudioSwitch::release() {
    std::lock_guard lock(m_mutex);
    use(m_current, -1);
    if (m_pending) use(*m_pending, -1);
    m_demand.reset();
}

bool AudioSwitch::pass(std::size_t source, GstClockTime start, GstClockTime duration) {
    std::lock_guard lock(m_mutex);
    // A packet the current source already covered (the new source's copy of
    // it, or a late duplicate) would play the same 20 ms twice.
    const bool fresh = !GST_CLOCK_TIME_IS_VALID(m_last) || !GST_CLOCK_TIME_IS_VALID(start) || start > m_last;
    if (m_pending && source == *m_pending) {
        const bool settled = !m_demand || !GST_CLOCK_TIME_IS_VALID(start) ||
                             !GST_CLOCK_TIME_IS_VALID(m_demand->settledFrom(source)) ||
                             start >= m_demand->settledFrom(source);
        if (!settled) return false;
        if (!fresh) {
            // Its copy of a packet already sent: it has caught up, and the
            // current source must give way, or one always arriving first
            // (an encode with fewer receivers to serve) would keep it forever.
            m_pendingCaughtUp = true;
            return false;
        }
        takePending();
    } else if (source != m_current || !fresh) {
        return false;
    } else if (m_pendingCaughtUp) {
        takePending(); // the new source's copy of this packet follows
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
};

} // namespace

void watchEncode(GstPad* pad, std::shared_ptr<AudioSwitch> chooser, std::size_t source) {
    gst_pad_add_probe(
        pad, GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad* pad, GstPadProbeInfo* info, gpointer user) noexcept {
            // Thread: streaming (the source encoder's). Nothing here throws.
            // Running times, to compare across encodes.
            auto* d = static_cast<EncodeProbe*>(user);
            GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
            const GstClockTime start = runningTime(pad, GST_BUFFER_PTS(buffer));
            return d->chooser->pass(d->source, start, GST_BUFFER_DURATION(buffer)) ? GST_PAD_PROBE_OK
                                                                                   : GST_PAD_PROBE_DROP;
        },
        new EncodeProbe{std::move(chooser), source}, [](gpointer d) noexcept { delete static_cast<EncodeProbe*>(d); });
}

namespace {

constexpr GstClockTime kFrame = 20 * GST_MSECOND; // pipelines/audio-encode.pipeline's frame-size

struct Gate {
    std::shared_ptr<EncodeDemand> demand;
    std::size_t source;
    std::function<GstClockTime()> lookahead;
    bool seenFirst = false;
    GstClockTime origin = GST_CLOCK_TIME_NONE; // the second buffer's running time: the frame grid's
    bool everFed = false;
};

} // namespace

void gateEncode(GstPad* pad, std::shared_ptr<EncodeDemand> demand, std::size_t source,
                std::function<GstClockTime()> lookahead) {
    auto* data = new Gate{std::move(demand), source, std::move(lookahead)};
    data->demand->m_settled.at(source) = GST_CLOCK_TIME_NONE;
    gst_pad_add_probe(
        pad, GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad* pad, GstPadProbeInfo* info, gpointer user) noexcept {
            // Thread: streaming (the mixer's that feeds the encoder). Nothing here throws.
            auto* g = static_cast<Gate*>(user);
            GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
            const GstClockTime at = runningTime(pad, GST_BUFFER_PTS(buffer));
            if (!GST_CLOCK_TIME_IS_VALID(at)) return GST_PAD_PROBE_OK; // not seen from the mixers
            // A mixer's first buffer is short: it ends where its 10 ms output
            // grid starts (measured: 9.98 ms). Every encode starts after it.
            if (!g->seenFirst) {
                g->seenFirst = true;
                return GST_PAD_PROBE_DROP;
            }
            if (!GST_CLOCK_TIME_IS_VALID(g->origin)) g->origin = at;
            auto& fed = g->demand->m_fed.at(g->source);
            // Starts and stops only where a frame starts: the encoder never
            // keeps half a frame across a pause, and its frames stay on the grid.
            if (at >= g->origin && (at - g->origin) % kFrame == 0) {
                const bool used = g->demand->used(g->source);
                // An encoder never fed has nothing from before to code.
                if (used && !fed.load() && g->everFed)
                    g->demand->m_settled.at(g->source) = at + kFrame + g->lookahead();
                fed = used;
                g->everFed = g->everFed || used;
            }
            return fed.load() ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
        },
        data, [](gpointer d) noexcept { delete static_cast<Gate*>(d); });
}

} // namespace tessera::media
