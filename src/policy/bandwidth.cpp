// A receiver's bandwidth from transport-wide feedback: cut toward what was
// delivered when the link congests, grow slowly while it is clean, and treat
// silence as congestion (a link so full that feedback stops is the worst case,
// not a neutral one).
#include <algorithm>
#include <cmath>

#include "tessera/policy/bandwidth.h"

namespace tessera::policy {

BandwidthParams probingParams(std::int64_t startBps) {
    BandwidthParams params;
    params.startBps = startBps;
    params.deliveredBoundPercent = 150;
    return params;
}

BandwidthEstimator::BandwidthEstimator(BandwidthParams params) : m_params(params) {}

bool BandwidthEstimator::onFeedback(const TransportFeedback& feedback, std::int64_t nowMs) {
    const BandwidthParams& p = m_params;
    // GStreamer 1.22 misreads the 24-bit reference time when it wraps: a
    // window's gradient jumps by seconds. Nothing real looks like that.
    // And a window most of whose packets arrived, with nothing delivered,
    // had arrival times that went back (1.22 reads a negative span as no
    // rate): no congestion, no trial's failure.
    if (std::llabs(feedback.delayGradientUs) > p.outlierGradientUs || feedback.sentBps < 0 ||
        feedback.deliveredBps < 0 || feedback.deliveredBps > 2 * std::max<std::int64_t>(feedback.sentBps, 1) ||
        (feedback.sentBps > 0 && feedback.deliveredBps == 0 && feedback.lossFraction < 0.5))
        return false;
    m_lastFeedbackMs = nowMs;
    m_staleSince = nowMs;
    start(nowMs);
    if (feedback.sentBps == 0) return true; // nothing sent in the window: nothing to judge

    // (A NaN loss compares false: neither congested nor clean by loss.)
    const bool shortfall = feedback.deliveredBps * 100 < feedback.sentBps * (100 - p.shortfallPercent);
    const bool congested = shortfall || feedback.lossFraction > p.lossCongested;
    m_queuedWindows = feedback.queueGrowthUs && *feedback.queueGrowthUs > p.queueGrowthUs ? m_queuedWindows + 1 : 0;
    if (congested) {
        m_lastGrowMs.reset();
        const bool queued =
            feedback.queueGrowthUs ? m_queuedWindows >= 2 : feedback.delayGradientUs > p.queueGradientUs;
        if (feedback.deliveredBps * 100 < feedback.sentBps * p.fullPercent && queued) m_fullSinceClean = true;
        if (!m_congestedSince) {
            m_congestedSince = nowMs;
            m_congestedDelivered = 0;
            m_congestedWindows = 0;
        }
        m_congestedDelivered += feedback.deliveredBps;
        ++m_congestedWindows;
        if (nowMs - *m_congestedSince < p.confirmMs || m_congestedWindows < p.confirmWindows) {
            m_signal = Signal::Suspect;
            return true;
        }
        m_signal = Signal::Congested;
        if (!m_lastCutMs || nowMs - *m_lastCutMs >= p.cutIntervalMs) {
            cut(m_congestedDelivered / m_congestedWindows * p.cutPercent / 100, nowMs);
            m_lossAlone = !m_fullSinceClean;
            m_congestedSince.reset(); // a further cut needs windows of its own
        }
        return true;
    }
    m_congestedSince.reset();
    if (!(feedback.lossFraction < p.lossClean)) {
        m_signal = Signal::Hold;
        m_lastGrowMs.reset();
        return true;
    }
    m_signal = Signal::Clean;
    m_fullSinceClean = false;
    if (m_lastGrowMs && nowMs > *m_lastGrowMs) {
        const double factor = std::pow(1.0 + static_cast<double>(p.growPercentPerSecond) / 100.0,
                                       static_cast<double>(nowMs - *m_lastGrowMs) / 1000.0);
        double grown = std::min(static_cast<double>(p.maxBps), static_cast<double>(*m_estimate) * factor);
        if (p.deliveredBoundPercent > 0)
            grown = std::min(grown, static_cast<double>(feedback.deliveredBps) * p.deliveredBoundPercent / 100.0);
        m_estimate = std::max(*m_estimate, static_cast<std::int64_t>(grown));
    }
    m_lastGrowMs = nowMs;
    return true;
}

void QueueGrowth::add(std::int64_t sentUs, std::int64_t arrivedUs) {
    if (m_lastSentUs && sentUs <= *m_lastSentUs) return;
    const std::int64_t delay = arrivedUs - sentUs; // plus the clocks' offset, which cancels out
    if (m_lastDelayUs && std::llabs(delay - *m_lastDelayUs) <= m_garbledUs)
        m_steps.emplace_back(sentUs, delay - *m_lastDelayUs);
    m_lastSentUs = sentUs;
    m_lastDelayUs = delay;
    while (!m_steps.empty() && m_steps.front().first < sentUs - m_windowUs) m_steps.pop_front();
}

std::int64_t QueueGrowth::growthUs() const {
    std::int64_t sum = 0;
    for (const auto& step : m_steps) sum += step.second;
    return sum;
}

std::optional<std::int64_t> BandwidthEstimator::estimate(std::int64_t nowMs) {
    if (!m_estimate) return std::nullopt;
    if (const std::int64_t silent = nowMs - m_staleSince; silent >= m_params.staleMs) {
        for (std::int64_t n = silent / m_params.staleMs; n > 0 && *m_estimate > m_params.minBps; --n)
            m_estimate = std::max(m_params.minBps, *m_estimate / 2);
        m_staleSince += silent / m_params.staleMs * m_params.staleMs;
        m_signal = Signal::Stale;
        m_lossAlone = false;  // silence is no lossy link
        m_lastGrowMs.reset(); // the silence earns no growth
    }
    return m_estimate;
}

void BandwidthEstimator::start(std::int64_t nowMs) {
    if (m_estimate) return;
    m_estimate = m_params.startBps.value_or(m_params.maxBps);
    m_staleSince = nowMs; // silence counts from here, as from a first feedback
}

void BandwidthEstimator::raiseTo(std::int64_t bps, std::int64_t nowMs) {
    start(nowMs);
    m_estimate = std::clamp(std::max(*m_estimate, bps), m_params.minBps, m_params.maxBps);
}

void BandwidthEstimator::capBelow(std::int64_t bps, std::int64_t nowMs) {
    start(nowMs);
    cut(bps * m_params.cutPercent / 100, nowMs);
    m_lastGrowMs.reset(); // growth starts again from the next clean window
}

void BandwidthEstimator::cut(std::int64_t toBps, std::int64_t nowMs) {
    m_estimate = std::clamp(std::min(*m_estimate, toBps), m_params.minBps, m_params.maxBps);
    m_lastCutMs = nowMs;
}

} // namespace tessera::policy
