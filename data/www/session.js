// One participant's session: signaling, the RTCPeerConnection to the MCU,
// local media, data channels, recovery. No DOM here: app.js renders what this
// reports through 'change' events (detail: {what}).
import { Signaling, signalingUrl } from './signaling.js';
import { Chat, FileTransfers } from './datachannels.js';
import { sampleStats } from './stats.js';

const DISCONNECTED_GRACE_MS = 3000;   // iceConnectionState 'disconnected' this long → ICE restart
const ICE_RESTART_TIMEOUT_MS = 15000; // a restart that has not connected by then is retried
const MAX_ICE_RESTARTS = 3;           // then the whole session is rejoined
const FIRST_CONNECT_TIMEOUT_MS = 30000;
const ANSWER_TIMEOUT_MS = 20000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;

export const VIDEO_CONSTRAINTS = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 30 } };
export const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

/**
 * The scaleResolutionDownBy that fits a track of `settings` (its real size)
 * inside the box a `send-size` message asks for, keeping its aspect, never
 * scaling up (docs/protocol.md, `send-size`).
 */
export function sendScale(settings, want) {
  const w = Number(settings?.width), h = Number(settings?.height);
  if (!(w > 0 && h > 0 && want.width > 0 && want.height > 0)) return 1;
  return Math.max(1, w / want.width, h / want.height);
}

function describeMediaError(err) {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Camera and microphone access was denied.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera or microphone was found.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The camera or microphone is in use by another application or could not be started.';
    default:
      return `Camera and microphone are unavailable (${err?.name ?? 'error'}: ${err?.message ?? err}).`;
  }
}

export class Session extends EventTarget {
  /**
   * options: {room, name, token?, maxBitrate?, receiveOnly?, audioProcessing?, relayOnly?}
   */
  constructor(options) {
    super();
    this.room = options.room;
    this.name = options.name;
    this.token = options.token || null;
    this.maxBitrate = options.maxBitrate || null;
    this.wantReceiveOnly = Boolean(options.receiveOnly);
    // Media only through the TURN servers of 'joined' (hides this address from the server; tests TURN).
    this.relayOnly = Boolean(options.relayOnly);
    // false: no echo cancellation, noise suppression or gain control (music; tests with tones).
    this.audioConstraints = options.audioProcessing === false
      ? { echoCancellation: false, noiseSuppression: false, autoGainControl: false }
      : AUDIO_CONSTRAINTS;
    this.receiveOnly = this.wantReceiveOnly;

    this.state = 'idle'; // idle, connecting, connected, reconnecting, failed, left
    this.stateDetail = '';
    this.selfId = null;
    this.participants = new Map(); // the others: id -> {id, name}
    this.layout = null;
    this.layoutHistory = [];
    this.speaker = null;
    this.recording = false;        // the room is being recorded (server message `recording`)
    // The server sends us audio only: null (video), or why: 'link', 'maxBitrate' or 'request'
    // (server message `audio-only`). wantAudioOnly: the user's own choice, sent with `audio-only`.
    this.audioOnly = null;
    this.wantAudioOnly = false;
    // Whose video the composite leaves out (`on-screen` `hidden`): a layout
    // with fewer tiles than people (e.g. "recent") lists everyone, shows some.
    this.offScreen = new Set();
    this.errors = [];              // [{time, code, message}] newest last
    this.mediaError = null;        // why we are receive-only / partial, for the user

    this.localStream = new MediaStream();
    this.micEnabled = true;
    this.camEnabled = true;
    this.screen = null; // {stream, track}
    // What the server asks each of our video sources to send (`send-size`):
    // source ('camera', 'screen') -> {active, width, height, maxBitrate}.
    this.sendSizes = {};
    this.sendSizeQueue = Promise.resolve(); // setParameters calls, one at a time

    this.signaling = null;
    this.joinedOnThisSocket = false;
    this.reconnectAttempt = 0;
    this.reconnectTimer = 0;

    this.pc = null;
    this.remoteStream = null;
    this.audioTransceiver = null;
    this.videoTransceiver = null;
    this.screenTransceiver = null;
    this.pendingCandidates = [];
    this.negotiating = false;
    this.negotiationQueued = false;
    this.restartQueued = false;
    this.answerTimer = 0;
    this.offersSent = 0;
    this.iceRestarts = 0;
    this.disconnectTimer = 0;
    this.restartTimer = 0;
    this.firstConnectTimer = 0;
    this.everConnected = false;

    this.chat = new Chat();
    this.files = new FileTransfers();
    this.stats = null;
    this.rawStats = null;
    this.statsTimer = 0;

    this.chat.addEventListener('message', () => this.emit('chat'));
    this.files.addEventListener('transfer', () => this.emit('files'));
  }

  emit(what) {
    this.dispatchEvent(new CustomEvent('change', { detail: { what } }));
  }

  setState(state, detail = '') {
    if (this.state === state && this.stateDetail === detail) return;
    this.state = state;
    this.stateDetail = detail;
    this.emit('state');
  }

  error(code, message) {
    this.errors.push({ time: Date.now(), code, message });
    if (this.errors.length > 50) this.errors.shift();
    console.warn(`tessera: ${code}: ${message}`);
    this.emit('error');
  }

  get audioTrack() { return this.localStream.getAudioTracks()[0] ?? null; }
  get videoTrack() { return this.localStream.getVideoTracks()[0] ?? null; }

  // ---- Start and stop ---------------------------------------------------

  async start() {
    this.setState('connecting', 'starting camera and microphone');
    if (!this.wantReceiveOnly) await this.acquireMedia();
    this.connect();
  }

  async acquireMedia() {
    const md = navigator.mediaDevices;
    if (!md || !md.getUserMedia) {
      this.mediaError = 'This page cannot use a camera or microphone here (it needs HTTPS or localhost). ' +
        'You are in receive-only mode: you see and hear the others, they do not see or hear you.';
      this.receiveOnly = true;
      this.emit('media');
      return;
    }
    let stream = null;
    let firstError = null;
    try {
      stream = await md.getUserMedia({ audio: this.audioConstraints, video: VIDEO_CONSTRAINTS });
    } catch (err) {
      firstError = err;
    }
    if (!stream && firstError && firstError.name !== 'NotAllowedError' && firstError.name !== 'SecurityError') {
      // Maybe only one of the two is missing or busy: take what there is.
      const tracks = [];
      for (const c of [{ audio: this.audioConstraints }, { video: VIDEO_CONSTRAINTS }]) {
        try {
          tracks.push(...(await md.getUserMedia(c)).getTracks());
        } catch { /* that kind is unavailable */ }
      }
      if (tracks.length) stream = new MediaStream(tracks);
    }
    if (!stream) {
      this.mediaError = `${describeMediaError(firstError)} You are in receive-only mode: ` +
        'you see and hear the others, they do not see or hear you.';
      this.receiveOnly = true;
    } else {
      for (const t of stream.getTracks()) this.addLocalTrack(t);
      if (!stream.getAudioTracks().length) this.mediaError = 'No microphone is available: the others cannot hear you.';
      else if (!stream.getVideoTracks().length) this.mediaError = 'No camera is available: the others cannot see you.';
    }
    this.emit('media');
  }

  /** Stops the camera, microphone and screen capture. */
  releaseMedia() {
    for (const t of this.localStream.getTracks()) t.stop();
    if (this.screen) this.screen.track.stop();
    this.screen = null;
  }

  addLocalTrack(track) {
    track.enabled = track.kind === 'audio' ? this.micEnabled : this.camEnabled;
    track.addEventListener('ended', () => this.emit('track-ended'));
    this.localStream.addTrack(track);
  }

  leave() {
    if (this.state === 'left') return;
    clearTimeout(this.reconnectTimer);
    if (this.signaling) {
      this.signaling.send({ type: 'leave' });
      this.signaling.close(1000, 'leave');
      this.signaling = null;
    }
    this.teardownPeer('left the call');
    this.releaseMedia();
    this.participants.clear();
    this.setState('left');
    this.emit('participants');
    this.emit('media');
  }

  // ---- Signaling -------------------------------------------------------

  connect() {
    clearTimeout(this.reconnectTimer);
    const sig = new Signaling(signalingUrl());
    this.signaling = sig;
    this.joinedOnThisSocket = false;
    sig.addEventListener('open', () => {
      const join = { type: 'join', room: this.room, name: this.name };
      if (this.token) join.token = this.token;
      if (this.maxBitrate) join.maxBitrate = this.maxBitrate;
      if (this.receiveOnly) join.receiveOnly = true;
      this.setState(this.everConnected ? 'reconnecting' : 'connecting', 'joining the room');
      sig.send(join);
    });
    sig.addEventListener('message', (e) => {
      try {
        this.onSignal(e.detail);
      } catch (err) {
        this.error('client', `handling "${e.detail.type}": ${err.message}`);
      }
    });
    sig.addEventListener('close', (e) => this.onSocketClosed(e.detail));
    if (this.state !== 'reconnecting') this.setState('connecting', 'connecting to the server');
    sig.connect();
  }

  onSocketClosed({ code, reason }) {
    this.signaling = null;
    if (this.state === 'left' || this.state === 'failed') return;
    this.teardownPeer('the connection to the server was lost');
    this.participants.clear();
    this.emit('participants');
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.reconnectAttempt * (0.75 + Math.random() * 0.5));
    this.reconnectAttempt++;
    const why = reason ? `${reason} (${code})` : `code ${code}`;
    this.setState('reconnecting', `server connection lost (${why}); retrying in ${(delay / 1000).toFixed(1)} s`);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  /** Drops the socket and peer connection and joins again with a new one. */
  rejoin(why) {
    this.error('reconnect', why);
    if (this.signaling) {
      this.signaling.close(4000, 'rejoin');
      this.signaling = null;
    }
    this.onSocketClosed({ code: 4000, reason: why });
  }

  /** Asks the server for audio only (no video sent to us: saves the downlink) or for video again. */
  setAudioOnly(enabled) {
    this.wantAudioOnly = Boolean(enabled);
    if (this.selfId) this.signaling?.send({ type: 'audio-only', enabled: this.wantAudioOnly });
    this.emit('audio-only');
  }

  onSignal(msg) {
    switch (msg.type) {
      case 'joined': return this.onJoined(msg);
      case 'answer': return this.onAnswer(msg);
      case 'candidate': return this.onRemoteCandidate(msg.candidate);
      case 'participant-joined':
        if (typeof msg.id === 'string' && msg.id !== this.selfId) {
          this.participants.set(msg.id, { id: msg.id, name: String(msg.name ?? '') });
          this.emit('participants');
        }
        return undefined;
      case 'participant-left':
        if (this.participants.delete(msg.id)) this.emit('participants');
        this.files.abortIncoming(msg.id, 'the sender left');
        return undefined;
      case 'layout':
        this.layout = String(msg.layout ?? '');
        this.layoutHistory.push(this.layout);
        this.emit('layout');
        return undefined;
      case 'speaker':
        this.speaker = msg.id ? String(msg.id) : null;
        this.emit('speaker');
        return undefined;
      case 'recording':
        this.recording = msg.recording === true;
        this.emit('recording');
        return undefined;
      case 'audio-only':
        this.audioOnly = msg.enabled === true ? String(msg.reason ?? 'link') : null;
        this.emit('audio-only');
        return undefined;
      case 'send-size': return this.onSendSize(msg);
      case 'on-screen':
        // The whole state each time; ids we do not know are skipped when shown.
        this.offScreen = new Set(Array.isArray(msg.hidden) ? msg.hidden.map(String) : []);
        this.emit('on-screen');
        return undefined;
      case 'error': return this.onServerError(msg);
      default:
        console.debug('tessera: ignoring message', msg.type);
        return undefined;
    }
  }

  onSendSize(msg) {
    if (msg.source !== 'camera' && msg.source !== 'screen') return;
    this.sendSizes[msg.source] = {
      active: msg.active !== false,
      width: Number(msg.width) || 0,
      height: Number(msg.height) || 0,
      maxBitrate: Number(msg.maxBitrate) || 0,
    };
    this.applySendSize(msg.source);
    this.emit('send-size');
  }

  /** Applies the last `send-size` for the source to its sender (after the ones queued). */
  applySendSize(source) {
    this.sendSizeQueue = this.sendSizeQueue
      .then(() => this.setSendParameters(source))
      .catch((err) => this.error('client', `applying send-size: ${err.message}`));
    return this.sendSizeQueue;
  }

  async setSendParameters(source) {
    const want = this.sendSizes[source];
    const transceiver = source === 'screen' ? this.screenTransceiver : this.videoTransceiver;
    if (!want || !transceiver || this.receiveOnly || !this.pc) return;
    const sender = transceiver.sender;
    const params = sender.getParameters();
    if (!params.encodings || params.encodings.length === 0) return; // not negotiated yet: the next one applies
    const settings = sender.track ? sender.track.getSettings() : {};
    for (const encoding of params.encodings) {
      // Not shown anywhere: send nothing (the uplink and the server's decoder rest).
      encoding.active = want.active;
      if (!want.active) continue;
      encoding.scaleResolutionDownBy = sendScale(settings, want);
      if (want.maxBitrate > 0) encoding.maxBitrate = want.maxBitrate;
      else delete encoding.maxBitrate;
    }
    await sender.setParameters(params);
  }

  onServerError(msg) {
    const code = String(msg.code ?? 'error');
    const message = String(msg.message ?? '');
    this.error(code, message);
    if (!this.joinedOnThisSocket) {
      // The join itself was refused (unauthorized, room-full, bad name...):
      // retrying would get the same answer.
      if (this.signaling) this.signaling.close(1000, 'join refused');
      this.signaling = null;
      clearTimeout(this.reconnectTimer);
      this.setState('failed', `could not join: ${message || code}`);
    }
    // Errors during the call are shown; a refused offer is caught by the
    // answer timeout, since an error does not say which request it answers.
  }

  onJoined(msg) {
    this.joinedOnThisSocket = true;
    this.reconnectAttempt = 0;
    if (this.pc) this.teardownPeer('joined again');
    this.selfId = String(msg.id);
    this.sendSizes = {}; // a new participant: the server asks afresh
    this.offScreen = new Set(); // and says who is on screen afresh
    // The server says `recording` after `joined` when the room records.
    this.recording = false;
    this.emit('recording');
    // A new participant on the server: it sends video until told otherwise.
    this.audioOnly = null;
    this.emit('audio-only');
    if (this.wantAudioOnly) this.signaling?.send({ type: 'audio-only', enabled: true });
    this.participants.clear();
    for (const p of Array.isArray(msg.participants) ? msg.participants : []) {
      if (p && p.id !== this.selfId) this.participants.set(String(p.id), { id: String(p.id), name: String(p.name ?? '') });
    }
    this.emit('participants');
    this.setState(this.everConnected ? 'reconnecting' : 'connecting', 'setting up media');
    this.createPeerConnection(Array.isArray(msg.iceServers) ? msg.iceServers : []);
    this.negotiate();
  }

  // ---- Peer connection --------------------------------------------------

  createPeerConnection(iceServers) {
    const pc = new RTCPeerConnection({
      iceServers, bundlePolicy: 'max-bundle', iceTransportPolicy: this.relayOnly ? 'relay' : 'all',
    });
    this.pc = pc;
    this.remoteStream = new MediaStream();
    this.pendingCandidates = [];
    this.negotiating = false;
    this.negotiationQueued = false;
    this.restartQueued = false;
    this.iceRestarts = 0;

    // Audio first, then camera video: the order the server expects.
    if (this.receiveOnly) {
      this.audioTransceiver = pc.addTransceiver('audio', { direction: 'recvonly' });
      this.videoTransceiver = pc.addTransceiver('video', { direction: 'recvonly' });
    } else {
      const senderOf = (kind, track) => {
        if (track) {
          const sender = pc.addTrack(track, this.localStream);
          return pc.getTransceivers().find((t) => t.sender === sender);
        }
        // No device of this kind now: a sendrecv transceiver without a track
        // still receives the mix, and replaceTrack can fill it later.
        return pc.addTransceiver(kind, { direction: 'sendrecv', streams: [this.localStream] });
      };
      this.audioTransceiver = senderOf('audio', this.audioTrack);
      this.videoTransceiver = senderOf('video', this.videoTrack);
    }
    this.screenTransceiver = null;
    if (this.screen) {
      this.screenTransceiver = pc.addTransceiver(this.screen.track, { direction: 'sendonly', streams: [this.screen.stream] });
    }

    // Data channels before the first offer, so it carries the SCTP m-line.
    const chat = pc.createDataChannel('chat', { ordered: true });
    const file = pc.createDataChannel('file', { ordered: true });
    this.chat.setChannel(chat);
    this.chat.listen(chat);
    this.files.setChannel(file);
    this.files.listen(file);
    for (const ch of [chat, file]) {
      ch.addEventListener('open', () => this.emit('channels'));
      ch.addEventListener('close', () => this.emit('channels'));
    }
    pc.addEventListener('datachannel', (e) => {
      // A channel the server opened: receive on it too.
      if (e.channel.label === 'chat') this.chat.listen(e.channel);
      else if (e.channel.label === 'file') this.files.listen(e.channel);
    });

    pc.addEventListener('track', (e) => {
      if (this.pc !== pc) return;
      const t = e.transceiver;
      if (t && t !== this.audioTransceiver && t !== this.videoTransceiver) return;
      for (const old of this.remoteStream.getTracks()) {
        if (old.kind === e.track.kind) this.remoteStream.removeTrack(old);
      }
      this.remoteStream.addTrack(e.track);
      this.emit('remote');
    });
    pc.addEventListener('icecandidate', (e) => {
      if (this.pc !== pc || !this.signaling) return;
      const c = e.candidate;
      if (c && !c.candidate) return; // Firefox's empty end-of-generation marker; null follows
      this.signaling.send({
        type: 'candidate',
        candidate: c ? { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex } : null,
      });
    });
    pc.addEventListener('iceconnectionstatechange', () => this.onIceState(pc));
    pc.addEventListener('connectionstatechange', () => this.onIceState(pc));

    clearTimeout(this.firstConnectTimer);
    this.firstConnectTimer = setTimeout(() => {
      if (this.pc === pc && !this.isConnected(pc)) {
        this.error('ice', 'the media connection did not come up in time');
        this.iceRestart();
      }
    }, FIRST_CONNECT_TIMEOUT_MS);

    this.startStats();
    this.emit('pc');
  }

  teardownPeer(why) {
    clearTimeout(this.disconnectTimer);
    clearTimeout(this.restartTimer);
    clearTimeout(this.firstConnectTimer);
    clearTimeout(this.answerTimer);
    this.disconnectTimer = this.restartTimer = 0;
    this.stopStats();
    this.files.abortIncoming(undefined, why);
    if (this.pc) {
      const pc = this.pc;
      this.pc = null;
      pc.close();
    }
    this.chat.setChannel(null);
    this.files.setChannel(null); // queued files go out on the next channel
    if (this.remoteStream) {
      this.remoteStream = null;
      this.emit('remote');
    }
    this.audioTransceiver = this.videoTransceiver = this.screenTransceiver = null;
    this.emit('pc');
    this.emit('channels');
  }

  isConnected(pc) {
    const ice = pc.iceConnectionState;
    return (pc.connectionState ? pc.connectionState === 'connected' : true) &&
      (ice === 'connected' || ice === 'completed');
  }

  onIceState(pc) {
    if (this.pc !== pc) return;
    const ice = pc.iceConnectionState;
    if (this.isConnected(pc)) {
      clearTimeout(this.disconnectTimer);
      clearTimeout(this.restartTimer);
      clearTimeout(this.firstConnectTimer);
      this.disconnectTimer = this.restartTimer = 0;
      this.iceRestarts = 0;
      this.everConnected = true;
      this.setState('connected');
      return;
    }
    if (ice === 'failed' || pc.connectionState === 'failed') {
      this.setState('reconnecting', 'media connection failed; restarting ICE');
      this.iceRestart();
    } else if (ice === 'disconnected') {
      this.setState('reconnecting', 'media connection interrupted');
      if (!this.disconnectTimer) {
        this.disconnectTimer = setTimeout(() => {
          this.disconnectTimer = 0;
          if (this.pc === pc && pc.iceConnectionState === 'disconnected') this.iceRestart();
        }, DISCONNECTED_GRACE_MS);
      }
    } else if (ice === 'checking' || ice === 'new') {
      if (!this.everConnected) this.setState('connecting', 'connecting media');
    }
  }

  iceRestart() {
    const pc = this.pc;
    if (!pc || this.state === 'left') return;
    // A restart in flight has its own timer and is retried from there. The
    // old path can go 'disconnected' and then 'failed' while the new one is
    // still being checked (slow on a loaded server): counting those as new
    // tries spent all of them within seconds and rejoined a call that the
    // first restart was about to bring back.
    if (this.restartTimer) return;
    if (this.iceRestarts >= MAX_ICE_RESTARTS) {
      this.rejoin(`ICE restart did not help after ${MAX_ICE_RESTARTS} tries; rejoining`);
      return;
    }
    this.iceRestarts++;
    if (!this.isConnected(pc)) {
      this.setState('reconnecting', `restarting ICE (try ${this.iceRestarts} of ${MAX_ICE_RESTARTS})`);
    }
    this.negotiate({ iceRestart: true });
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = 0;
      if (this.pc === pc && !this.isConnected(pc)) this.iceRestart();
    }, ICE_RESTART_TIMEOUT_MS);
  }

  /** Sends an offer now, or after the current offer/answer exchange finishes. */
  async negotiate({ iceRestart = false } = {}) {
    const pc = this.pc;
    if (!pc || !this.signaling) return;
    if (this.negotiating || pc.signalingState !== 'stable') {
      this.negotiationQueued = true;
      this.restartQueued ||= iceRestart;
      return;
    }
    this.negotiating = true;
    try {
      const offer = await pc.createOffer(iceRestart ? { iceRestart: true } : {});
      if (this.pc !== pc) return;
      await pc.setLocalDescription(offer);
      if (this.pc !== pc) return;
      this.signaling?.send({ type: 'offer', sdp: pc.localDescription.sdp });
      this.offersSent++;
      clearTimeout(this.answerTimer);
      this.answerTimer = setTimeout(() => {
        if (this.pc === pc && pc.signalingState === 'have-local-offer') {
          this.abandonOffer('the server did not answer the offer');
        }
      }, ANSWER_TIMEOUT_MS);
    } catch (err) {
      this.negotiating = false;
      this.error('negotiation', `could not create an offer: ${err.message}`);
    }
  }

  async abandonOffer(why) {
    const pc = this.pc;
    clearTimeout(this.answerTimer);
    this.error('negotiation', why);
    try {
      await pc.setLocalDescription({ type: 'rollback' });
    } catch { /* nothing to roll back */ }
    this.negotiating = false;
    if (!this.everConnected && this.pc === pc) {
      // Without a first answer there is no call: start over.
      this.rejoin(why);
    }
  }

  async onAnswer(msg) {
    const pc = this.pc;
    if (!pc || typeof msg.sdp !== 'string') return;
    if (pc.signalingState !== 'have-local-offer') {
      this.error('negotiation', 'got an answer without an offer outstanding');
      return;
    }
    clearTimeout(this.answerTimer);
    try {
      await pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
    } catch (err) {
      this.negotiating = false;
      this.error('negotiation', `the server's answer was not accepted: ${err.message}`);
      try { await pc.setLocalDescription({ type: 'rollback' }); } catch { /* ignore */ }
      return;
    }
    if (this.pc !== pc) return;
    const queued = this.pendingCandidates;
    this.pendingCandidates = [];
    for (const c of queued) await this.addCandidate(pc, c);
    this.negotiating = false;
    this.emit('negotiated');
    // An ICE restart may complete without any state change: re-read it.
    this.onIceState(pc);
    if (this.negotiationQueued) {
      const iceRestart = this.restartQueued;
      this.negotiationQueued = this.restartQueued = false;
      this.negotiate({ iceRestart });
    }
  }

  async onRemoteCandidate(candidate) {
    const pc = this.pc;
    if (!pc) return;
    if (!pc.remoteDescription) {
      this.pendingCandidates.push(candidate ?? null);
      return;
    }
    await this.addCandidate(pc, candidate ?? null);
  }

  async addCandidate(pc, c) {
    try {
      if (!c || !c.candidate) {
        await pc.addIceCandidate(); // end of candidates
        return;
      }
      const init = { candidate: c.candidate, sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null };
      if (init.sdpMid === null && init.sdpMLineIndex === null) init.sdpMLineIndex = 0; // one BUNDLE transport
      await pc.addIceCandidate(init);
    } catch (err) {
      if (c && c.candidate) console.warn('tessera: remote candidate rejected', c, err);
    }
  }

  // ---- Local media controls --------------------------------------------

  setMicEnabled(on) {
    this.micEnabled = on;
    for (const t of this.localStream.getAudioTracks()) t.enabled = on;
    this.emit('media');
  }

  setCamEnabled(on) {
    this.camEnabled = on;
    for (const t of this.localStream.getVideoTracks()) t.enabled = on;
    this.emit('media');
  }

  /** Replaces the local track of `track.kind` everywhere, without renegotiating. */
  async replaceLocalTrack(track) {
    const kind = track.kind;
    const old = kind === 'audio' ? this.audioTrack : this.videoTrack;
    const transceiver = kind === 'audio' ? this.audioTransceiver : this.videoTransceiver;
    if (transceiver && !this.receiveOnly) await transceiver.sender.replaceTrack(track);
    // A new camera may have another size: scale it to what the room needs.
    if (kind === 'video') this.applySendSize('camera');
    if (old) {
      this.localStream.removeTrack(old);
      old.stop();
    }
    this.addLocalTrack(track);
    if (this.mediaError && this.audioTrack && this.videoTrack) this.mediaError = null;
    this.emit('media');
  }

  /** A device of `kind` vanished with nothing to replace it. */
  dropLocalTrack(kind) {
    const old = kind === 'audio' ? this.audioTrack : this.videoTrack;
    if (!old) return;
    const transceiver = kind === 'audio' ? this.audioTransceiver : this.videoTransceiver;
    if (transceiver && !this.receiveOnly) transceiver.sender.replaceTrack(null).catch(() => {});
    this.localStream.removeTrack(old);
    old.stop();
    this.mediaError = kind === 'audio' ? 'The microphone was disconnected.' : 'The camera was disconnected.';
    this.emit('media');
  }

  // ---- Screen share ------------------------------------------------------

  async startScreenShare() {
    if (this.screen) return;
    const md = navigator.mediaDevices;
    if (!md || !md.getDisplayMedia) throw new Error('screen sharing is not supported by this browser');
    const stream = await md.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false });
    const track = stream.getVideoTracks()[0];
    if (!track) throw new Error('no screen was shared');
    if ('contentHint' in track) track.contentHint = 'detail';
    this.screen = { stream, track };
    // The browser's own "Stop sharing" button ends the track.
    track.addEventListener('ended', () => {
      if (this.screen && this.screen.track === track) this.stopScreenShare();
    });
    const pc = this.pc;
    if (pc) {
      // A new transceiver (m-line) for every share, never the previous
      // share's inactive one: the server's webrtcbin (GStreamer 1.22) cannot
      // turn an inactive m-line back on ("transceiver direction changes are
      // not implemented"), and the connection then stalls.
      this.screenTransceiver = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      this.negotiate();
    }
    this.emit('screen');
  }

  stopScreenShare() {
    const screen = this.screen;
    if (!screen) return;
    this.screen = null;
    screen.track.stop();
    const pc = this.pc;
    const t = this.screenTransceiver;
    if (pc && t && pc.getTransceivers().includes(t) && t.sender.track) {
      pc.removeTrack(t.sender); // direction: sendonly -> inactive
      this.negotiate();
    }
    this.emit('screen');
  }

  // ---- Stats ---------------------------------------------------------------

  startStats() {
    this.stopStats();
    this.rawStats = null;
    this.stats = null; // numbers of an earlier connection would mislead
    const pc = this.pc;
    const tick = async () => {
      if (this.pc !== pc) return;
      try {
        const { raw, stats } = await sampleStats(pc, this.rawStats);
        if (this.pc !== pc) return;
        this.rawStats = raw;
        this.stats = stats;
        this.emit('stats');
      } catch (err) {
        console.debug('tessera: getStats failed', err);
      }
    };
    this.statsTimer = setInterval(tick, 1000);
  }

  stopStats() {
    clearInterval(this.statsTimer);
    this.statsTimer = 0;
  }
}
