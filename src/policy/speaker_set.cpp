// Who gets a private mix-minus: fast attack (a slot on the first loud frame),
// slow release (kept until needed, and only given up after releaseMs quiet).
#include "tessera/policy/speaker_set.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tessera::policy {

SpeakerSet::SpeakerSet(SpeakerSetParams params) : m_params(params), m_owners(params.slots) {}

std::optional<SpeakerSet::Change> SpeakerSet::update(const std::string& participantId, double levelDbfs,
                                                     std::int64_t nowMs) {
    m_nowMs = std::max(nowMs, m_nowMs);
    if (std::isnan(levelDbfs) || levelDbfs <= m_params.thresholdDbfs) return std::nullopt;
    m_lastLoudMs[participantId] = m_nowMs;
    if (slotOf(participantId)) return std::nullopt;
    // A free slot first (the lowest, so runs are reproducible)...
    const auto free = std::find(m_owners.begin(), m_owners.end(), std::nullopt);
    if (free != m_owners.end()) {
        *free = participantId;
        return Change{static_cast<std::size_t>(free - m_owners.begin()), participantId, std::nullopt};
    }
    // ...else the owner quiet the longest, if it has been quiet for releaseMs.
    std::optional<std::size_t> victim;
    std::int64_t oldest = m_nowMs - m_params.releaseMs;
    for (std::size_t i = 0; i < m_owners.size(); ++i) {
        const auto it = m_lastLoudMs.find(*m_owners[i]);
        const std::int64_t last = it == m_lastLoudMs.end() ? std::numeric_limits<std::int64_t>::min() : it->second;
        if (last <= oldest) {
            oldest = last;
            victim = i;
        }
    }
    if (!victim) {
        ++m_overflows;
        return std::nullopt;
    }
    Change change{*victim, participantId, m_owners[*victim]};
    m_owners[*victim] = participantId;
    return change;
}

std::optional<std::size_t> SpeakerSet::remove(const std::string& participantId) {
    m_lastLoudMs.erase(participantId);
    const auto slot = slotOf(participantId);
    if (slot) m_owners[*slot].reset();
    return slot;
}

std::optional<std::size_t> SpeakerSet::slotOf(const std::string& participantId) const {
    const auto it = std::find(m_owners.begin(), m_owners.end(), participantId);
    if (it == m_owners.end()) return std::nullopt;
    return static_cast<std::size_t>(it - m_owners.begin());
}

} // namespace tessera::policy
