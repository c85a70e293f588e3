// Tessera's watch page: `/watch?room=R` plays a room's mix without joining
// it. WebRTC first, as a WHEP viewer (docs/protocol.md: receive-only, no
// tile, no encoder of its own); where WebRTC is missing or fails, the room's
// HLS stream if it is live (`POST /api/rooms/{room}/live` with hls), by the
// browser itself (Safari) or hls.js. `?tier=T` picks a quality tier, `?hls=1`
// skips WebRTC, `?token=` is sent as the bearer token. `window.tesseraWatch`
// is the test hook.
const $ = (id) => document.getElementById(id);
const video = $('remote-video');
const params = new URLSearchParams(location.search);
const room = params.get('room') ?? '';
const watch = { state: 'idle', mode: null, error: null, pc: null, resource: null };
window.tesseraWatch = watch;

const LIVE_POLL_MS = 2000;
const LIVE_WAIT_MS = 30000;
const STATE_TEXT = { idle: 'Not connected', connecting: 'Connecting…', playing: 'Playing', failed: 'Not available' };

function show(state, detail = '') {
  watch.state = state;
  $('watch-state').dataset.state = state === 'playing' ? 'connected' : state;
  $('watch-state').textContent = STATE_TEXT[state];
  $('watch-status').textContent = detail;
  if (watch.mode) {
    $('mode-label').hidden = false;
    $('mode-label').textContent = watch.mode === 'whep' ? 'WebRTC' : 'HLS';
  }
}

function authorization() {
  const token = params.get('token');
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// STUN and TURN servers from a WHIP/WHEP response's Link headers (RFC 9725 4.6).
function iceServersOf(link) {
  const servers = [];
  for (const m of (link ?? '').matchAll(/<([^>]+)>\s*((?:;\s*[\w-]+="[^"]*"\s*)*)/g)) {
    const attrs = Object.fromEntries([...m[2].matchAll(/([\w-]+)="([^"]*)"/g)].map((a) => [a[1], a[2]]));
    if (attrs.rel !== 'ice-server') continue;
    servers.push({ urls: m[1], ...(attrs.username ? { username: attrs.username, credential: attrs.credential } : {}) });
  }
  return servers;
}

async function whep() {
  watch.mode = 'whep';
  show('connecting', 'Asking the server for the room over WebRTC…');
  const pc = new RTCPeerConnection();
  watch.pc = pc;
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const stream = new MediaStream();
  pc.ontrack = (e) => {
    stream.addTrack(e.track);
    video.srcObject = stream;
  };
  await pc.setLocalDescription(await pc.createOffer());
  const query = new URLSearchParams();
  if (params.get('tier')) query.set('tier', params.get('tier'));
  const res = await fetch(`/whep/${encodeURIComponent(room)}?${query}`, {
    method: 'POST', headers: { 'Content-Type': 'application/sdp', ...authorization() }, body: pc.localDescription.sdp,
  });
  const body = await res.text();
  if (res.status !== 201) throw new Error(`the server answered ${res.status}: ${body.trim()}`);
  watch.resource = new URL(res.headers.get('Location'), location.href).toString();
  const servers = iceServersOf(res.headers.get('Link'));
  if (servers.length) pc.setConfiguration({ ...pc.getConfiguration(), iceServers: servers });
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
  // The candidates Chromium or Firefox finds from now on, trickled (RFC 8840).
  const ufrag = pc.localDescription.sdp.match(/a=ice-ufrag:(\S+)/)?.[1];
  const pwd = pc.localDescription.sdp.match(/a=ice-pwd:(\S+)/)?.[1];
  const mid = pc.getTransceivers()[0].mid;
  const patch = (lines) => fetch(watch.resource, {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': res.headers.get('ETag') ?? '*', ...authorization() },
    body: [`a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`, 'm=video 9 RTP/AVP 0', `a=mid:${mid}`, ...lines, ''].join('\r\n'),
  }).catch(() => {});
  pc.onicecandidate = (e) => patch(e.candidate ? [`a=${e.candidate.candidate}`] : ['a=end-of-candidates']);
  for (const line of pc.localDescription.sdp.split('\r\n')) if (line.startsWith('a=candidate:')) patch([line]);
  if (pc.iceGatheringState === 'complete') patch(['a=end-of-candidates']);
  await new Promise((resolve, reject) => {
    const check = () => {
      if (pc.connectionState === 'connected') resolve();
      else if (pc.connectionState === 'failed') reject(new Error('the WebRTC connection failed'));
    };
    pc.onconnectionstatechange = () => {
      check();
      if (watch.mode === 'whep' && watch.state === 'playing' && pc.connectionState === 'failed') show('failed', 'The connection was lost. Reload to watch again.');
    };
    check();
  });
  show('playing');
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`${src} could not be loaded`));
    document.head.append(s);
  });
}

async function hls() {
  watch.mode = 'hls';
  show('connecting', 'Looking for the room\'s live stream…');
  const url = `/live/${encodeURIComponent(room)}/index.m3u8`;
  // A stream that has just started has no playlist until its first segment
  // (2 s): wait for one a while, as a viewer would.
  for (let waited = 0; ; waited += LIVE_POLL_MS) {
    const res = await fetch(url, { headers: authorization() });
    if (res.ok) break;
    if (res.status !== 404) throw new Error(`the live stream answered ${res.status}`);
    if (waited >= LIVE_WAIT_MS) throw new Error('the room is not streaming live (HLS) now');
    await new Promise((resolve) => setTimeout(resolve, LIVE_POLL_MS));
  }
  // hls.js wherever Media Source Extensions exist: some browsers claim
  // native HLS they do not have (Debian's Chromium answers canPlayType
  // "maybe" and shows black); native HLS only without MSE (iPhone Safari).
  if (window.MediaSource || window.ManagedMediaSource) {
    // hls.js, from npm by scripts/vendor-hls (its light build: no subtitles or DRM).
    if (!window.Hls) await loadScript('vendor/hls.light.min.js');
    if (!window.Hls.isSupported()) throw new Error('hls.js does not run in this browser');
    const player = new window.Hls({ liveDurationInfinity: true });
    watch.hls = player;
    player.on(window.Hls.Events.ERROR, (_, data) => {
      if (data.fatal) show('failed', `The live stream failed: ${data.details}`);
    });
    player.loadSource(url);
    player.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = url;
  } else {
    throw new Error('this browser plays neither WebRTC nor HLS');
  }
  await new Promise((resolve) => video.addEventListener('playing', resolve, { once: true }));
  show('playing');
}

// Autoplay with sound needs a gesture in most browsers: the page starts
// muted and offers to unmute.
function offerUnmute() {
  const button = $('unmute');
  button.hidden = !video.muted;
  button.onclick = () => {
    video.muted = false;
    button.hidden = true;
    video.play().catch(() => {});
  };
}

async function main() {
  $('room-label').textContent = room;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(room)) {
    show('failed', 'Give the room to watch: /watch?room=NAME');
    return;
  }
  document.title = `Tessera: watching ${room}`;
  offerUnmute();
  const reasons = [];
  if (window.RTCPeerConnection && params.get('hls') !== '1') {
    try {
      await whep();
      return;
    } catch (err) {
      reasons.push(`WebRTC: ${err.message}`);
      watch.pc?.close();
      if (watch.resource) fetch(watch.resource, { method: 'DELETE', headers: authorization() }).catch(() => {});
      watch.resource = null;
    }
  }
  try {
    await hls();
  } catch (err) {
    reasons.push(`HLS: ${err.message}`);
    watch.error = reasons.join('; ');
    show('failed', `Cannot play the room. ${watch.error}`);
  }
}

// Leaving frees the viewer's place on the server at once.
addEventListener('pagehide', () => {
  if (watch.resource) fetch(watch.resource, { method: 'DELETE', headers: authorization(), keepalive: true }).catch(() => {});
});

main();
