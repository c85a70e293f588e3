// Records real browser offers for the SDP planning unit tests
// (tests/unit/test_offer_plan.cpp): each browser makes an RTCPeerConnection
// with its fake camera and microphone and prints createOffer().sdp, with no
// server and no network. Run from the repository root, after
// tests/e2e/install.sh:  node tests/data/record-offers.mjs
// It writes tests/data/offer-<browser>-<mode>.sdp.
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { startFirefox } from '../e2e/lib/browsers.mjs';
import { stopChild, waitFor } from '../e2e/lib/util.mjs';

// sendrecv: camera and microphone. recvonly: a viewer (no devices).
// h264: camera and microphone with H.264 as the only video codec (Chromium
// only: Firefox ESR without its OpenH264 plugin offers no H.264).
const modes = ['sendrecv', 'recvonly', 'h264'];

async function makeOffer(mode) {
  const pc = new RTCPeerConnection();
  if (mode === 'recvonly') {
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addTransceiver('video', { direction: 'recvonly' });
  } else {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
  }
  if (mode === 'h264') {
    const h264 = RTCRtpReceiver.getCapabilities('video').codecs.filter((c) => /h264|rtx/i.test(c.mimeType));
    for (const t of pc.getTransceivers()) if (t.receiver.track.kind === 'video') t.setCodecPreferences(h264);
  }
  const offer = await pc.createOffer();
  return offer.sdp;
}

const page = `<!doctype html><script>
const makeOffer = ${makeOffer};
(async () => {
  for (const mode of ${JSON.stringify(modes)}) {
    let sdp;
    try { sdp = await makeOffer(mode); } catch (e) { sdp = 'error: ' + e; }
    await fetch('/offer?mode=' + mode, { method: 'POST', body: sdp });
  }
})();
</script>`;

const offers = new Map(); // "<browser>-<mode>" -> sdp
let browser = '';
const server = createServer((req, res) => {
  if (req.method === 'POST') {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      offers.set(`${browser}-${new URL(req.url, 'http://x').searchParams.get('mode')}`, body);
      res.end();
    });
  } else {
    res.setHeader('content-type', 'text/html');
    res.end(page);
  }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/`;
const all = (name) => () => modes.every((m) => offers.has(`${name}-${m}`));

browser = 'chromium';
const chrome = spawn(process.env.CHROMIUM_BIN || '/usr/bin/chromium', [
  '--headless=new', '--no-sandbox', '--no-first-run', '--user-data-dir=' + mkdtempSync(path.join(os.tmpdir(), 'offers-')),
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', url,
], { stdio: 'ignore', detached: true });
await waitFor('Chromium offers', all(browser));
await stopChild(chrome, { group: true });

browser = 'firefox';
const firefox = await startFirefox(process.env.FIREFOX_BIN || '/usr/bin/firefox-esr', url, '/dev/null');
await waitFor('Firefox offers', all(browser));
await firefox.stop();
server.close();

for (const [key, sdp] of offers) {
  if (sdp.startsWith('error')) {
    console.log(`${key}: ${sdp}`);
    continue;
  }
  writeFileSync(new URL(`offer-${key}.sdp`, import.meta.url), sdp);
  console.log(`offer-${key}.sdp`);
}
