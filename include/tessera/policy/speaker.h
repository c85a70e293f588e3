#pragma once
// SpeakerDetector: audio levels -> the active speaker, with hysteresis.
// Pure policy: no GStreamer, no JSON, no GLib. Every input carries its own
// time (a monotonic clock in ms), so the behaviour is deterministic and
// unit-tested with explicit timestamps.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tessera::policy {

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
        double level = 0; // smoothed, dBFS
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

} // namespace tessera::policy
