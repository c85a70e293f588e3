// Active-speaker detection from audio levels, with hysteresis.
//
// Two rules keep the floor from flapping: a challenger must beat the speaker
// by a margin for a whole hold time (two similar voices never swap), and the
// speaker keeps the floor through pauses shorter than the release time.
#include <algorithm>
#include <cmath>

#include "tessera/policy/speaker.h"
#include "tessera/policy/tiers.h"

namespace tessera::policy {
namespace {

// RTP audio-level (RFC 6464) spans 0..-127 dBov, and `level` reports -inf or
// huge negatives for digital silence: clamp so the average stays finite.
constexpr double kFloorDbfs = -127.0;

double clampLevel(double dbfs) {
    if (std::isnan(dbfs)) return kFloorDbfs;
    return std::clamp(dbfs, kFloorDbfs, 0.0);
}

} // namespace

SpeakerDetector::SpeakerDetector(SpeakerParams params) : m_params(params) {}

bool SpeakerDetector::update(const std::string& participantId, double levelDbfs, std::int64_t nowMs) {
    nowMs = std::max(nowMs, m_nowMs); // a clock going back must not break the runs below
    m_nowMs = nowMs;
    const double level = clampLevel(levelDbfs);
    auto [it, added] = m_participants.try_emplace(participantId);
    State& s = it->second;
    if (added || m_params.smoothingMs <= 0) {
        s.level = level;
    } else {
        // Time-aware EMA: irregular report intervals weigh by elapsed time, and
        // after a long gap the new level simply replaces the old one.
        const double dt = static_cast<double>(nowMs - s.lastUpdateMs);
        const double alpha = 1.0 - std::exp(-dt / static_cast<double>(m_params.smoothingMs));
        s.level += alpha * (level - s.level);
    }
    s.lastUpdateMs = nowMs;
    return evaluate(nowMs);
}

bool SpeakerDetector::tick(std::int64_t nowMs) {
    m_nowMs = std::max(nowMs, m_nowMs);
    return evaluate(m_nowMs);
}

bool SpeakerDetector::remove(const std::string& participantId) {
    if (m_participants.erase(participantId) == 0 || m_speaker != participantId) return false;
    m_speaker.reset();
    m_speakerSilentSince.reset();
    evaluate(m_nowMs); // someone who already qualifies may take over at once
    return true;       // the speaker changed either way
}

std::optional<double> SpeakerDetector::smoothedLevel(const std::string& participantId) const {
    const auto it = m_participants.find(participantId);
    if (it == m_participants.end()) return std::nullopt;
    return it->second.level;
}

bool SpeakerDetector::speaking(const State& s, std::int64_t nowMs) const {
    return nowMs - s.lastUpdateMs <= m_params.staleMs && s.level > m_params.thresholdDbfs;
}

// A stale participant's last level says nothing about now: it counts as silence.
double SpeakerDetector::effectiveLevel(const State& s, std::int64_t nowMs) const {
    return nowMs - s.lastUpdateMs > m_params.staleMs ? kFloorDbfs : s.level;
}

bool SpeakerDetector::evaluate(std::int64_t nowMs) {
    for (auto& [id, s] : m_participants) {
        if (!speaking(s, nowMs))
            s.speakingSince.reset();
        else if (!s.speakingSince)
            s.speakingSince = nowMs;
    }

    bool changed = false;
    // Release: the speaker has been silent (or stale) for releaseMs.
    if (m_speaker) {
        const State& s = m_participants.at(*m_speaker);
        if (speaking(s, nowMs)) {
            m_speakerSilentSince.reset();
        } else if (!m_speakerSilentSince) {
            // A stale speaker went silent when it went stale, not when we noticed.
            const bool stale = nowMs - s.lastUpdateMs > m_params.staleMs;
            m_speakerSilentSince = stale ? s.lastUpdateMs + m_params.staleMs : nowMs;
        }
        if (m_speakerSilentSince && nowMs - *m_speakerSilentSince >= m_params.releaseMs) {
            m_speaker.reset();
            m_speakerSilentSince.reset();
            changed = true;
        }
    }

    // Challengers: with a speaker, a run of being ahead of it by the margin;
    // without one, a run of speaking. Either must last holdMs.
    const State* current = m_speaker ? &m_participants.at(*m_speaker) : nullptr;
    const std::string* best = nullptr;
    double bestLevel = 0;
    for (auto& [id, s] : m_participants) {
        if (current == &s) continue;
        std::optional<std::int64_t> since = s.speakingSince;
        if (current) {
            const bool ahead =
                speaking(s, nowMs) && effectiveLevel(s, nowMs) >= effectiveLevel(*current, nowMs) + m_params.marginDb;
            if (!ahead)
                s.aheadSince.reset();
            else if (!s.aheadSince)
                s.aheadSince = nowMs;
            since = s.aheadSince;
        }
        if (since && nowMs - *since >= m_params.holdMs && (!best || s.level > bestLevel)) {
            best = &id;
            bestLevel = s.level;
        }
    }
    if (best) {
        m_speaker = *best;
        m_speakerSilentSince.reset();
        // Everyone now has to beat the new speaker, from now on.
        for (auto& entry : m_participants) entry.second.aheadSince.reset();
        changed = true;
    }
    return changed;
}

} // namespace tessera::policy
