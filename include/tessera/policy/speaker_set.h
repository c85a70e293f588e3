#pragma once
// SpeakerSet: who gets a private mix-minus (K+1 audio, docs/architecture.md).
// A room encodes its full mix once for everyone, plus one mix per slot (K of
// them, `audio.mixMinusSpeakers`) that leaves out the slot's owner. A
// participant must own a slot from the first loud frame of what it says, or
// it hears itself in the full mix: so a slot is taken at once (no hold time),
// and kept through any pause until another speaker needs it and the owner
// has been quiet for releaseMs (the hysteresis: two people taking turns keep
// their slots, and nobody is switched back and forth mid-sentence).
// Pure policy: no GStreamer, no GLib; every input carries its own time (a
// monotonic clock in ms). Not thread-safe: the caller serialises.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tessera::policy {

struct SpeakerSetParams {
    std::size_t slots = 3; // K
    // A frame louder than this (RMS dBFS) is speech: SpeakerParams' threshold.
    double thresholdDbfs = -45.0;
    // An owner quiet for this long may give its slot to a new speaker
    // (SpeakerParams' release time).
    std::int64_t releaseMs = 1500;
};

class SpeakerSet {
public:
    // `joined` took `slot`; `left` owned it before (nullopt: it was free).
    struct Change {
        std::size_t slot = 0;
        std::string joined;
        std::optional<std::string> left;
        bool operator==(const Change&) const = default;
    };

    explicit SpeakerSet(SpeakerSetParams params = {});

    // One frame's level of a participant's decoded audio (RMS dBFS; NaN is
    // silence). Adds unknown participants. Returns the slot it took, if any.
    // Timestamps must not go back (a clock that does is clamped).
    std::optional<Change> update(const std::string& participantId, double levelDbfs, std::int64_t nowMs);
    // Forgets a participant (it left); its slot becomes free. Returns that slot.
    std::optional<std::size_t> remove(const std::string& participantId);

    std::optional<std::size_t> slotOf(const std::string& participantId) const;
    // Per slot, its owner (nullopt: free).
    const std::vector<std::optional<std::string>>& owners() const { return m_owners; }
    // Loud frames of participants that found every slot held by someone who
    // spoke within releaseMs: they heard themselves (more than K speaking at once).
    std::uint64_t overflows() const { return m_overflows; }

private:
    SpeakerSetParams m_params;
    std::vector<std::optional<std::string>> m_owners;
    std::map<std::string, std::int64_t> m_lastLoudMs; // participant -> its last loud frame (absent: never)
    std::int64_t m_nowMs = 0;
    std::uint64_t m_overflows = 0;
};

} // namespace tessera::policy
