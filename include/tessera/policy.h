#pragma once
// Media policy: pure, no GStreamer, no JSON, no GLib. Every input carries its
// own time (a monotonic clock in ms), so the behaviour is deterministic and
// unit-tested with explicit timestamps.
//
//  - SpeakerDetector: audio levels -> the active speaker, with hysteresis.
//  - TierSelector: declared limit + RTCP/REMB estimate + loss -> quality tier.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tessera::policy {

// ---------------------------------------------------------------------------
// Active speaker

struct SpeakerParams {
    // A participant speaks while its smoothed level is above this (dBFS).
    double thresholdDbfs = -45.0;
    // A challenger must be this much louder (smoothed) than the current speaker...
    double marginDb = 6.0;
    // ...continuously for this long before it takes the floor. With no current
    // speaker, speaking continuously for this long is enough.
    std::int64_t holdMs = 500;
    // The current speaker loses the floor after this long below the threshold.
    std::int64_t releaseMs = 1500;
    // No level for longer than this: the participant counts as silent (its
    // stream stopped). Silence then starts at last update + staleMs.
    std::int64_t staleMs = 2000;
    // Time constant of the exponential moving average over levels (dB domain):
    // it bridges the dips between syllables. 0: no smoothing (raw levels).
    std::int64_t smoothingMs = 200;
};

// Feed it levels in any order of participants; timestamps must not go back.
// Not thread-safe: call it from one thread (the main context).
class SpeakerDetector {
public:
    explicit SpeakerDetector(SpeakerParams params = {});

    // A new level for a participant (RMS dBFS, e.g. the `level` element's "rms",
    // or -audio-level from RTP; clamped to [-127, 0], NaN counts as silence).
    // Adds unknown participants. Returns true when speaker() changed.
    bool update(const std::string& participantId, double levelDbfs, std::int64_t nowMs);
    // Re-evaluates without a new level, so a speaker whose stream stopped is
    // released even when nobody sends levels. Returns true when speaker() changed.
    bool tick(std::int64_t nowMs);
    // Forgets a participant (it left). When it was the speaker, someone who
    // already qualifies takes over at once, else nobody. Returns true when
    // speaker() changed.
    bool remove(const std::string& participantId);

    std::optional<std::string> speaker() const { return m_speaker; }
    // The smoothed level, for stats and tests; nullopt for unknown participants.
    std::optional<double> smoothedLevel(const std::string& participantId) const;

private:
    struct State {
        double level = 0;                      // smoothed, dBFS
        std::int64_t lastUpdateMs = 0;
        std::optional<std::int64_t> speakingSince; // continuous run above the threshold
        std::optional<std::int64_t> aheadSince;    // continuous run ahead of the speaker by the margin
    };
    bool speaking(const State& s, std::int64_t nowMs) const;
    double effectiveLevel(const State& s, std::int64_t nowMs) const;
    bool evaluate(std::int64_t nowMs);

    SpeakerParams m_params;
    std::map<std::string, State> m_participants; // ordered: ties resolve the same way every run
    std::optional<std::string> m_speaker;
    std::optional<std::int64_t> m_speakerSilentSince;
    std::int64_t m_nowMs = 0; // latest time seen; remove() evaluates at it
};

// ---------------------------------------------------------------------------
// Quality tiers

struct Tier {
    std::string name;
    std::int64_t bitrate = 0; // bits/s of the tier's encoder
    unsigned width = 0, height = 0;
};

// high 1.5 Mbit/s 1280x720, medium 600 kbit/s 640x360, low 200 kbit/s 320x180.
std::vector<Tier> defaultTiers();

struct TierParams {
    // A tier fits a limit when bitrate * (100 + headroomPercent) / 100 <= limit:
    // the estimate is noisy and RTP/RTCP/FEC overhead rides on top.
    std::int64_t headroomPercent = 15;
    // Loss fraction (0..1) in one report above which the tier steps down one.
    double lossStepDown = 0.10;
    // A higher tier is taken only after the limit has allowed it continuously
    // this long (also counted afresh after every lossy report).
    std::int64_t upHoldMs = 5000;
};

// Index into `ladder` (sorted by bitrate, highest first) of the highest tier that
// fits min(declared, estimated) with headroom; no limit: 0; nothing fits: the
// lowest tier (there is nothing below it to send).
std::size_t fittingTier(const std::vector<Tier>& ladder, std::optional<std::int64_t> declaredBps,
                        std::optional<std::int64_t> estimatedBps, const TierParams& params = {});

struct TierInput {
    std::optional<std::int64_t> declaredBps;  // the participant's maxBitrate
    std::optional<std::int64_t> estimatedBps; // REMB / transport-cc estimate
    // Fraction lost (0..1) over the window since the previous receiver report;
    // set only when a new report arrived, so each window counts once.
    std::optional<double> lossFraction;
};

// One receiver's tier over time. Down at once when the limit drops (or one step
// on loss), up only after the upHoldMs hysteresis. Not thread-safe.
class TierSelector {
public:
    // Throws std::invalid_argument for an empty ladder. Sorts it, highest first.
    explicit TierSelector(std::vector<Tier> ladder = defaultTiers(), TierParams params = {});

    // Timestamps must not go back. The first update takes the fitting tier
    // directly (no history to hold against). Returns true when the tier changed.
    bool update(const TierInput& input, std::int64_t nowMs);

    // Before the first update: the highest tier.
    const Tier& current() const { return m_ladder[m_current]; }
    std::size_t currentIndex() const { return m_current; }
    const std::vector<Tier>& ladder() const { return m_ladder; }

private:
    std::vector<Tier> m_ladder;
    TierParams m_params;
    std::size_t m_current = 0;
    bool m_started = false;
    // Per tier: since when the limit has allowed it without a break (or a lossy report).
    std::vector<std::optional<std::int64_t>> m_allowedSince;
};

} // namespace tessera::policy
