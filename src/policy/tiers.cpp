// Quality-tier choice per receiver: the bandwidth limit picks the tier, loss
// pushes it down, and a hold time keeps it from bouncing back up.
//
// Asymmetric on purpose: sending too much costs the receiver freezes at once,
// sending too little only costs some sharpness, and every switch costs a key
// frame on the shared tier encoder.
#include <algorithm>
#include <stdexcept>
#include <utility>

#include "tessera/policy/speaker.h"
#include "tessera/policy/tiers.h"

namespace tessera::policy {

std::vector<Tier> defaultTiers(unsigned width, unsigned height, std::int64_t bitrate) {
    // Sizes stay even (4:2:0) when the canvas is halved.
    const auto even = [](unsigned size, unsigned divisor) { return std::max(16u, size / divisor / 2 * 2); };
    const auto rate = [bitrate](std::int64_t num, std::int64_t den) {
        return std::max<std::int64_t>(10'000, bitrate * num / den);
    };
    return {{"high", bitrate, width, height},
            {"medium", rate(2, 5), even(width, 2), even(height, 2)},
            {"low", rate(1, 10), even(width, 4), even(height, 4)}};
}

std::vector<Tier> sortedTiers(std::vector<Tier> tiers) {
    std::stable_sort(tiers.begin(), tiers.end(), [](const Tier& a, const Tier& b) { return a.bitrate > b.bitrate; });
    return tiers;
}

namespace {

// min(declared, estimated); none when neither is known.
std::optional<std::int64_t> limitOf(std::optional<std::int64_t> declaredBps, std::optional<std::int64_t> estimatedBps) {
    if (!estimatedBps) return declaredBps;
    return declaredBps ? std::min(*declaredBps, *estimatedBps) : *estimatedBps;
}

// Integer percent: a limit exactly at the boundary fits, with no rounding doubt.
bool fits(const Tier& tier, std::optional<std::int64_t> limit, const TierParams& params) {
    return !limit || tier.bitrate * (100 + params.headroomPercent) <= *limit * 100;
}

} // namespace

std::size_t fittingTier(const std::vector<Tier>& ladder, std::optional<std::int64_t> declaredBps,
                        std::optional<std::int64_t> estimatedBps, const TierParams& params) {
    const auto limit = limitOf(declaredBps, estimatedBps);
    for (std::size_t i = 0; i < ladder.size(); ++i)
        if (fits(ladder[i], limit, params)) return i;
    return ladder.empty() ? 0 : ladder.size() - 1;
}

TierSelector::TierSelector(std::vector<Tier> ladder, TierParams params)
    // One slot per video tier and one for the audio-only tier below them
    // (never "allowed" or stepped up to, so its slots stay empty).
    : m_ladder(sortedTiers(std::move(ladder))), m_params(params), m_allowedSince(m_ladder.size() + 1),
      m_upAt(m_ladder.size() + 1), m_holdFactor(m_ladder.size() + 1, 1), m_trialBackoffMs(m_params.trialBackoffMs) {
    if (m_ladder.empty()) throw std::invalid_argument("policy: empty tier ladder");
}

bool TierSelector::update(const TierInput& input, std::int64_t nowMs) {
    // Indices: 0 is the highest tier, so "down" is a larger index; the
    // audio-only tier is one below the lowest video tier.
    const std::size_t lowest = m_ladder.size() - 1;
    const std::size_t audio = m_ladder.size();
    // (A NaN loss compares false: a garbled report does not step down.)
    const bool lossy = input.lossFraction && *input.lossFraction > m_params.lossStepDown;
    const bool congested = lossy || input.linkCongested.value_or(false);
    m_passedTrialBps.reset();
    m_upStepBps.reset();
    m_refutedBps.reset();

    // Below the lowest video tier: audio only. Down to it at once like any
    // down-step; up from it for the link's sake only by a trial (below).
    AudioOnlyReason reason = AudioOnlyReason::None;
    if (m_params.audioOnly) {
        if (input.audioOnlyRequested)
            reason = AudioOnlyReason::Requested;
        else if (input.declaredBps && *input.declaredBps <= m_params.audioOnlyBps)
            reason = AudioOnlyReason::Declared;
        else if (input.estimatedBps && *input.estimatedBps < m_ladder[lowest].bitrate && !input.estimateFromLossAlone)
            reason = AudioOnlyReason::Link;
    }

    // A trial of the lowest tier: the estimate, which could not grow on
    // audio alone, says nothing yet; the trial's own windows judge the link.
    bool failedTrial = false;
    if (m_trialSince) {
        if (reason == AudioOnlyReason::Requested || reason == AudioOnlyReason::Declared) {
            m_trialSince.reset(); // no longer about the link
        } else if (congested || nowMs - *m_trialSince >= 2 * m_params.trialMs) {
            // Congested, or no verdict in twice the trial's time (no
            // feedback proves nothing): failed.
            m_trialSince.reset();
            failedTrial = true;
            reason = AudioOnlyReason::Link;
        } else {
            reason = AudioOnlyReason::None;
            if (input.linkCongested == false) ++m_trialClean;
            if (nowMs - *m_trialSince >= m_params.trialMs && m_trialClean >= m_params.trialWindows) {
                m_trialSince.reset();
                m_passedAt = nowMs;
                m_passedTrialBps = needs(lowest);
            }
        }
    }
    // While a trial runs or right after it passed, the estimate is not the limit yet.
    const bool trialLimit = m_trialSince || m_passedTrialBps;
    const auto limit = trialLimit ? std::nullopt : limitOf(input.declaredBps, input.estimatedBps);
    std::size_t fit = trialLimit ? lowest : fittingTier(m_ladder, input.declaredBps, input.estimatedBps, m_params);
    if (reason != AudioOnlyReason::None) fit = audio;

    // Runs of "the limit allows tier i" (it fits with headroom); a lossy
    // report restarts them all, so after a loss step-down the way back up
    // takes a full clean upHoldMs.
    for (std::size_t i = 0; i < m_ladder.size(); ++i) {
        if (trialLimit || !fits(m_ladder[i], limit, m_params) || lossy)
            m_allowedSince[i].reset();
        else if (!m_allowedSince[i])
            m_allowedSince[i] = nowMs;
    }

    // Before the first update there is no history to hold against: start at
    // the fit. Likewise when the receiver withdraws its own request for audio
    // only: it asked for video, and the hold is for trying a link, not for
    // undoing a choice. Where probes tell, the start is the lowest video
    // tier, and a probe for what the receiver declared goes out at once
    // (no estimate knows its link yet): a first key frame of the high tier
    // takes seconds through a narrow link, the lowest tier's fits any link
    // with video, and on a good one the probe passes about 2 s in.
    const bool fresh = !m_started || (m_requested && !input.audioOnlyRequested);
    const std::size_t declaredFit = fittingTier(m_ladder, input.declaredBps, std::nullopt, m_params);
    const bool startLow = fresh && m_params.probe && fit != audio && declaredFit < lowest;
    const std::size_t base = !fresh ? m_current : startLow ? lowest : fit;
    std::size_t next = base;
    std::optional<std::size_t> up; // a higher video tier the limit and the hold allow
    if (startLow) m_starting = true;
    if (m_starting && fit <= base && declaredFit < base) {
        up = declaredFit; // the start's probe: no hold
    } else if (fit >= base) {
        next = fit; // the limit dropped (or stayed): down at once
        m_starting = false;
    } else if (base != audio) {
        // Up to the highest tier allowed for the whole hold time, if any
        // (from audio only: by a trial, below).
        for (std::size_t i = 0; i < base; ++i) {
            if (m_allowedSince[i] && nowMs - *m_allowedSince[i] >= m_params.upHoldMs * m_holdFactor[i]) {
                up = i;
                break;
            }
        }
    }
    // Where probes tell, the estimate does not grow blind to allow a tier
    // (BandwidthParams::deliveredBoundPercent), and an app-limited stream
    // (a still composite sends a fraction of its tier's rate) keeps it
    // below even the current tier's need: the tier above is probed once
    // the link has been clean for its hold on the current tier, unless the
    // declared limit rules it out.
    if (congested) m_cleanSince = nowMs;
    if (!up && m_params.probe && next == base && base != audio && base > 0 &&
        nowMs - std::max(m_cleanSince, m_currentSince) >= m_params.upHoldMs * m_holdFactor[base - 1] &&
        fits(m_ladder[base - 1], input.declaredBps, m_params))
        up = base - 1;
    // Where probes tell, an up-step waits for one at the tier's rate.
    if (up && m_params.probe) {
        if (m_probeTier && m_probeVerdict) {
            const ProbeVerdict verdict = *m_probeVerdict;
            const std::size_t probed = *m_probeTier;
            m_probeTier.reset();
            m_probeVerdict.reset();
            m_starting = false;
            if (verdict == ProbeVerdict::Failed) {
                refuteUpStep(probed, base, nowMs);
            } else if (verdict == ProbeVerdict::Passed) {
                next = std::max(probed, *up); // not above what the hold still allows
                m_upStepBps = needs(next);
                // The link got better: the holds that failed probes doubled
                // while it was worse no longer say anything about it.
                for (std::size_t i = 0; i <= next; ++i) m_holdFactor[i] = 1;
            } else {
                // No usable verdict (every packet lost, a garbled clock): no
                // step into a link that may be full, and another probe one
                // hold later.
                restartHolds(base, nowMs);
            }
        } else if (!m_probeTier) {
            m_probeTier = *up;
        }
    } else if (up) {
        next = *up;
    } else if (base != audio) {
        m_probeTier.reset(); // the up-step it was for is no longer allowed
        m_probeVerdict.reset();
    }
    // Loss is a signal of its own, on top of the limit: one below what the
    // limit (and the hold) chose, even when that already is a step down; but
    // never from video to none.
    if (lossy && next < lowest) ++next;

    // Audio only for the link's sake (its estimate, or the hold): a trial
    // once the back-off has gone by without congestion, and where there are
    // probes, once one passed.
    bool startedTrial = false;
    const auto doubleBackoff = [&](std::int64_t most) { m_trialBackoffMs = std::min(m_trialBackoffMs * 2, most); };
    const auto startTrial = [&] {
        next = lowest;
        m_trialSince = nowMs;
        m_trialClean = 0;
        m_nextTrialAt.reset();
        startedTrial = true;
    };
    const bool linkAudioOnly = next == audio && (reason == AudioOnlyReason::None || reason == AudioOnlyReason::Link);
    if (base == audio && (!linkAudioOnly || m_current != audio || !m_started || !m_nextTrialAt)) {
        m_probeTier.reset(); // a probe asked for before is no longer about this
        m_probeVerdict.reset();
    }
    if (linkAudioOnly) {
        if (m_current != audio || !m_started || !m_nextTrialAt) {
            // Just gone audio only. A trial that failed, or passed but did
            // not hold, doubles the wait.
            if (failedTrial || m_passedAt) doubleBackoff(m_params.maxTrialBackoffMs);
            m_passedAt.reset();
            m_nextTrialAt = nowMs + m_trialBackoffMs;
        } else if (m_probeVerdict) {
            const ProbeVerdict verdict = *m_probeVerdict;
            m_probeVerdict.reset();
            m_probeTier.reset();
            if (verdict == ProbeVerdict::Failed) {
                doubleBackoff(std::min(m_params.maxTrialBackoffMs, m_params.maxProbeBackoffMs));
                m_nextTrialAt = nowMs + m_trialBackoffMs;
            } else {
                startTrial();
            }
        } else if (m_probeTier) {
            // Its verdict decides, not the windows meanwhile.
        } else if (congested) {
            m_nextTrialAt = nowMs + m_trialBackoffMs; // even the audio congests: wait on
        } else if (nowMs >= *m_nextTrialAt) {
            if (m_params.probe)
                m_probeTier = lowest;
            else
                startTrial();
        }
    } else if (next == audio) {
        m_nextTrialAt.reset(); // the receiver's choice: no trials
    }

    if (startedTrial || failedTrial) {
        // A trial and its failure are the audio-only tier's own (its back-off), not the ladder's up-steps.
    } else if (m_started && next > m_current) {
        // Down from a tier reached by an up-step this recently: the trial
        // failed, for that tier and every one above it. (Not when the
        // receiver asked for audio only: that says nothing of its link.)
        if (reason != AudioOnlyReason::Requested && m_upAt[m_current] &&
            nowMs - *m_upAt[m_current] < m_params.failedUpMs)
            for (std::size_t i = 0; i <= m_current; ++i)
                m_holdFactor[i] = std::min(m_holdFactor[i] * 2, m_params.maxHoldFactor);
        m_upAt[m_current].reset();
    } else if (m_started && next < m_current) {
        m_upAt[next] = nowMs;
    } else if (m_upAt[next] && nowMs - *m_upAt[next] >= m_params.failedUpMs) {
        // The tier held: it and every one below it fit after all.
        for (std::size_t i = next; i < m_ladder.size(); ++i) m_holdFactor[i] = 1;
        m_upAt[next].reset();
    }
    // A passed trial whose video held: the link is back, the back-off too.
    if (m_passedAt && next != audio && nowMs - *m_passedAt >= m_params.failedUpMs) {
        m_trialBackoffMs = m_params.trialBackoffMs;
        m_passedAt.reset();
    }

    // Still audio only with no cause left: the link has not been tried yet.
    if (next == audio) m_reason = reason != AudioOnlyReason::None ? reason : AudioOnlyReason::Link;
    m_started = true;
    m_requested = input.audioOnlyRequested;
    const bool changed = next != m_current;
    if (changed) m_currentSince = nowMs;
    m_current = next;
    return changed;
}

std::int64_t TierSelector::needs(std::size_t tier) const {
    return m_ladder[tier].bitrate * (100 + m_params.headroomPercent) / 100;
}

std::int64_t TierSelector::probeBps() const {
    // What the current tier sends goes on meanwhile: the padding adds the rest.
    return needs(probeTier()) - current().bitrate;
}

void TierSelector::probeResult(ProbeVerdict verdict) {
    if (probeWanted() && verdict != ProbeVerdict::Pending) m_probeVerdict = verdict;
}

void TierSelector::refuteUpStep(std::size_t probed, std::size_t base, std::int64_t nowMs) {
    // The link does not carry the probed tier: the estimate is capped below
    // it (refutedBps), the tier and every one above it wait longer before
    // the next probe, and every up-step's hold starts afresh.
    m_refutedBps = needs(probed);
    for (std::size_t i = 0; i <= probed; ++i)
        m_holdFactor[i] = std::max(m_holdFactor[i], std::min(m_holdFactor[i] * 2, m_params.maxProbeHoldFactor));
    restartHolds(base, nowMs);
}

void TierSelector::restartHolds(std::size_t base, std::int64_t nowMs) {
    for (std::size_t i = 0; i <= base && i < m_ladder.size(); ++i)
        if (m_allowedSince[i]) m_allowedSince[i] = nowMs;
    m_cleanSince = nowMs;
}

std::optional<double> ReportedLoss::update(std::int64_t lost, std::uint64_t highestSeq) {
    std::optional<double> fraction;
    if (m_highestSeq && highestSeq > *m_highestSeq && lost > m_lost)
        fraction = std::min(1.0, static_cast<double>(lost - m_lost) / static_cast<double>(highestSeq - *m_highestSeq));
    if (!m_highestSeq || highestSeq != *m_highestSeq) {
        m_highestSeq = highestSeq;
        m_lost = lost;
    }
    return fraction;
}

} // namespace tessera::policy
