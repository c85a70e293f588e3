// Quality numbers from RTCPeerConnection.getStats(), sampled once a second.

function kindOf(s) {
  return s.kind ?? s.mediaType; // older Firefox reports mediaType
}

function rate(now, prev, key, dt) {
  if (!prev || dt <= 0 || now[key] === undefined || prev[key] === undefined) return 0;
  return Math.max(0, ((now[key] - prev[key]) * 8) / dt);
}

function lossPercent(lostNow, recvNow, lostPrev, recvPrev) {
  const lost = Math.max(0, lostNow - (lostPrev ?? 0));
  const recv = Math.max(0, recvNow - (recvPrev ?? 0));
  return lost + recv > 0 ? (100 * lost) / (lost + recv) : 0;
}

/** Picks the candidate pair in use (Chromium: transport.selectedCandidatePairId; Firefox: selected). */
function selectedPair(report) {
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) ?? pair;
  });
  if (pair) return pair;
  report.forEach((s) => {
    if (s.type === 'candidate-pair' && (s.selected || (s.nominated && s.state === 'succeeded'))) pair = s;
  });
  return pair;
}

/**
 * Turns two consecutive reports into the numbers the quality panel shows.
 * `prev` is the raw sample returned last time (or null).
 */
export async function sampleStats(pc, prev) {
  const report = await pc.getStats();
  const time = performance.now() / 1000;
  const raw = { time, inVideo: null, inAudio: null, out: { bytesSent: 0, audio: 0, video: 0 } };
  report.forEach((s) => {
    if (s.type === 'inbound-rtp') {
      const kind = kindOf(s);
      // The mix comes on one audio and one video stream; take the busiest.
      if (kind === 'video' && (!raw.inVideo || (s.bytesReceived ?? 0) > raw.inVideo.bytesReceived)) {
        raw.inVideo = {
          bytesReceived: s.bytesReceived ?? 0, packetsLost: s.packetsLost ?? 0,
          packetsReceived: s.packetsReceived ?? 0, framesDecoded: s.framesDecoded ?? 0,
          frameWidth: s.frameWidth ?? 0, frameHeight: s.frameHeight ?? 0,
          framesPerSecond: s.framesPerSecond ?? 0, jitter: s.jitter ?? 0,
          keyFramesDecoded: s.keyFramesDecoded ?? 0, decoder: s.decoderImplementation ?? '',
          codecId: s.codecId, ssrc: s.ssrc, trackIdentifier: s.trackIdentifier ?? null,
        };
      } else if (kind === 'audio' && (!raw.inAudio || (s.bytesReceived ?? 0) > raw.inAudio.bytesReceived)) {
        raw.inAudio = {
          bytesReceived: s.bytesReceived ?? 0, packetsLost: s.packetsLost ?? 0,
          packetsReceived: s.packetsReceived ?? 0, totalAudioEnergy: s.totalAudioEnergy ?? 0,
          audioLevel: s.audioLevel ?? 0, jitter: s.jitter ?? 0, codecId: s.codecId,
        };
      }
    } else if (s.type === 'outbound-rtp') {
      raw.out.bytesSent += s.bytesSent ?? 0;
      if (kindOf(s) === 'audio') raw.out.audio += s.bytesSent ?? 0;
      else raw.out.video += s.bytesSent ?? 0;
    }
  });
  const pair = selectedPair(report);
  let path = '';
  if (pair) {
    const local = report.get(pair.localCandidateId);
    const remote = report.get(pair.remoteCandidateId);
    if (local && remote) {
      const addr = (c) => `${c.address ?? c.ip ?? '?'}:${c.port}`;
      path = `${local.candidateType} ${local.protocol} ${addr(local)} → ${remote.candidateType} ${addr(remote)}`;
    }
  }
  const codec = (id) => {
    const c = id && report.get(id);
    return c ? c.mimeType.replace(/^(audio|video)\//, '') : '';
  };
  const dt = prev ? time - prev.time : 0;
  const v = raw.inVideo;
  const a = raw.inAudio;
  const pv = prev?.inVideo;
  const pa = prev?.inAudio;
  const stats = {
    time: Date.now(),
    inbound: {
      video: v && {
        bitrate: rate(v, pv, 'bytesReceived', dt),
        framesDecoded: v.framesDecoded, frameWidth: v.frameWidth, frameHeight: v.frameHeight,
        framesPerSecond: v.framesPerSecond, packetsLost: v.packetsLost,
        packetsReceived: v.packetsReceived, keyFramesDecoded: v.keyFramesDecoded,
        lossPercent: lossPercent(v.packetsLost, v.packetsReceived, pv?.packetsLost, pv?.packetsReceived),
        jitter: v.jitter, codec: codec(v.codecId), decoder: v.decoder,
        ssrc: v.ssrc, trackIdentifier: v.trackIdentifier,
      },
      audio: a && {
        bitrate: rate(a, pa, 'bytesReceived', dt),
        totalAudioEnergy: a.totalAudioEnergy, audioLevel: a.audioLevel,
        packetsLost: a.packetsLost, packetsReceived: a.packetsReceived,
        lossPercent: lossPercent(a.packetsLost, a.packetsReceived, pa?.packetsLost, pa?.packetsReceived),
        jitter: a.jitter, codec: codec(a.codecId),
      },
    },
    outbound: {
      bitrate: rate(raw.out, prev?.out, 'bytesSent', dt),
      audioBitrate: rate(raw.out, prev?.out, 'audio', dt),
      videoBitrate: rate(raw.out, prev?.out, 'video', dt),
    },
    rtt: pair && pair.currentRoundTripTime !== undefined ? pair.currentRoundTripTime : null, // seconds
    path,
  };
  return { raw, stats };
}

export function formatBitrate(bps) {
  if (!bps) return '0 kb/s';
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(2)} Mb/s`;
  return `${Math.round(bps / 1e3)} kb/s`;
}
