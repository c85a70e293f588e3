#pragma once
// TierSelector: declared limit + RTCP/REMB estimate + loss -> quality tier.
// Pure policy: no GStreamer, no JSON, no GLib. Every input carries its own
// time (a monotonic clock in ms), so the behaviour is deterministic and
// unit-tested with explicit timestamps.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tessera/policy/probe.h"

namespace tessera::policy {

// One quality tier: the composite scaled to width x height and encoded at
// bitrate, shared by every receiver whose bandwidth it fits. The one tier
// type: the configuration (video.tiers), the room's encoders and the
// selector all use it.
struct Tier {
    std::string name;
    std::int64_t bitrate = 0; // bits/s of the tier's encoder
    unsigned width = 0, height = 0;
};

// The ladder when none is configured, for a composite of width x height at
// bitrate: "high" (all of it), "medium" (half size, 40 % of the bit rate)
// and "low" (quarter size, 10 %); sizes stay even, at least 16, and bit rates
// at least 10 kbit/s. The defaults give high 1.5 Mbit/s 1280x720, medium
// 600 kbit/s 640x360, low 150 kbit/s 320x180: low with its audio (64 kbit/s)
// and packet overhead passes a 300 kbit/s link.
std::vector<Tier> defaultTiers(unsigned width = 1280, unsigned height = 720, std::int64_t bitrate = 1'500'000);

// `tiers` highest bit rate first; equal bit rates keep their order.
std::vector<Tier> sortedTiers(std::vector<Tier> tiers);

struct TierParams {
    // A tier fits a limit when bitrate * (100 + headroomPercent) / 100 <= limit:
    // the estimate is noisy and RTP/RTCP/FEC overhead rides on top.
    std::int64_t headroomPercent = 15;
    // Loss fraction (0..1) in one report above which the tier steps down one.
    double lossStepDown = 0.10;
    // A higher tier is taken only after the limit has allowed it continuously
    // this long (also counted afresh after every lossy report).
    std::int64_t upHoldMs = 5000;
    // An up-step that has to step down again within failedUpMs was a failed
    // trial (without probes, going up is how a link is tried; a probe
    // screens out links far too slow, not one just short of the tier): that
    // tier's hold (and every higher one's) doubles, up to maxHoldFactor times
    // upHoldMs, so a receiver on a link that really is limited tries less and
    // less often. Holding a tier for failedUpMs restores its hold (and every
    // lower one's).
    std::int64_t failedUpMs = 10'000;
    std::int64_t maxHoldFactor = 4;
    // The audio-only tier below the lowest video tier (kAudioOnly): the
    // receiver gets no video at all when the estimate is under the lowest
    // tier's own bit rate (not even it fits, headroom or not), when it
    // declared at most audioOnlyBps, or when it asks for audio only. Loss
    // alone never takes video away (a loss report, or an estimate cut on
    // loss alone, says the picture degrades, not that no picture fits).
    // false: never.
    //
    // Video comes back from a link's audio only by a trial, never by the
    // estimate alone: sent nothing but audio, the receiver is app-limited
    // (GStreamer sends transport-cc feedback on RTP marker bits, which Opus
    // sets about once a talk spurt, and Firefox none for audio), so no
    // feedback can show the link recovered. trialBackoffMs after going
    // audio only (restarted by every congested window meanwhile) the lowest
    // tier is sent for a trial: it passes once trialMs went by with
    // trialWindows clean feedback windows and none congested, and returns
    // to audio only at the first congested window (linkCongested) or lossy report (or with
    // no verdict after twice trialMs), which doubles the back-off (up to maxTrialBackoffMs: with the trial, within
    // the 20 s in which a recovered link must see video again). A passed
    // trial that then holds video for failedUpMs restores the back-off.
    std::int64_t trialBackoffMs = 4000;
    std::int64_t maxTrialBackoffMs = 12'000;
    std::int64_t trialMs = 3000;
    std::int64_t trialWindows = 3;
    // Probes (probe.h), where the receiver's feedback can judge one. The
    // selector asks for one (probeWanted) at probeBps() and acts on its
    // verdict (probeResult), whatever the feedback windows say meanwhile
    // (they show the probe's own queue):
    // - before every up-step between video tiers, at the target tier's
    //   rate with headroom: nothing else shows that a link carries more
    //   than it is sent, and a failed up-step floods it with the higher
    //   tier's key frame. Where the estimate is bound to what the link
    //   delivered (BandwidthParams::deliveredBoundPercent), the tier above
    //   is probed once the link has been clean (no congested window, no
    //   lossy report) on the current one for the tier's hold. Passed:
    //   the step, the estimate raised to the tier's need (provenBps), and
    //   the holds of that tier and every higher one back to upHoldMs.
    //   No usable verdict: no step, another probe one hold later. Failed:
    //   no step, the estimate is cut below the tier (refutedBps), and the
    //   tier's hold (and every higher one's) doubles up to
    //   maxProbeHoldFactor, not maxHoldFactor: a probe costs the link a
    //   moment's queue, not a failed up-step's freeze (so a recovered link
    //   is found sooner);
    // - at the start: the receiver starts on the lowest video tier, and a
    //   probe for the tier its declared limit allows goes out at once
    //   (the media side waits until its first key frame has drained);
    // - before every trial of the lowest tier from audio only. Passed, or
    //   no usable verdict: the trial starts. Failed: as a failed trial,
    //   without the video ever sent, but the back-off doubles only up to
    //   maxProbeBackoffMs.
    bool probe = false;
    std::int64_t maxProbeHoldFactor = 2;
    std::int64_t maxProbeBackoffMs = 8000;
    bool audioOnly = true;
    std::int64_t audioOnlyBps = 64'000;
};

// The name of the audio-only tier (TierSelector::current() while on it), as
// the API and the metrics show it.
inline constexpr const char* kAudioOnly = "audio";

// Why a receiver gets audio only, most binding first: it asked (the web
// client's toggle), its join declared maxBitrate <= audioOnlyBps, or its
// link's estimate is below the lowest video tier.
enum class AudioOnlyReason { None, Requested, Declared, Link };

// Index into `ladder` (sorted by bitrate, highest first) of the highest tier that
// fits min(declared, estimated) with headroom; no limit: 0; nothing fits: the
// lowest tier (there is nothing below it to send).
std::size_t fittingTier(const std::vector<Tier>& ladder, std::optional<std::int64_t> declaredBps,
                        std::optional<std::int64_t> estimatedBps, const TierParams& params = {});

struct TierInput {
    std::optional<std::int64_t> declaredBps;  // the participant's maxBitrate
    std::optional<std::int64_t> estimatedBps; // BandwidthEstimator's, from transport-cc feedback
    // Fraction lost (0..1) over the window since the previous receiver report;
    // set only when a new report arrived, so each window counts once.
    std::optional<double> lossFraction;
    bool audioOnlyRequested = false; // the receiver asked for audio only
    // BandwidthEstimator's verdict on the feedback window this update
    // follows: true when it showed congestion, confirmed or not (Suspect:
    // a trial probes a link that may not carry it and gives up at the first
    // sign, before the queue it builds delays the audio past the receiver's
    // jitter buffer), false when it was clean; unset otherwise (no new
    // window, or one that proves neither). Judges the audio-only tier's
    // trials (TierParams::trialMs).
    std::optional<bool> linkCongested = std::nullopt;
    // The estimate fell on loss alone (BandwidthEstimator::lossAlone): it
    // does not take video away, as a loss report does not.
    bool estimateFromLossAlone = false;
};

// The loss a receiver reports on one stream we send it. 1.22 leaves
// webrtcbin's fraction-lost at 0, so the fraction is worked out here from
// the report's cumulative counts (its packets lost and extended highest
// sequence number, which the stats repeat until the next report), once per
// report and over that report's own interval.
class ReportedLoss {
public:
    // The counts at one stats poll: the fraction (0..1) of the packets the
    // receiver expected since the previous report that it lost, or nothing
    // (the first report, the same one polled again, or no loss).
    std::optional<double> update(std::int64_t lost, std::uint64_t highestSeq);

private:
    std::optional<std::uint64_t> m_highestSeq; // at the latest report
    std::int64_t m_lost = 0;
};

// One receiver's tier over time. Down at once when the limit drops (or one step
// on loss), up only after the upHoldMs hysteresis, longer after failed
// up-steps (failedUpMs). Below the lowest video tier is the audio-only tier
// (TierParams::audioOnly): currentIndex() == ladder().size(), left for the
// link's sake only by a trial (TierParams::trialMs). Not thread-safe.
class TierSelector {
public:
    // Throws std::invalid_argument for an empty ladder. Sorts it (sortedTiers).
    explicit TierSelector(std::vector<Tier> ladder = defaultTiers(), TierParams params = {});

    // Timestamps must not go back. The first update takes the fitting tier
    // directly (no history to hold against), and so does the first after the
    // receiver withdrew its request for audio only. Returns true when the tier changed.
    bool update(const TierInput& input, std::int64_t nowMs);

    // Before the first update: the highest tier. On the audio-only tier: one
    // named kAudioOnly with no bit rate and no size.
    const Tier& current() const { return audioOnly() ? m_audioTier : m_ladder[m_current]; }
    // ladder().size() on the audio-only tier.
    std::size_t currentIndex() const { return m_current; }
    bool audioOnly() const { return m_current == m_ladder.size(); }
    // Why it is on the audio-only tier (None when it is not).
    AudioOnlyReason audioOnlyReason() const { return audioOnly() ? m_reason : AudioOnlyReason::None; }
    const std::vector<Tier>& ladder() const { return m_ladder; }
    // Set by the update whose trial of the lowest tier passed, or that
    // stepped up after a passed probe: the bits/s the link proved it
    // carries (that tier with headroom), for the estimator
    // (BandwidthEstimator::raiseTo), whose own estimate could not grow
    // while the receiver was app-limited.
    std::optional<std::int64_t> provenBps() const { return m_passedTrialBps ? m_passedTrialBps : m_upStepBps; }
    // A trial of the lowest tier is under way.
    bool inTrial() const { return m_trialSince.has_value(); }
    // Set by the update whose probe for an up-step failed: the bits/s the
    // link did not carry (the probed tier with headroom), for the estimator
    // (BandwidthEstimator::capBelow).
    std::optional<std::int64_t> refutedBps() const { return m_refutedBps; }
    // An up-step or a trial waits for a probe's verdict (TierParams::probe).
    bool probeWanted() const { return m_probeTier && !m_probeVerdict; }
    // The tier a probe is for (the lowest when none is wanted).
    std::size_t probeTier() const { return m_probeTier.value_or(m_ladder.size() - 1); }
    // The rate a probe's padding adds to what the current tier sends: what
    // probeTier() needs of an estimate (its bit rate with headroom), less
    // the current tier's bit rate.
    std::int64_t probeBps() const;
    // The verdict on the probe asked for; the next update acts on it.
    // Ignored when none is wanted any more.
    void probeResult(ProbeVerdict verdict);

    // What `tier` needs of an estimate: its bit rate with headroom.
    std::int64_t needs(std::size_t tier) const;

private:
    void refuteUpStep(std::size_t probed, std::size_t base, std::int64_t nowMs);
    // Every up-step from `base` waits a whole hold again, from nowMs.
    void restartHolds(std::size_t base, std::int64_t nowMs);

    std::vector<Tier> m_ladder;
    TierParams m_params;
    std::size_t m_current = 0;
    bool m_started = false;
    // Per tier: since when the limit has allowed it without a break (or a lossy report).
    std::vector<std::optional<std::int64_t>> m_allowedSince;
    // Per tier: when the receiver last stepped up to it, and its hold factor.
    std::vector<std::optional<std::int64_t>> m_upAt;
    std::vector<std::int64_t> m_holdFactor;
    AudioOnlyReason m_reason = AudioOnlyReason::None; // as of the latest update
    bool m_requested = false;                         // the latest update's audioOnlyRequested
    Tier m_audioTier{kAudioOnly, 0, 0, 0};
    // The audio-only tier's trials: the back-off now, when the next trial
    // is due, since when one runs and its clean windows, when the latest
    // passed (until it held failedUpMs), and the latest update's pass.
    std::int64_t m_trialBackoffMs;
    std::optional<std::int64_t> m_nextTrialAt, m_trialSince, m_passedAt, m_passedTrialBps;
    std::int64_t m_trialClean = 0;
    // The tier a probe is wanted for, and its verdict once given.
    std::optional<std::size_t> m_probeTier;
    std::optional<ProbeVerdict> m_probeVerdict;
    std::optional<std::int64_t> m_upStepBps, m_refutedBps;
    std::int64_t m_currentSince = 0; // when the current tier was taken
    std::int64_t m_cleanSince = 0;   // the latest congested window or lossy report, or failed probe
    bool m_starting = false;         // the start's probe (TierParams::probe) waits for its verdict
};

} // namespace tessera::policy
