// Tessera web client: the page. Renders a Session (session.js) and wires the
// controls. `?room=R&name=N` joins at once; `window.tessera` is the test hook.
import { Session } from './session.js';
import { Devices, canPickSpeaker } from './devices.js';
import { formatBitrate } from './stats.js';

const $ = (id) => document.getElementById(id);
const ui = {
  joinView: $('join-view'), callView: $('call-view'),
  joinForm: $('join-form'), joinRoom: $('join-room'), joinName: $('join-name'),
  joinReceiveOnly: $('join-receive-only'), joinButton: $('join-button'), joinError: $('join-error'),
  roomLabel: $('room-label'), layoutLabel: $('layout-label'), recordingLabel: $('recording-label'),
  audioOnlyLabel: $('audio-only-label'), audioOnly: $('audio-only-button'), stage: document.querySelector('.stage'),
  connState: $('conn-state'), notices: $('notices'),
  remoteVideo: $('remote-video'), localVideo: $('local-video'), stageStatus: $('stage-status'), unmute: $('unmute'),
  mic: $('mic-button'), cam: $('cam-button'), share: $('share-button'), devicesButton: $('devices-button'),
  leave: $('leave-button'), devices: $('devices'),
  cameraSelect: $('camera-select'), micSelect: $('mic-select'), speakerSelect: $('speaker-select'),
  participants: $('participants'), peopleCount: $('people-count'),
  chatLog: $('chat-log'), chatForm: $('chat-form'), chatInput: $('chat-input'), chatSend: $('chat-send'),
  fileInput: $('file-input'), transfers: $('transfers'), quality: $('quality'),
};

const ROOM_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const STATE_TEXT = {
  idle: 'Not connected', connecting: 'Connecting…', connected: 'Connected',
  reconnecting: 'Reconnecting…', failed: 'Failed', left: 'Left the room',
};

let session = null;
let devices = null;
let chatRendered = 0;
let errorsShown = 0;
const transferRows = new Map();

// ---- Notices ---------------------------------------------------------------

function notice(text, { kind = 'warn', key = null, timeout = 0 } = {}) {
  if (key) ui.notices.querySelector(`[data-key="${key}"]`)?.remove();
  const div = document.createElement('div');
  div.className = `notice ${kind}`;
  if (key) div.dataset.key = key;
  const span = document.createElement('span');
  span.textContent = text;
  const close = document.createElement('button');
  close.type = 'button';
  close.textContent = '×';
  close.setAttribute('aria-label', 'Dismiss');
  close.addEventListener('click', () => div.remove());
  div.append(span, close);
  ui.notices.append(div);
  while (ui.notices.children.length > 4) ui.notices.firstElementChild.remove();
  if (timeout) setTimeout(() => div.remove(), timeout);
}

function clearNotice(key) {
  ui.notices.querySelector(`[data-key="${key}"]`)?.remove();
}

// ---- Joining and leaving -----------------------------------------------------

function showJoin(error = '') {
  ui.callView.hidden = true;
  ui.joinView.hidden = false;
  ui.joinButton.disabled = false;
  ui.joinError.textContent = error;
  ui.joinError.hidden = !error;
}

async function join({ room, name, token, maxBitrate, receiveOnly, audioProcessing, relayOnly }) {
  if (session && session.state !== 'left' && session.state !== 'failed') return;
  if (!ROOM_PATTERN.test(room)) {
    showJoin('The room name must be 1-64 letters, digits, "_" or "-".');
    return;
  }
  name = name.trim();
  if (!name || [...name].length > 64) {
    showJoin('Please enter a name of 1-64 characters.');
    return;
  }
  try { localStorage.setItem('tessera.name', name); } catch { /* storage disabled */ }
  ui.notices.replaceChildren();
  ui.joinView.hidden = true;
  ui.callView.hidden = false;
  ui.roomLabel.textContent = `Room ${room}`;
  document.title = `${room} · Tessera`;

  session = new Session({ room, name, token, maxBitrate, receiveOnly, audioProcessing, relayOnly });
  chatRendered = 0;
  errorsShown = 0;
  transferRows.clear();
  ui.chatLog.replaceChildren();
  ui.transfers.replaceChildren();
  ui.quality.replaceChildren();
  session.addEventListener('change', (e) => render(e.detail.what));
  session.files.addEventListener('transfer', (e) => renderTransfer(e.detail));
  devices?.dispose();
  devices = new Devices(session, { camera: ui.cameraSelect, mic: ui.micSelect, speaker: ui.speakerSelect },
    ui.remoteVideo, (text) => notice(text, { timeout: 10000 }));
  renderAll();
  await session.start();
  devices.refresh(false);
}

function leave() {
  if (!session) return;
  session.leave();
  devices?.dispose();
  devices = null;
  ui.remoteVideo.srcObject = null;
  ui.localVideo.srcObject = null;
  showJoin();
}

// ---- Rendering ---------------------------------------------------------------

function render(what) {
  switch (what) {
    case 'state': renderState(); renderStage(); break;
    case 'participants': case 'speaker': case 'on-screen': renderParticipants(); break;
    case 'layout': renderLayout(); break;
    case 'recording': renderLayout(); break;
    case 'audio-only': renderAudioOnly(); renderStage(); break;
    case 'error': renderErrors(); break;
    case 'media': renderMedia(); renderControls(); devices?.refresh(false); break;
    case 'remote': attachRemote(); break;
    case 'screen': renderControls(); break;
    case 'channels': renderControls(); break;
    case 'chat': renderChat(); break;
    case 'stats': renderStats(); break;
    default: break;
  }
}

function renderAll() {
  renderState(); renderParticipants(); renderLayout(); renderMedia(); renderControls(); renderAudioOnly(); renderStage();
}

// Why the server sends only audio, as the user should read it.
const AUDIO_ONLY_TEXT = {
  link: 'Audio only: your connection is too slow for video. Video comes back when it recovers.',
  maxBitrate: 'Audio only: the bandwidth limit you joined with is too low for video.',
  request: 'Audio only, as you asked. Press "Video on" to get video again.',
};

function renderAudioOnly() {
  const reason = session.audioOnly;
  ui.audioOnlyLabel.hidden = !reason;
  ui.audioOnlyLabel.dataset.reason = reason ?? '';
  ui.audioOnlyLabel.title = reason ? (AUDIO_ONLY_TEXT[reason] ?? 'Audio only') : '';
  ui.stage.classList.toggle('audio-only', Boolean(reason));
  ui.audioOnly.textContent = session.wantAudioOnly ? 'Video on' : 'Audio only';
  ui.audioOnly.setAttribute('aria-pressed', String(session.wantAudioOnly));
}

function renderState() {
  const s = session.state;
  ui.connState.dataset.state = s;
  const detail = session.stateDetail;
  ui.connState.textContent = STATE_TEXT[s] ?? s;
  ui.connState.title = detail;
  if (s === 'failed') {
    // The join was refused: back to the form, with the server's reason.
    session.releaseMedia();
    ui.remoteVideo.srcObject = null;
    showJoin(detail ? detail.replace(/^could not join/, 'Could not join') : 'Could not join.');
  }
  if (s === 'reconnecting' && detail) notice(`Reconnecting: ${detail}`, { key: 'reconnect' });
  if (s === 'connected') clearNotice('reconnect');
}

function renderLayout() {
  ui.layoutLabel.hidden = !session.layout;
  ui.layoutLabel.textContent = session.layout ? `Layout: ${session.layout}` : '';
  ui.recordingLabel.hidden = !session.recording;
}

function renderErrors() {
  for (; errorsShown < session.errors.length; errorsShown++) {
    const e = session.errors[errorsShown];
    const text = e.code === 'reconnect' ? e.message : `Error (${e.code}): ${e.message}`;
    notice(text, { kind: 'error', timeout: 20000 });
  }
}

function renderParticipants() {
  const items = [];
  const add = (id, name, you) => {
    const li = document.createElement('li');
    li.dataset.id = id ?? '';
    if (id && id === session.speaker) li.classList.add('speaking');
    li.append(document.createTextNode(name));
    // A layout with fewer tiles than people (e.g. "recent") leaves some out
    // of the picture; the list still shows everyone in the call and marks
    // them (`on-screen`), you too.
    const off = Boolean(id) && session.offScreen.has(id);
    li.classList.toggle('offscreen', off);
    if (you) {
      const span = document.createElement('span');
      span.className = 'you';
      span.textContent = off ? '(you, not on screen)' : '(you)';
      li.append(span);
    } else if (off) {
      const span = document.createElement('span');
      span.className = 'offscreen-mark';
      span.textContent = '(not on screen)';
      li.append(span);
    }
    items.push(li);
  };
  add(session.selfId, session.name, true);
  for (const p of session.participants.values()) add(p.id, p.name || p.id, false);
  ui.participants.replaceChildren(...items);
  ui.peopleCount.textContent = `(${items.length})`;
}

function renderMedia() {
  const video = session.videoTrack;
  if (video) {
    if (ui.localVideo.srcObject !== session.localStream) ui.localVideo.srcObject = session.localStream;
    ui.localVideo.hidden = false;
    ui.localVideo.classList.toggle('off', !session.camEnabled);
  } else {
    ui.localVideo.hidden = true;
  }
  if (session.mediaError) notice(session.mediaError, { key: 'media' });
  else clearNotice('media');
}

function renderControls() {
  const hasMic = Boolean(session.audioTrack) && !session.receiveOnly;
  const hasCam = Boolean(session.videoTrack) && !session.receiveOnly;
  ui.mic.disabled = !hasMic;
  ui.mic.textContent = session.micEnabled ? 'Mute mic' : 'Unmute mic';
  ui.mic.setAttribute('aria-pressed', String(!session.micEnabled));
  ui.cam.disabled = !hasCam;
  ui.cam.textContent = session.camEnabled ? 'Stop camera' : 'Start camera';
  ui.cam.setAttribute('aria-pressed', String(!session.camEnabled));
  ui.share.disabled = !navigator.mediaDevices?.getDisplayMedia;
  ui.share.textContent = session.screen ? 'Stop sharing' : 'Share screen';
  ui.share.setAttribute('aria-pressed', String(Boolean(session.screen)));
  ui.chatSend.disabled = !session.chat.ready;
}

function renderStage() {
  const hasVideo = ui.remoteVideo.videoWidth > 0 && session.remoteStream;
  let text = '';
  if (session.state === 'reconnecting') text = 'Reconnecting…';
  else if (session.state === 'failed') text = 'The connection failed.';
  else if (session.audioOnly) text = AUDIO_ONLY_TEXT[session.audioOnly] ?? 'Audio only.';
  else if (!hasVideo) text = session.state === 'connected' ? "Waiting for the room's video…" : 'Connecting…';
  ui.stageStatus.textContent = text;
  ui.stageStatus.hidden = !text;
}

function attachRemote() {
  const stream = session.remoteStream;
  if (ui.remoteVideo.srcObject !== stream) ui.remoteVideo.srcObject = stream;
  if (stream && ui.remoteVideo.paused) playRemote();
  renderStage();
}

async function playRemote() {
  const v = ui.remoteVideo;
  if (ui.unmute.hidden) v.muted = false;
  try {
    await v.play();
  } catch (err) {
    if (err.name !== 'NotAllowedError') return; // AbortError: a newer srcObject took over
    // Autoplay with sound was refused: play muted and ask for a click.
    v.muted = true;
    ui.unmute.hidden = false;
    try { await v.play(); } catch { /* even muted playback refused; the button will do */ }
  }
}

function renderChat() {
  const log = session.chat.log;
  for (; chatRendered < log.length; chatRendered++) {
    const m = log[chatRendered];
    const li = document.createElement('li');
    if (m.self) li.classList.add('self');
    const time = document.createElement('time');
    time.className = 'meta';
    const date = new Date(m.ts);
    time.dateTime = date.toISOString();
    time.textContent = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = m.self ? `${m.name} (you)` : m.name;
    const text = document.createElement('span');
    text.textContent = m.text;
    li.append(time, who, text);
    ui.chatLog.append(li);
  }
  ui.chatLog.scrollTop = ui.chatLog.scrollHeight;
}

function formatBytes(n) {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(0)} KiB`;
  return `${n} B`;
}

function renderTransfer(t) {
  let row = transferRows.get(t.id);
  if (!row) {
    const li = document.createElement('li');
    li.dataset.id = t.id;
    const name = document.createElement('span');
    name.className = 'name';
    const info = document.createElement('span');
    info.className = 'info';
    const bar = document.createElement('progress');
    bar.max = Math.max(1, t.size);
    li.append(name, info, bar);
    ui.transfers.prepend(li);
    row = { li, name, info, bar };
    transferRows.set(t.id, row);
  }
  const who = t.direction === 'in' ? `from ${t.fromName ?? t.from ?? 'someone'}` : 'to everyone';
  row.bar.value = t.done;
  row.info.textContent = `${formatBytes(t.done)} / ${formatBytes(t.size)}`;
  if (t.state === 'received' && t.url && !row.link) {
    row.link = document.createElement('a');
    row.link.href = t.url;
    row.link.download = t.name;
    row.link.textContent = t.name;
    row.name.replaceChildren(row.link, document.createTextNode(` ${who}`));
    row.bar.remove();
  } else if (!row.link) {
    row.name.textContent = `${t.name} ${who}${t.state === 'sent' ? ' · sent' : ''}${t.state === 'queued' ? ' · waiting' : ''}`;
  }
  if (t.state === 'sent') row.bar.remove();
  if (t.state === 'failed' && !row.failed) {
    row.failed = document.createElement('span');
    row.failed.className = 'failed';
    row.failed.textContent = `Failed: ${t.error}`;
    row.bar.remove();
    row.li.append(row.failed);
  }
}

function renderStats() {
  const s = session.stats;
  if (!s) return;
  const v = s.inbound.video;
  const a = s.inbound.audio;
  const rows = [
    ['Receiving', `${formatBitrate((v?.bitrate ?? 0) + (a?.bitrate ?? 0))} (video ${formatBitrate(v?.bitrate ?? 0)}, audio ${formatBitrate(a?.bitrate ?? 0)})`],
    ['Sending', formatBitrate(s.outbound.bitrate)],
    ['Packet loss', `video ${(v?.lossPercent ?? 0).toFixed(1)} %, audio ${(a?.lossPercent ?? 0).toFixed(1)} % (total lost ${(v?.packetsLost ?? 0) + (a?.packetsLost ?? 0)})`],
    ['Round trip', s.rtt === null ? '–' : `${Math.round(s.rtt * 1000)} ms`],
    ['Frames decoded', String(v?.framesDecoded ?? 0)],
    ['Frame size', v && v.frameWidth ? `${v.frameWidth}×${v.frameHeight}${v.framesPerSecond ? ` @ ${Math.round(v.framesPerSecond)} fps` : ''}` : '–'],
    ['Codecs', [v?.codec, a?.codec].filter(Boolean).join(', ') || '–'],
    ['Path', s.path || '–'],
  ];
  ui.quality.replaceChildren(...rows.flatMap(([k, val]) => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = val;
    return [dt, dd];
  }));
}

// ---- Controls ------------------------------------------------------------------

ui.joinForm.addEventListener('submit', (e) => {
  e.preventDefault();
  ui.joinButton.disabled = true;
  const room = ui.joinRoom.value.trim();
  const name = ui.joinName.value.trim();
  const url = new URL(window.location.href);
  url.searchParams.set('room', room);
  url.searchParams.set('name', name);
  history.replaceState(null, '', url);
  join({ ...urlOptions(), room, name, receiveOnly: ui.joinReceiveOnly.checked });
});

ui.leave.addEventListener('click', leave);
ui.mic.addEventListener('click', () => session?.setMicEnabled(!session.micEnabled));
ui.cam.addEventListener('click', () => session?.setCamEnabled(!session.camEnabled));
ui.audioOnly.addEventListener('click', () => session?.setAudioOnly(!session.wantAudioOnly));
ui.share.addEventListener('click', async () => {
  if (!session) return;
  if (session.screen) {
    session.stopScreenShare();
    return;
  }
  ui.share.disabled = true;
  try {
    await session.startScreenShare();
  } catch (err) {
    if (err.name !== 'NotAllowedError') notice(`Screen sharing failed: ${err.message || err.name}`, { kind: 'error', timeout: 10000 });
  } finally {
    renderControls();
  }
});
ui.devicesButton.addEventListener('click', () => {
  ui.devices.hidden = !ui.devices.hidden;
  ui.devicesButton.setAttribute('aria-expanded', String(!ui.devices.hidden));
  if (!ui.devices.hidden) devices?.refresh(false);
});
ui.unmute.addEventListener('click', () => {
  ui.remoteVideo.muted = false;
  ui.unmute.hidden = true;
  ui.remoteVideo.play().catch(() => { ui.unmute.hidden = false; });
});
ui.localVideo.addEventListener('click', () => ui.localVideo.classList.toggle('left'));
ui.remoteVideo.addEventListener('resize', () => session && renderStage());
ui.remoteVideo.addEventListener('playing', () => session && renderStage());
ui.chatForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = ui.chatInput.value.trim();
  if (!text || !session) return;
  if (session.chat.send(text, { id: session.selfId, name: session.name })) ui.chatInput.value = '';
  else notice('Chat is not connected yet.', { timeout: 5000 });
});
ui.fileInput.addEventListener('change', () => {
  for (const f of ui.fileInput.files) session?.files.send(f);
  ui.fileInput.value = '';
});
if (!canPickSpeaker) ui.speakerSelect.closest('label').hidden = true;

// ---- Test hook ---------------------------------------------------------------------

window.tessera = {
  get state() { return session?.state ?? 'idle'; },
  get stateDetail() { return session?.stateDetail ?? ''; },
  get self() { return session?.selfId ? { id: session.selfId, name: session.name } : null; },
  get participants() { return session ? [...session.participants.values()].map((p) => ({ ...p })) : []; },
  get pc() { return session?.pc ?? null; },
  get chatLog() { return session ? session.chat.log.map((m) => ({ ...m })) : []; },
  get filesReceived() {
    return session ? session.files.received.map(({ name, size, sha256, from, fromName, mime }) => ({ name, size, sha256, from, fromName, mime })) : [];
  },
  get transfers() {
    return session ? [...session.files.transfers.values()].map(({ id, direction, name, size, done, state, error }) => ({ id, direction, name, size, done, state, error })) : [];
  },
  get stats() { return session?.stats ?? null; },
  get layout() { return session?.layout ?? null; },
  /** null while video is sent; else why not: 'link', 'maxBitrate' or 'request'. */
  get audioOnly() { return session?.audioOnly ?? null; },
  /** What the page shows: the top bar's "Audio only" label (null when hidden) and the stage's text. */
  get audioOnlyShown() {
    return { label: ui.audioOnlyLabel.hidden ? null : ui.audioOnlyLabel.textContent, stage: ui.stageStatus.hidden ? '' : ui.stageStatus.textContent };
  },
  setAudioOnly: (enabled) => session?.setAudioOnly(enabled),
  get layoutHistory() { return session ? [...session.layoutHistory] : []; },
  get speaker() { return session?.speaker ?? null; },
  get errors() { return session ? session.errors.map((e) => ({ ...e })) : []; },
  get mediaError() { return session?.mediaError ?? null; },
  get receiveOnly() { return session?.receiveOnly ?? false; },
  get screenSharing() { return Boolean(session?.screen); },
  get offersSent() { return session?.offersSent ?? 0; },
  get video() {
    const v = ui.remoteVideo;
    return { width: v.videoWidth, height: v.videoHeight, paused: v.paused, muted: v.muted, currentTime: v.currentTime };
  },
  get session() { return session; },
  join: (opts) => join(opts),
  leave: () => leave(),
  sendChat: (text) => session?.chat.send(text, { id: session.selfId, name: session.name }) ?? false,
  sendFile: (blob, name) => session?.files.send(blob, name) ?? null,
  startScreenShare: () => session?.startScreenShare(),
  stopScreenShare: () => session?.stopScreenShare(),
  /** A PNG data: URL of the current mixed frame, `width` pixels wide. */
  snapshot(width = 320) {
    const v = ui.remoteVideo;
    if (!v.videoWidth) return null;
    const c = document.createElement('canvas');
    c.width = width;
    c.height = Math.round((width * v.videoHeight) / v.videoWidth);
    c.getContext('2d').drawImage(v, 0, 0, c.width, c.height);
    return c.toDataURL('image/png');
  },
};

// ---- Start -------------------------------------------------------------------------

const params = new URLSearchParams(window.location.search);

/** Options a link may carry besides room and name: token, maxBitrate (bits/s), audioProcessing=0, relay=1. */
function urlOptions() {
  return {
    token: params.get('token'),
    maxBitrate: Number(params.get('maxBitrate')) || null,
    audioProcessing: params.get('audioProcessing') !== '0',
    relayOnly: params.get('relay') === '1',
  };
}

/** What the quality panel shows, {label: text}, as the user reads it. */
function qualityPanel() {
  return Object.fromEntries([...ui.quality.querySelectorAll('dt')].map((dt) => [dt.textContent, dt.nextElementSibling?.textContent ?? '']));
}

/** `?report=URL` (loopback only): the page posts its state there each second (Firefox e2e test). */
function startReporting(target) {
  let url;
  try { url = new URL(target); } catch { return; }
  const loopback = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(url.hostname);
  if (!loopback || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    console.warn('tessera: ignoring non-loopback report URL');
    return;
  }
  // Uncaught errors, so that the runner can fail the test: it has no other
  // way to see them in Firefox.
  const pageErrors = [];
  window.addEventListener('error', (e) => pageErrors.push(String(e.error?.stack || e.message)));
  window.addEventListener('unhandledrejection', (e) => pageErrors.push(`unhandled rejection: ${e.reason?.stack || e.reason}`));
  let n = 0;
  setInterval(() => {
    const t = window.tessera;
    const body = {
      userAgent: navigator.userAgent, state: t.state, stateDetail: t.stateDetail, self: t.self,
      participants: t.participants, layout: t.layout, stats: t.stats, errors: t.errors,
      mediaError: t.mediaError, video: t.video, chatLog: t.chatLog, filesReceived: t.filesReceived, pageErrors,
      quality: qualityPanel(),
      frame: n % 5 === 0 ? t.snapshot(320) : undefined,
      remoteSdp: n % 5 === 0 ? t.pc?.remoteDescription?.sdp : undefined,
    };
    n++;
    fetch(url, { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify(body) })
      .catch(() => { /* the runner may be gone */ });
  }, 1000);
}

if (params.get('report')) startReporting(params.get('report'));

ui.joinRoom.value = params.get('room') ?? '';
try { ui.joinName.value = params.get('name') ?? localStorage.getItem('tessera.name') ?? ''; } catch { ui.joinName.value = params.get('name') ?? ''; }
ui.joinReceiveOnly.checked = params.get('receiveOnly') === '1' || params.get('receiveOnly') === 'true';
if (params.get('room') && params.get('name')) {
  join({ ...urlOptions(), room: params.get('room'), name: params.get('name'), receiveOnly: ui.joinReceiveOnly.checked });
} else {
  showJoin();
  (ui.joinRoom.value ? ui.joinName : ui.joinRoom).focus();
}
