#!/usr/bin/env node
// End-to-end tests of the Tessera web client in real browsers.
// Usage: see README.md, or `node run.mjs --help`.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, writeFileSync, existsSync, accessSync, constants, readdirSync, rmSync, readFileSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startServer } from './lib/server.mjs';
import { makeMediaFiles, PARTICIPANT_MEDIA } from './lib/media.mjs';
import { ChromiumParticipant, startFirefox, startReportServer, waitForReport } from './lib/browsers.mjs';
import { TesseraClient } from './lib/client.mjs';
import { timing, seconds, waitFor, slug, short, Final, stopChild } from './lib/util.mjs';

const USAGE = `usage: node run.mjs [TESSERA_BINARY] [options]

  TESSERA_BINARY, --tessera PATH   start this server (<build>/src/app/tessera) with
                                   --port 0 --ice-address 127.0.0.1
  --url URL                        use a running server instead
  --server-arg ARG                 extra argument for the server (repeatable)
  --artifacts DIR                  screenshots and logs (default <build>/e2e-artifacts,
                                   or ./e2e-artifacts with --url)
  --only REGEX                     run only the tests whose name matches
  --chromium PATH                  default /usr/bin/chromium
  --firefox PATH                   default firefox-esr from PATH
  --composite-width N              width of the mixed video (default 1280)
  --timeout-scale X                multiply every deadline (default 1)
  --isolate                        re-run inside a new network namespace with only
                                   loopback (needs root): unshare --net
`;

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    tessera: { type: 'string' },
    url: { type: 'string' },
    'server-arg': { type: 'string', multiple: true, default: [] },
    artifacts: { type: 'string' },
    only: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    firefox: { type: 'string' },
    'composite-width': { type: 'string', default: '1280' },
    'timeout-scale': { type: 'string' },
    isolate: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (opts.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const tesseraBinary = opts.tessera ?? positionals[0];
if (!tesseraBinary && !opts.url) {
  process.stderr.write(`give the tessera binary or --url\n\n${USAGE}`);
  process.exit(2);
}
if (opts['timeout-scale']) timing.scale = Number(opts['timeout-scale']) || 1;
const compositeWidth = Number(opts['composite-width']) || 1280;

// ---- Network rule: media must stay on loopback --------------------------------

function nonLoopbackInterfaces() {
  return Object.entries(os.networkInterfaces())
    .filter(([, addrs]) => addrs.some((a) => !a.internal))
    .map(([name]) => name);
}

// ---- The tests -------------------------------------------------------------------

const tests = [];
function test(name, fn) {
  tests.push({ name, fn });
}

function roomName(prefix) {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

function pageUrl(ctx, room, name, extra = {}) {
  const u = new URL('/', ctx.url);
  u.searchParams.set('room', room);
  u.searchParams.set('name', name);
  u.searchParams.set('audioProcessing', '0'); // keep the test tones as they are
  for (const [k, v] of Object.entries(extra)) u.searchParams.set(k, v);
  return u.toString();
}

async function launchParticipant(ctx, name, media) {
  const files = await makeMediaFiles(ctx.mediaDir, media);
  const p = new ChromiumParticipant(name, { ...media, ...files },
    { executablePath: ctx.chromium, artifacts: ctx.artifacts, problems: ctx.pageProblems });
  ctx.participants.push(p);
  return p.launch();
}

async function screenshots(ctx, pages, testName) {
  await Promise.all(pages.map((p) => p.screenshot(`${ctx.testIndex}-${slug(testName)}-${slug(p.name)}.png`)));
}

function framesDecoded(p) {
  return p.eval(() => window.tessera.stats?.inbound?.video?.framesDecoded ?? 0);
}

/**
 * framesDecoded as of a stats sample the page took at `since` (Date.now(); the
 * page's clock is this machine's) or later. The page samples once a second,
 * later on a starved machine: a sample read at once can predate what it is
 * meant to count from.
 */
async function framesDecodedAfter(p, since) {
  let sample = null;
  await waitFor(`${p.name}'s stats sampled at ${since} or later`, async () => {
    sample = await p.eval(() => {
      const s = window.tessera.stats;
      return s && { time: s.time, frames: s.inbound?.video?.framesDecoded ?? 0 };
    });
    return sample !== null && sample.time >= since;
  }, { timeout: seconds(30), describe: () => `the last sample ${JSON.stringify(sample)}` });
  return sample.frames;
}

async function waitConnected(p, timeout = seconds(90)) {
  await waitFor(`${p.name} to connect`, () => p.eval(() => window.tessera.state === 'connected'), {
    timeout, describe: () => p.describe(),
  });
}

async function waitFramesRising(p, by = 15, timeout = seconds(60)) {
  const start = await framesDecoded(p);
  await waitFor(`${p.name}'s framesDecoded to rise by ${by} from ${start}`, async () => (await framesDecoded(p)) >= start + by, {
    timeout, describe: () => p.describe(),
  });
}

/** Shares (%) of red, green and blue pixels in the page's mixed frame; null without video. */
function colourShares(p) {
  return p.eval(() => {
    const v = document.getElementById('remote-video');
    if (!v.videoWidth) return null;
    const c = document.createElement('canvas');
    c.width = 128; c.height = 72;
    const g = c.getContext('2d', { willReadFrequently: true });
    g.drawImage(v, 0, 0, c.width, c.height);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const n = { red: 0, green: 0, blue: 0 };
    for (let i = 0; i < d.length; i += 4) {
      const [r, gg, b] = [d[i], d[i + 1], d[i + 2]];
      if (r > 150 && gg < 90 && b < 90) n.red++;
      else if (gg > 150 && r < 90 && b < 90) n.green++;
      else if (b > 150 && r < 90 && gg < 90) n.blue++;
    }
    const total = c.width * c.height;
    return Object.fromEntries(Object.entries(n).map(([k, x]) => [k, Math.round((1000 * x) / total) / 10]));
  });
}

/** dB above the noise floor of each of `freqs` in the page's received audio (WebAudio); null without audio. */
function hearTones(p, freqs) {
  return p.eval(async (fs) => {
    const v = document.getElementById('remote-video');
    const track = v.srcObject?.getAudioTracks()[0];
    if (!track) return null;
    window.__e2eAudio ??= new AudioContext();
    const ac = window.__e2eAudio;
    await ac.resume();
    const src = ac.createMediaStreamSource(new MediaStream([track]));
    const an = ac.createAnalyser();
    an.fftSize = 16384;
    an.smoothingTimeConstant = 0;
    src.connect(an);
    const bins = new Float32Array(an.frequencyBinCount);
    const sum = new Float32Array(an.frequencyBinCount);
    // A measurement window: 12 spectra 150 ms apart, averaged.
    for (let i = 0; i < 12; i++) {
      await new Promise((r) => setTimeout(r, 150));
      an.getFloatFrequencyData(bins);
      for (let k = 0; k < bins.length; k++) sum[k] += Math.max(bins[k], an.minDecibels) / 12;
    }
    src.disconnect();
    const hz = ac.sampleRate / an.fftSize;
    const sorted = Array.from(sum).filter(Number.isFinite).sort((a, b) => a - b);
    const floor = sorted[Math.floor(sorted.length / 2)] ?? -200;
    const peak = (f) => {
      const k = Math.round(f / hz);
      let m = -Infinity;
      for (let j = k - 4; j <= k + 4; j++) m = Math.max(m, sum[j]);
      return Math.round(m - floor);
    };
    return Object.fromEntries(fs.map((f) => [f, peak(f)]));
  }, freqs);
}

/**
 * The candidate pair the page's connection uses: its local end's type ('host', 'srflx', 'relay'), ICE generation
 * (ufrag) and port, and the bytes received on it; null before one is chosen.
 */
function selectedPath(p) {
  return p.eval(async () => {
    const stats = await window.tessera.pc?.getStats();
    let pair = null;
    stats?.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
    const local = pair && stats.get(pair.localCandidateId);
    return local ? { type: local.candidateType, ufrag: local.usernameFragment, port: local.port, bytesReceived: pair.bytesReceived } : null;
  });
}

/** Two pages in `room` showing PARTICIPANT_MEDIA[0] and [1]: waits until each one's mix shows the other's colour. */
function waitEachSeesTheOther(pages, room) {
  return Promise.all(pages.map((p, i) => {
    const other = PARTICIPANT_MEDIA[1 - i].label;
    let last = null;
    return waitFor(`${p.name}'s mix to show ${other}`, async () => {
      last = await colourShares(p);
      return last && last[other] >= 2;
    }, {
      timeout: seconds(45),
      // Whether media still arrives, and on which path, tells a stalled sender from a stalled page.
      // And the server's side: each one's tier, bit rates and connection (asked by the page, whose origin
      // may be https with a certificate only the browser was told to accept).
      describe: async () => `colour shares in % ${JSON.stringify(last)}; ${await p.describe()}; `
        + `selected path ${JSON.stringify(await selectedPath(p))}; room `
        + short(await p.eval((r) => fetch(`/api/rooms/${r}`).then((x) => x.text(), (e) => e.message), room), 2000),
    });
  }));
}

/** The shared room of tests 1-5: three Chromium participants. */
async function threeInARoom(ctx) {
  if (ctx.three) return ctx.three;
  if (ctx.threeError) throw ctx.threeError;
  try {
    const room = roomName('e2e');
    const names = ['Alice', 'Bob', 'Carol'];
    const pages = await Promise.all(names.map((n, i) => launchParticipant(ctx, n, PARTICIPANT_MEDIA[i])));
    // Joined one after the other, as people do; no waiting between them.
    for (const p of pages) await p.open(pageUrl(ctx, room, p.name));
    ctx.three = { room, pages };
    return ctx.three;
  } catch (err) {
    ctx.threeError = err;
    throw err;
  }
}

test('three Chromium pages join one room and each receives the mix', async (ctx) => {
  const { room, pages } = await threeInARoom(ctx);
  try {
    await Promise.all(pages.map((p) => waitConnected(p)));
    await Promise.all(pages.map((p) => waitFor(`${p.name} to list the other two`, async () => {
      const names = await p.eval(() => window.tessera.participants.map((x) => x.name));
      return pages.filter((o) => o !== p).every((o) => names.includes(o.name));
    }, { describe: () => p.describe() })));
    await Promise.all(pages.map((p) => waitFramesRising(p)));
    await Promise.all(pages.map((p) => waitFor(`${p.name}'s <video> to be ${compositeWidth} wide`,
      () => p.eval((w) => window.tessera.video.width === w, compositeWidth), { describe: () => p.describe() })));
    await Promise.all(pages.map(async (p) => {
      const e0 = await p.eval(() => window.tessera.stats?.inbound?.audio?.totalAudioEnergy ?? 0);
      await waitFor(`${p.name}'s inbound totalAudioEnergy to rise from ${e0}`,
        () => p.eval((e) => (window.tessera.stats?.inbound?.audio?.totalAudioEnergy ?? 0) > e + 1e-4, e0),
        { describe: () => p.describe() });
    }));
    // On loopback nothing limits the link: the server's estimate from each
    // page's transport-cc feedback must keep every page on the top tier
    // (a busy machine once made it read that feedback as congestion).
    let details = null;
    await waitFor('every page on the high tier with an estimate from its transport-cc feedback', async () => {
      details = await (await fetch(new URL(`/api/rooms/${room}`, ctx.url))).json();
      return pages.every((p) => details.participants?.some((x) => x.name === p.name && x.tier === 'high'
        && Number.isFinite(x.estimatedBps)));
    }, { timeout: seconds(30), describe: () => `participants: ${short(details?.participants, 800)}` });
  } finally {
    await screenshots(ctx, pages, 'join');
  }
});

// Each page's mix shows every page's camera colour (>= 2 % of it each).
function waitEveryCamera(pages, when = '') {
  return Promise.all(pages.map((p) => {
    let last = null;
    return waitFor(`${p.name}'s mix to show red, green and blue tiles (>= 2 % each)${when}`, async () => {
      last = await colourShares(p);
      return last && pages.every((o) => last[o.media.label] >= 2);
    }, {
      timeout: seconds(45),
      // Whether media still arrives, and on which path, tells a stalled sender from a stalled page.
      describe: async () => `colour shares in % ${JSON.stringify(last)}; ${await p.describe()}; `
        + `selected path ${JSON.stringify(await selectedPath(p))}`,
    });
  }));
}

test('the mix shows every participant\'s camera', async (ctx) => {
  const { pages } = await threeInARoom(ctx);
  try {
    await waitEveryCamera(pages);
  } finally {
    await screenshots(ctx, pages, 'colours');
  }
});

test('each participant hears the others and not itself (mix-minus)', async (ctx) => {
  const { pages } = await threeInARoom(ctx);
  const freqs = pages.map((p) => p.media.freq);
  const results = {};
  try {
    await Promise.all(pages.map((p) => {
      const others = pages.filter((o) => o !== p).map((o) => o.media.freq);
      const who = pages.filter((o) => o !== p).map((o) => `${o.name} (${o.media.freq} Hz)`).join(' and ');
      return waitFor(`${p.name} to hear ${who} and not itself (${p.media.freq} Hz)`, async () => {
        const r = await hearTones(p, freqs);
        results[p.name] = r;
        // Heard: 25 dB above the noise floor. Own voice: 30 dB below the
        // weaker of the others (without mix-minus it would be as loud).
        return r && others.every((f) => r[f] >= 25) && r[p.media.freq] <= Math.min(...others.map((f) => r[f])) - 30;
      }, { timeout: seconds(45), interval: 500, describe: () => `dB above the noise floor: ${JSON.stringify(results[p.name])}` });
    }));
  } finally {
    console.log(`# tones heard (dB above floor): ${JSON.stringify(results)}`);
  }
});

test('chat from one participant reaches the other two', async (ctx) => {
  const { pages } = await threeInARoom(ctx);
  const [a, ...rest] = pages;
  await waitFor(`${a.name}'s chat to be ready`, () => a.eval(() => !document.getElementById('chat-send').disabled), {
    describe: () => a.describe(),
  });
  const text = `hello from ${a.name} ${randomBytes(4).toString('hex')} ✓`;
  await a.page.fill('#chat-input', text);
  await a.page.press('#chat-input', 'Enter');
  const aId = await a.eval(() => window.tessera.self?.id);
  try {
    await Promise.all(rest.map((p) => waitFor(`${p.name} to receive the chat message`, () => p.eval(({ text, from, name }) =>
      window.tessera.chatLog.some((m) => m.text === text && m.name === name && m.from === from && Number.isFinite(m.ts)),
    { text, from: aId, name: a.name }), {
      timeout: seconds(30),
      describe: async () => `chatLog: ${short(await p.eval(() => window.tessera.chatLog))}`,
    })));
    const own = await a.eval((t) => window.tessera.chatLog.some((m) => m.self && m.text === t), text);
    if (!own) throw new Error(`${a.name}'s own message is missing from its log`);
  } finally {
    await screenshots(ctx, pages, 'chat');
  }
});

test('a 5 MB random file arrives intact at the other two', async (ctx) => {
  const { pages } = await threeInARoom(ctx);
  const [a, ...rest] = pages;
  const data = randomBytes(5 * 1024 * 1024);
  const sha256 = createHash('sha256').update(data).digest('hex');
  const name = `random-${randomBytes(3).toString('hex')}.bin`;
  // Given as a file on disk, the browser reads it itself. Given as a buffer,
  // Playwright base64s it into the page and rebuilds the bytes there with one
  // JavaScript call per byte, on the main thread of a page that is in a call:
  // 55 s for 5 MB on a loaded 2-core machine, past the action's 30 s.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-e2e-file-'));
  ctx.cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, name);
  writeFileSync(file, data);
  // The server relays to the receivers' channels and stores nothing: a
  // receiver whose channel is not open yet would never see the file.
  await Promise.all(pages.map((p) => waitFor(`${p.name}'s file channel to be open`,
    () => p.eval(() => window.tessera.session?.files.channel?.readyState === 'open'),
    { describe: () => p.describe() })));
  const aId = await a.eval(() => window.tessera.self?.id);
  await a.page.setInputFiles('#file-input', file);
  const progress = async (p) => short(await p.eval(() => window.tessera.transfers.map((t) => `${t.direction} ${t.name} ${t.done}/${t.size} ${t.state}${t.error ? ` (${t.error})` : ''}`)));
  try {
    await Promise.all(rest.map((p) => waitFor(`${p.name} to receive ${name}`, async () => {
      const got = await p.eval((n) => window.tessera.filesReceived.find((f) => f.name === n), name);
      if (!got) return false;
      // A finished file does not change: a wrong one fails at once.
      if (got.size !== data.length || got.sha256 !== sha256) {
        throw new Final(`${p.name} got ${got.size} bytes with SHA-256 ${got.sha256}, expected ${data.length} bytes ${sha256}`);
      }
      if (got.from !== aId || got.fromName !== a.name) {
        throw new Final(`${p.name} sees the file from ${got.from}/${got.fromName}, expected ${aId}/${a.name}`);
      }
      return true;
    }, { timeout: seconds(180), interval: 500, describe: async () => `${p.name}: ${await progress(p)}; sender: ${await progress(a)}` })));
    const sent = await a.eval((n) => window.tessera.transfers.find((t) => t.name === n)?.state, name);
    if (sent !== 'sent') throw new Error(`the sender's transfer is "${sent}", not "sent"`);
    const links = await Promise.all(rest.map((p) => p.eval((n) => [...document.querySelectorAll('#transfers a[download]')].some((l) => l.download === n), name)));
    if (!links.every(Boolean)) throw new Error('a receiver shows no download link');
  } finally {
    await screenshots(ctx, pages, 'file');
  }
});

test('mute, camera off and device switching work without renegotiating', async (ctx) => {
  const { pages } = await threeInARoom(ctx);
  const [a, b, c] = pages;
  const freqs = pages.map((p) => p.media.freq);
  const aTone = a.media.freq;
  const cTone = c.media.freq;
  await waitConnected(a);
  const offersBefore = await a.eval(() => window.tessera.offersSent);
  let heard = null;
  const bobHears = (what, check) => waitFor(what, async () => {
    heard = await hearTones(b, freqs);
    return heard && check(heard);
  }, { timeout: seconds(45), interval: 500, describe: () => `${b.name} hears (dB above floor) ${JSON.stringify(heard)}` });
  let shares = null;
  const bobSees = (what, check) => waitFor(what, async () => {
    shares = await colourShares(b);
    return shares && check(shares);
  }, { timeout: seconds(45), describe: () => `colour shares in ${b.name}'s mix, % ${JSON.stringify(shares)}` });
  try {
    // Microphone: track.enabled = false sends silence.
    await a.page.click('#mic-button');
    await bobHears(`${b.name} to stop hearing ${a.name}'s ${aTone} Hz after "Mute mic"`,
      (r) => r[cTone] >= 25 && r[aTone] <= r[cTone] - 30);
    await a.page.click('#mic-button');
    await bobHears(`${b.name} to hear ${a.name}'s ${aTone} Hz again after "Unmute mic"`, (r) => r[aTone] >= 25);
    // Camera: track.enabled = false sends black frames.
    await a.page.click('#cam-button');
    await bobSees(`${a.name}'s red tile to go dark in ${b.name}'s mix after "Stop camera"`, (x) => x.red < 0.5);
    await a.page.click('#cam-button');
    await bobSees(`${a.name}'s red tile to come back after "Start camera"`, (x) => x.red >= 2);
    // Another microphone: replaceTrack on the same sender.
    await a.page.click('#devices-button');
    const mics = await a.eval(() => [...document.querySelectorAll('#mic-select option')]
      .map((o) => ({ value: o.value, selected: o.selected, label: o.textContent })));
    const current = mics.find((o) => o.selected);
    const next = mics.find((o) => !o.selected && o.value !== 'default');
    if (!next) throw new Error(`only one microphone to choose from: ${short(mics)}`);
    const trackBefore = await a.eval(() => window.tessera.session.audioTransceiver.sender.track?.id);
    await a.page.selectOption('#mic-select', next.value);
    await waitFor(`${a.name}'s audio sender to carry "${next.label}"`, () => a.eval((before) => {
      const t = window.tessera.session.audioTransceiver.sender.track;
      return Boolean(t && t.id !== before && t.readyState === 'live');
    }, trackBefore), { timeout: seconds(20), describe: () => a.describe() });
    await waitFor(`${a.name} to keep sending audio`, () => a.eval(() => (window.tessera.stats?.outbound?.audioBitrate ?? 0) > 1000),
      { timeout: seconds(20), describe: () => a.describe() });
    // The active microphone is unplugged: the page's device list loses it and
    // 'devicechange' fires (simulated: fake devices cannot be unplugged).
    const unplugged = await a.eval(() => window.tessera.session.audioTrack.getSettings().deviceId);
    const trackBeforeUnplug = await a.eval(() => window.tessera.session.audioTransceiver.sender.track?.id);
    await a.eval((gone) => {
      const md = navigator.mediaDevices;
      window.__e2eEnumerate = md.enumerateDevices;
      md.enumerateDevices = async () => (await window.__e2eEnumerate.call(md)).filter((d) => !(d.kind === 'audioinput' && d.deviceId === gone));
      md.dispatchEvent(new Event('devicechange'));
    }, unplugged);
    await waitFor(`${a.name} to move to another microphone when its own vanished`, () => a.eval(({ gone, before }) => {
      const t = window.tessera.session.audioTransceiver.sender.track;
      return Boolean(t && t.id !== before && t.readyState === 'live' && t.getSettings().deviceId !== gone &&
        ![...document.querySelectorAll('#mic-select option')].some((o) => o.value === gone));
    }, { gone: unplugged, before: trackBeforeUnplug }), { timeout: seconds(20), describe: () => a.describe() });
    await a.eval(() => {
      navigator.mediaDevices.enumerateDevices = window.__e2eEnumerate;
      navigator.mediaDevices.dispatchEvent(new Event('devicechange'));
    });
    if (current) await a.page.selectOption('#mic-select', current.value);
    // Another speaker: setSinkId on the mixed <video>.
    // Chromium's fake devices include three outputs ("Fake Default Audio
    // Output", "Fake Audio Output 1" and 2): fewer means the picker is broken.
    const speakers = await a.eval(() => [...document.querySelectorAll('#speaker-select option')]
      .map((o) => ({ value: o.value, selected: o.selected, label: o.textContent })));
    const speaker = speakers.find((o) => !o.selected && o.value !== 'default');
    if (!speaker) throw new Error(`no second speaker to choose from: ${short(speakers)}`);
    await a.page.selectOption('#speaker-select', speaker.value);
    await waitFor(`${a.name}'s <video> to play on "${speaker.label}"`,
      () => a.eval((id) => document.getElementById('remote-video').sinkId === id, speaker.value), {
        timeout: seconds(20),
        describe: async () => `sinkId ${await a.eval(() => document.getElementById('remote-video').sinkId)}`,
      });
    const playedUntil = await a.eval(() => window.tessera.video.currentTime);
    await waitFor(`${a.name}'s <video> to keep playing on "${speaker.label}"`,
      () => a.eval((t) => !window.tessera.video.paused && window.tessera.video.currentTime > t + 1, playedUntil),
      { timeout: seconds(20), describe: async () => `video ${short(await a.eval(() => window.tessera.video))}` });
    const offers = (await a.eval(() => window.tessera.offersSent)) - offersBefore;
    if (offers) throw new Error(`${a.name} sent ${offers} offer(s): muting and device switching must not renegotiate`);
  } finally {
    await screenshots(ctx, pages, 'devices');
  }
});

test('screen share switches the layout to presentation and back', async (ctx) => {
  const { pages } = await threeInARoom(ctx);
  const [a] = pages;
  const layouts = () => Promise.all(pages.map((p) => p.eval(() => window.tessera.layout)));
  const before = await a.eval(() => window.tessera.layout);
  const allLayout = (what, check) => waitFor(what, async () => (await layouts()).every(check), {
    timeout: seconds(60), describe: async () => `layouts: ${JSON.stringify(await layouts())}; ${await a.describe()}`,
  });
  const sendonly = (dir) => waitFor(`${a.name}'s screen transceiver to be negotiated ${dir}`, () => a.eval((d) => {
    const t = window.tessera.session?.screenTransceiver;
    return Boolean(t && t.currentDirection === d && window.tessera.pc.signalingState === 'stable');
  }, dir), { timeout: seconds(60), describe: () => a.describe() });
  try {
    // 1: the share button, then the stop button.
    await a.page.click('#share-button');
    await waitFor(`${a.name} to be sharing`, () => a.eval(() => window.tessera.screenSharing), {
      timeout: seconds(30),
      describe: async () => `errors: ${short(await a.eval(() => [...document.querySelectorAll('.notice')].map((n) => n.textContent)))}`,
    });
    await sendonly('sendonly');
    await allLayout('every page to get layout "presentation"', (l) => l === 'presentation');
    await waitFramesRising(pages[1]);
    await screenshots(ctx, pages, 'presentation');
    await a.page.click('#share-button');
    await sendonly('inactive');
    await allLayout(`every page to get layout back to "${before}"`, (l) => (before && before !== 'presentation' ? l === before : l !== 'presentation'));
    // 2: the browser's own "Stop sharing" ends the track: 'ended' must stop the share too.
    await a.page.click('#share-button');
    await sendonly('sendonly');
    await allLayout('every page to get layout "presentation" again', (l) => l === 'presentation');
    await a.eval(() => window.tessera.session.screen.track.dispatchEvent(new Event('ended')));
    await sendonly('inactive');
    await allLayout('the layout to go back after the track ended', (l) => l !== 'presentation');
    await waitFramesRising(pages[1]);
    // The sharer's camera is back in its tile (once its share's last frame
    // froze there, the share's late packets taken for its camera).
    await waitEveryCamera(pages, ' after the share');
  } finally {
    await screenshots(ctx, pages, 'after-share');
  }
});

test('the page applies send-size: its camera goes out at its tile size, and not at all when not shown', async (ctx) => {
  const room = roomName('sendsize');
  const p = await launchParticipant(ctx, 'Solo', PARTICIPANT_MEDIA[0]);
  // The camera's outbound-rtp as Chromium reports it.
  const outbound = () => p.eval(async () => {
    const t = window.tessera.session?.videoTransceiver;
    if (!t) return null;
    let out = null;
    (await t.sender.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp') out = { frameWidth: s.frameWidth ?? 0, frameHeight: s.frameHeight ?? 0, active: s.active };
    });
    return out;
  });
  const detail = async () => (await (await fetch(new URL(`/api/rooms/${room}`, ctx.url))).json()).participants?.[0] ?? null;
  const putLayout = async (layout) => {
    const res = await fetch(new URL(`/api/rooms/${room}/layout`, ctx.url), {
      method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ layout }),
    });
    if (res.status !== 200) throw new Error(`PUT layout: ${res.status} ${await res.text()}`);
  };
  let last = null;
  const waitOutbound = (what, check) => waitFor(what, async () => { last = await outbound(); return Boolean(last && check(last)); }, {
    timeout: seconds(60),
    describe: async () => `outbound ${JSON.stringify(last)}; asked ${JSON.stringify(await p.eval(() => window.tessera.session?.sendSizes))}; `
      + `server ${JSON.stringify(await detail())}; ${await p.describe()}`,
  });
  try {
    await p.open(pageUrl(ctx, room, p.name));
    await waitConnected(p);
    // Alone in the grid it is asked for more than its camera has: it sends its 640x360 as it is
    // (over 160 at least: Chromium may adapt for CPU on a loaded machine, never that far).
    await waitOutbound('the camera to go out wider than 160', (o) => o.frameWidth > 160);
    // One tile an eighth of the canvas wide (160x90 on 1280x720): asked for that, the camera goes out at a quarter size.
    await putLayout({ name: 'corner', slots: [{ x: 0, y: 0, w: 0.125, h: 0.125, source: 'next' }], padding: 0 });
    await waitOutbound('outbound frameWidth to drop to 160 or less', (o) => o.frameWidth > 0 && o.frameWidth <= 160);
    const asked = await p.eval(() => window.tessera.session.sendSizes.camera);
    if (!(asked.active && asked.width === 160 && asked.height === 90)) throw new Error(`asked for ${JSON.stringify(asked)}, not 160x90`);
    const scale = await p.eval(() => window.tessera.session.videoTransceiver.sender.getParameters().encodings[0].scaleResolutionDownBy);
    if (scale !== 4) throw new Error(`scaleResolutionDownBy ${scale}, not 4 (640x360 into 160x90)`);
    // The server's decoder runs at that size.
    await waitFor('the server to decode the camera at 160 wide or less', async () => {
      const w = (await detail())?.decodedSize?.width ?? 0;
      return w > 0 && w <= 160;
    }, { timeout: seconds(60), describe: async () => JSON.stringify(await detail()) });
    // A layout that shows nobody: the page stops sending video.
    await putLayout({ name: 'nobody', slots: [{ source: 'participant', participant: 'Nobody' }] });
    await waitOutbound('the camera encoding to be inactive', (o) => o.active === false);
    // Its list of participants still shows it, marked as off the picture.
    await waitFor('the participant list to say "not on screen"', async () => p.eval(
      () => document.querySelector('#participants li')?.textContent.includes('not on screen') ?? false,
    ), { timeout: seconds(30), describe: async () => p.eval(() => document.querySelector('#participants')?.textContent) });
    // Back to the grid: full size again.
    await putLayout('grid');
    await waitOutbound('the camera to go out wider than 160 again', (o) => o.active !== false && o.frameWidth > 160);
  } finally {
    await screenshots(ctx, [p], 'send-size');
    await p.close(); // its room is its own: nothing later needs it
  }
});

test('an ICE restart keeps the call going', async (ctx) => {
  const { pages } = await threeInARoom(ctx);
  const [a] = pages;
  const ufrag = () => a.eval(() => /a=ice-ufrag:(\S+)/.exec(window.tessera.pc?.localDescription?.sdp ?? '')?.[1] ?? null);
  // The page's selected candidate pair: the ICE generation (ufrag) of its
  // local end, and the bytes received on it.
  const path = () => selectedPath(a);
  const selectedAndState = async () => `selected pair: ${JSON.stringify(await path())}; ${await a.describe()}`;
  const before = await ufrag();
  await waitConnected(a);
  const errorsBefore = await a.eval(() => window.tessera.errors.length);
  const offersBefore = await a.eval(() => window.tessera.session.offersSent);
  await a.eval(() => window.tessera.session.iceRestart());
  const after = await waitFor(`${a.name}'s restart offer to be answered`, async () => {
    const now = await ufrag();
    return now && now !== before && (await a.eval(() => window.tessera.pc.signalingState === 'stable')) && now;
  }, { timeout: seconds(30), describe: () => a.describe() });
  // The page moves its media to a pair of the new generation, and the server
  // must send on that pair: a server that went on checking with the page's
  // old credentials never took the new path, and the page, which had, went
  // 'disconnected'.
  const moved = await waitFor(`${a.name} to select a candidate pair of its new ICE generation (${after})`, async () => {
    const p = await path();
    return p?.ufrag === after && p;
  }, { timeout: seconds(30), describe: selectedAndState });
  await waitFor(`media to arrive on the new pair (local port ${moved.port})`, async () => {
    const p = await path();
    return p?.port === moved.port && p.bytesReceived > moved.bytesReceived + 100000;
  }, { timeout: seconds(30), describe: selectedAndState });
  await waitConnected(a, seconds(45));
  await waitFramesRising(a);
  // One restart did it: the page's own retry (a second offer after 15 s)
  // would hide a server that misses the first.
  const offers = (await a.eval(() => window.tessera.session.offersSent)) - offersBefore;
  if (offers !== 1) throw new Error(`the restart took ${offers} offers, not 1`);
  const errors = await a.eval((n) => window.tessera.errors.slice(n), errorsBefore);
  if (errors.length) throw new Error(`the page reported ${short(errors)}`);
});

test('"Audio only" stops the video, says so and keeps the sound; "Video on" brings the picture back', async (ctx) => {
  const { room, pages } = await threeInARoom(ctx);
  const [a, b, c] = pages;
  await waitConnected(c);
  await waitFramesRising(c);
  const tierOf = async (name) => {
    const details = await (await fetch(new URL(`/api/rooms/${room}`, ctx.url))).json();
    return details.participants?.find((p) => p.name === name)?.tier;
  };
  let heard = null;
  const carolHearsAlice = (what) => waitFor(what, async () => {
    heard = await hearTones(c, [a.media.freq]);
    return heard && heard[a.media.freq] >= 25;
  }, { timeout: seconds(45), interval: 500, describe: () => `${c.name} hears (dB above floor) ${JSON.stringify(heard)}` });
  const shown = () => c.eval(() => window.tessera.audioOnlyShown);
  try {
    await c.page.click('#audio-only-button');
    await waitFor(`${c.name}'s page to show "Audio only" (her own choice)`, async () => {
      const s = await shown();
      return s.label === 'Audio only' && /as you asked/.test(s.stage) && (await c.eval(() => window.tessera.audioOnly)) === 'request';
    }, { timeout: seconds(30), describe: async () => `shown ${short(await shown())}; ${await c.describe()}` });
    const tier = await tierOf(c.name);
    if (tier !== 'audio') throw new Error(`GET /api/rooms says ${c.name} receives tier ${tier}, not "audio"`);
    // No more video frames (what was in flight has arrived a second after
    // the switch, which came before the page was told), the sound goes on.
    const frozenAt = await framesDecodedAfter(c, Date.now() + 1000);
    await carolHearsAlice(`${c.name} to hear ${a.name} while audio only`);
    const frames = await framesDecodedAfter(c, Date.now() + 2000);
    if (frames > frozenAt + 2) throw new Error(`${c.name} decoded ${frames - frozenAt} frames while audio only`);
    const button = await c.eval(() => document.getElementById('audio-only-button').textContent);
    if (button !== 'Video on') throw new Error(`the button reads "${button}" while audio only`);

    await c.page.click('#audio-only-button');
    await waitFor(`${c.name}'s page to drop the "Audio only" label`, async () => (await shown()).label === null,
      { timeout: seconds(30), describe: async () => `shown ${short(await shown())}` });
    await waitFramesRising(c);
    let shares = null;
    // On failure: whether the others' mix lacks the red too (then it is the
    // room's composite, not this receiver's way back), and the room as the
    // server has it (its layout; what it decodes of whom).
    await waitFor(`${c.name}'s mix to show ${a.name}'s red again`, async () => {
      shares = await colourShares(c);
      return shares && shares.red >= 2;
    }, {
      timeout: seconds(45),
      describe: async () => `colour shares % ${JSON.stringify(shares)}; ${b.name}'s ${JSON.stringify(await colourShares(b))}; `
        + `room ${short(await (await fetch(new URL(`/api/rooms/${room}`, ctx.url))).json(), 2000)}`,
    });
    await carolHearsAlice(`${c.name} to hear ${a.name} with video back`);
    const back = await tierOf(c.name);
    if (back === 'audio') throw new Error(`GET /api/rooms still says ${c.name} is on the audio-only tier`);
  } finally {
    await screenshots(ctx, pages, 'audio-only');
    if (await c.eval(() => window.tessera.session?.wantAudioOnly)) await c.page.click('#audio-only-button');
  }
});

// A browser gives getUserMedia only to secure contexts: on a name other than
// localhost that takes https (docs/security.md). The server here has its own
// certificate for tessera.test, mapped to loopback; Chromium is told to
// accept it rather than made to trust a CA, which is what this costs to set up.
test('over https on a public name the page gets its camera and the call runs over wss', async (ctx) => {
  if (!ctx.server) throw new Error('needs a server binary the runner starts (not --url)');
  const dir = path.join(ctx.artifacts, 'tls');
  mkdirSync(dir, { recursive: true });
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const openssl = spawn('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-days', '2', '-subj', '/CN=tessera.test', '-addext', 'subjectAltName=DNS:tessera.test',
    '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const [code] = await once(openssl, 'exit');
  if (code !== 0) throw new Error(`openssl req exited with ${code}`);
  const server = await startServer(ctx.binary, [...ctx.serverArgs, '--cert', cert, '--key', key],
    path.join(ctx.artifacts, 'server-tls.log'));
  const pages = [];
  try {
    if (!server.url.startsWith('https://')) throw new Error(`the server listens on ${server.url}, not https`);
    const origin = `https://tessera.test:${new URL(server.url).port}`;
    const chromiumArgs = ['--ignore-certificate-errors', '--host-resolver-rules=MAP tessera.test 127.0.0.1'];
    for (const [i, name] of ['Tls-red', 'Tls-green'].entries()) {
      pages.push(await launchParticipant(ctx, name, { ...PARTICIPANT_MEDIA[i], chromiumArgs }));
    }
    const room = roomName('tls');
    for (const p of pages) await p.open(pageUrl({ url: origin }, room, p.name));
    for (const p of pages) {
      const page = await p.eval(() => ({ secure: window.isSecureContext, href: location.href }));
      if (!page.secure || !page.href.startsWith('https://tessera.test:')) {
        throw new Error(`${p.name}'s page is not a secure context: ${JSON.stringify(page)}`);
      }
    }
    await Promise.all(pages.map((p) => waitConnected(p)));
    await Promise.all(pages.map((p) => waitFramesRising(p)));
    // Each sends: the other's tile shows in the mix.
    await waitEachSeesTheOther(pages, room);
  } finally {
    await screenshots(ctx, pages, 'tls');
    for (const p of pages) await p.close();
    await server.stop();
  }
});


test('a relay-only Chromium page joins through coturn with the credential from joined', async (ctx) => {
  if (!ctx.server) throw new Error('needs a server binary the runner starts (not --url)');
  // coturn on loopback with a shared secret (allow-loopback-peers: loopback is
  // what coturn must deny in production, docs/security.md).
  // Ports below the kernel's ephemeral range (32768-60999), where no other
  // process's socket can hold them (tests/integration/test_turn.cpp).
  const port = 3478;
  const secret = randomBytes(12).toString('hex');
  const turnUrl = `turn:127.0.0.1:${port}?transport=udp`;
  const turnLog = path.join(ctx.artifacts, 'turnserver.log');
  rmSync(turnLog, { force: true });
  const turn = spawn('/usr/bin/turnserver', ['-n', '--listening-ip=127.0.0.1', `--listening-port=${port}`,
    '--relay-ip=127.0.0.1', '--min-port=20000', '--max-port=20040', '--realm=tessera.test', '--use-auth-secret',
    `--static-auth-secret=${secret}`, '--allow-loopback-peers', '--no-cli', '--no-tls', '--no-dtls',
    `--log-file=${turnLog}`, '--simple-log', '--verbose', `--pidfile=${turnLog}.pid`], { stdio: 'ignore' });
  const coturnLog = () => (existsSync(turnLog) ? readFileSync(turnLog, 'utf8') : '');
  let server = null;
  const pages = [];
  try {
    await waitFor('coturn to listen', () => coturnLog().includes(`UDP listener opened on: 127.0.0.1:${port}`), {
      timeout: seconds(30), describe: () => short(coturnLog().slice(-600)),
    });
    server = await startServer(ctx.binary, [...ctx.serverArgs, '--turn-secret', secret, '--turn-url', turnUrl],
      path.join(ctx.artifacts, 'server-turn.log'));
    const room = roomName('turn');
    for (const [i, name] of ['Relay-red', 'Direct-green'].entries()) {
      pages.push(await launchParticipant(ctx, name, PARTICIPANT_MEDIA[i]));
    }
    const [relayed, direct] = pages;
    await relayed.open(pageUrl({ url: server.url }, room, relayed.name, { relay: '1' }));
    await direct.open(pageUrl({ url: server.url }, room, direct.name));
    try {
      await Promise.all(pages.map((p) => waitConnected(p)));
      await Promise.all(pages.map((p) => waitFramesRising(p)));
      // Both ways through the relay: each sees the other's camera.
      await waitEachSeesTheOther(pages, room);
    } catch (err) {
      // The server's side of a stall: does it still send to the relayed page, on which tier?
      const detail = await fetch(new URL(`/api/rooms/${room}`, server.url)).then((r) => r.text(), (e) => e.message);
      err.message += `; GET /api/rooms/${room}: ${short(detail, 600)}`;
      throw err;
    }
    const types = [(await selectedPath(relayed))?.type, (await selectedPath(direct))?.type];
    if (types[0] !== 'relay') throw new Error(`the relay-only page's connection uses a ${types[0]} candidate`);
    if (types[1] === 'relay') throw new Error('the other page relays too: the test shows nothing');
    // coturn allocated for the page's own "<expiry>:<id>" user and opened the relay to the server.
    const id = await relayed.eval(() => window.tessera.self?.id);
    for (const what of ['ALLOCATE', 'CREATE_PERMISSION']) {
      const line = `:${id}>: incoming packet ${what} processed, success`;
      if (!coturnLog().includes(line)) throw new Error(`coturn's log (${turnLog}) has no "${line}"`);
    }
  } finally {
    await screenshots(ctx, pages, 'turn');
    for (const p of pages) await p.close();
    if (server) await server.stop();
    await stopChild(turn);
  }
});

test('Firefox ESR and Chromium in one room both receive the mix', async (ctx) => {
  const firefox = ctx.firefox;
  if (!firefox) throw new Error('firefox-esr not found (run tests/e2e/install.sh)');
  // Free the CPU the three-page room used.
  if (ctx.three) {
    for (const p of ctx.three.pages.slice(1)) await p.close();
  }
  const room = roomName('e2e-ff');
  const chrome = ctx.three?.pages[0] ?? await launchParticipant(ctx, 'Chromium', PARTICIPANT_MEDIA[3]);
  chrome.name = 'Chromium';
  ctx.reports ??= await startReportServer();
  await chrome.open(pageUrl(ctx, room, 'Chromium'));
  const label = `firefox-${room}`;
  const ff = await startFirefox(firefox, pageUrl(ctx, room, 'Firefox', { report: ctx.reports.urlFor(label) }),
    path.join(ctx.artifacts, `${ctx.testIndex}-firefox.log`));
  ctx.cleanups.push(() => ff.stop());
  try {
    await Promise.race([
      (async () => {
        await waitConnected(chrome);
        await waitForReport(ctx.reports, label, 'Firefox to connect and list Chromium', (r) =>
          r.state === 'connected' && r.participants?.some((p) => p.name === 'Chromium'));
        const first = await waitForReport(ctx.reports, label, 'Firefox to decode the mix',
          (r) => (r.stats?.inbound?.video?.framesDecoded ?? 0) > 0 && r.video?.width > 0);
        const f0 = first.stats.inbound.video.framesDecoded;
        await waitForReport(ctx.reports, label, `Firefox's framesDecoded to rise from ${f0}`,
          (r) => r.stats.inbound.video.framesDecoded >= f0 + 15);
        await waitFor('Chromium to list Firefox', () => chrome.eval(() => window.tessera.participants.some((p) => p.name === 'Firefox')), {
          describe: () => chrome.describe(),
        });
        await waitFramesRising(chrome);
      })(),
      ff.failed.then(() => {}, (err) => { throw new Error(`firefox-esr did not start: ${err.message}`); }),
    ]);
    const pageErrors = ctx.reports.latest(label)?.pageErrors ?? [];
    if (pageErrors.length) throw new Error(`page errors in Firefox: ${short(pageErrors, 1500)}`);
    try {
      const res = await fetch(new URL(`/api/rooms/${room}`, ctx.url));
      const body = await res.text();
      console.log(`# GET /api/rooms/${room}: ${res.status} ${short(body, 300)}`);
    } catch (err) {
      console.log(`# GET /api/rooms/${room} failed: ${err.message}`);
    }
  } finally {
    await screenshots(ctx, [chrome], 'firefox');
    const sdp = ctx.reports.latest(label)?.remoteSdp;
    if (sdp) writeFileSync(path.join(ctx.artifacts, `${ctx.testIndex}-firefox-answer.sdp`), sdp);
    const frame = ctx.reports.latest(label)?.frame;
    if (frame?.startsWith('data:image/png;base64,')) {
      writeFileSync(path.join(ctx.artifacts, `${ctx.testIndex}-firefox-mix.png`), Buffer.from(frame.split(',')[1], 'base64'));
    }
  }
});

// The grid's tile centres for three participants in join order (2x2, the
// last row centred; data/layouts/README.md), as fractions of the frame.
const GRID_OF_THREE = [[0.25, 0.25], [0.75, 0.25], [0.5, 0.75]];

/** The tessera-client of the build the runner started the server from. */
function tesseraClientBinary(ctx) {
  if (!ctx.binary) throw new Error('needs the build the runner started the server from (for tessera-client)');
  const binary = path.join(path.dirname(ctx.binary), '..', '..', 'tools', 'client', 'tessera-client');
  if (!existsSync(binary)) throw new Error(`${binary} not built`);
  return binary;
}

/** A tessera-client joining `room` as `name` with `media`'s colour and tone, and `extra` arguments. */
function startTesseraClient(ctx, room, name, media, extra = []) {
  const ws = new URL('/ws', ctx.url);
  ws.protocol = ws.protocol === 'https:' ? 'wss:' : 'ws:';
  return new TesseraClient(tesseraClientBinary(ctx), ['--server', ws.toString(), '--room', room, '--name', name,
    '--ice-address', '127.0.0.1', '--color', `0x${media.argb.slice(4)}`, '--tone', String(media.freq),
    '--connect-timeout', String(seconds(90) / 1000), ...extra],
  path.join(ctx.artifacts, `${ctx.testIndex}-${slug(name)}.log`));
}

/** Colour of each point (fractions of the frame) of an image: a data: URL, decoded in `page`. */
function pixelsOfImage(page, url, points) {
  return page.eval(async ({ url, points }) => {
    const img = new Image();
    img.src = url;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext('2d', { willReadFrequently: true });
    g.drawImage(img, 0, 0);
    return points.map(([fx, fy]) => Array.from(g.getImageData(Math.floor(fx * c.width), Math.floor(fy * c.height), 1, 1).data.slice(0, 3)));
  }, { url, points });
}

/** Colour of each point (fractions of the frame) of the page's mixed video (`<video id>`); null without video. */
function pixelsOfMix(p, points, id = 'remote-video') {
  return p.eval(({ points, id }) => {
    const v = document.getElementById(id);
    if (!v.videoWidth) return null;
    const c = document.createElement('canvas');
    c.width = 160; c.height = 90;
    const g = c.getContext('2d', { willReadFrequently: true });
    g.drawImage(v, 0, 0, c.width, c.height);
    return points.map(([fx, fy]) => Array.from(g.getImageData(Math.floor(fx * c.width), Math.floor(fy * c.height), 1, 1).data.slice(0, 3)));
  }, { points, id });
}

/** Colour of each point of a tessera-client report's thumbnail (docs/client.md); null without one. */
function pixelsOfThumb(report, points) {
  const t = report?.thumb;
  if (!t) return null;
  return points.map(([fx, fy]) => {
    const at = (Math.min(t.h - 1, Math.floor(fy * t.h)) * t.w + Math.min(t.w - 1, Math.floor(fx * t.w))) * 6;
    return [0, 1, 2].map((k) => parseInt(t.rgb.slice(at + 2 * k, at + 2 * k + 2), 16));
  });
}

const nearRgb = (a, b, tolerance = 60) => a.every((x, k) => Math.abs(x - b[k]) <= tolerance);

/** The video codec an answer SDP chose (its m=video line's first payload), lower case; null without one. */
function answeredVideoCodec(sdp) {
  const section = (sdp ?? '').split(/\r?\nm=/).find((x) => x.startsWith('video')) ?? '';
  const pt = section.split(/\r?\n/)[0].split(' ')[3];
  const name = new RegExp(`a=rtpmap:${pt} ([^/]+)/`).exec(section)?.[1];
  return name ? name.toLowerCase() : null;
}

test('Chromium, Firefox ESR and an H.264-only tessera-client in one room all see each other', async (ctx) => {
  const firefox = ctx.firefox;
  if (!firefox) throw new Error('firefox-esr not found (run tests/e2e/install.sh)');
  tesseraClientBinary(ctx); // fails now, not after the browsers started
  // Free the CPU the earlier rooms used: this test runs three media stacks.
  for (const p of ctx.participants) await p.close();
  const room = roomName('e2e-h264');
  // Join order is grid order: Chromium (red), Firefox (its fake camera's
  // cycling colour), the H.264 client (blue).
  const chromeMedia = PARTICIPANT_MEDIA[0];
  const clientMedia = PARTICIPANT_MEDIA[2];
  const chrome = await launchParticipant(ctx, 'Chromium-vp8', chromeMedia);
  ctx.reports ??= await startReportServer();
  const label = `firefox-${room}`;
  let ff = null;
  let client = null;
  let seen = {};
  try {
    await chrome.open(pageUrl(ctx, room, chrome.name));
    await waitConnected(chrome);
    ff = await startFirefox(firefox, pageUrl(ctx, room, 'Firefox', { report: ctx.reports.urlFor(label) }),
      path.join(ctx.artifacts, `${ctx.testIndex}-firefox.log`));
    await Promise.race([
      waitForReport(ctx.reports, label, 'Firefox to connect and list Chromium', (r) =>
        r.state === 'connected' && r.participants?.some((p) => p.name === chrome.name)),
      ff.failed.then(() => {}, (err) => { throw new Error(`firefox-esr did not start: ${err.message}`); }),
    ]);
    client = startTesseraClient(ctx, room, 'H264-client', clientMedia, ['--video-codec', 'h264']);
    await client.waitEvent('connected', 'the H.264 client to connect');
    const track = await client.waitEvent('track', 'the H.264 client to receive video', (e) => e.kind === 'video');
    if (track.encoding !== 'H264') throw new Error(`the H.264-only client receives ${track.encoding}`);

    // Each one's mix: Chromium's red and the client's blue where the grid puts
    // them, and Firefox's tile drawn (its camera is no fixed colour: not the
    // black background).
    const expected = (px) => px && nearRgb(px[0], chromeMedia.rgb) && Math.max(...px[1]) >= 60 && nearRgb(px[2], clientMedia.rgb);
    const describe = (who) => () => `tile centres (Chromium, Firefox, H.264 client): ${JSON.stringify(seen[who])}`;
    await Promise.all([
      waitFor(`${chrome.name}'s mix to show all three tiles`, async () => {
        seen.chromium = await pixelsOfMix(chrome, GRID_OF_THREE);
        return expected(seen.chromium);
      }, { timeout: seconds(90), describe: describe('chromium') }),
      waitFor('Firefox\'s mix to show all three tiles', async () => {
        const r = ctx.reports.latest(label);
        if (!r?.frame?.startsWith('data:image/png;base64,') || Date.now() - r.receivedAt > seconds(10)) return false;
        seen.firefox = await pixelsOfImage(chrome, r.frame, GRID_OF_THREE);
        return expected(seen.firefox);
      }, { timeout: seconds(90), describe: describe('firefox') }),
      waitFor('the H.264 client to decode all three tiles', async () => {
        seen.client = pixelsOfThumb(await client.report(), GRID_OF_THREE);
        return expected(seen.client);
      }, { timeout: seconds(90), describe: describe('client') }),
    ]);

    // What each one negotiated: the API, each page's answer and its quality panel agree.
    const chromeCodec = answeredVideoCodec(await chrome.eval(() => window.tessera.pc?.remoteDescription?.sdp));
    const ffCodec = answeredVideoCodec(ctx.reports.latest(label)?.remoteSdp);
    const details = await (await fetch(new URL(`/api/rooms/${room}`, ctx.url))).json();
    console.log(`# GET /api/rooms/${room}: ${short(details.participants?.map((p) => `${p.name}: ${p.sendCodec}/${p.receiveCodec}`), 300)}`);
    for (const [name, codec] of [[chrome.name, chromeCodec], ['Firefox', ffCodec], ['H264-client', 'h264']]) {
      const p = details.participants?.find((x) => x.name === name);
      if (!codec || p?.sendCodec !== codec || p?.receiveCodec !== codec) {
        throw new Error(`${name} negotiated ${codec}; the API says ${short(p)}`);
      }
    }
    if (chromeCodec === 'h264' || ffCodec === 'h264') {
      throw new Error(`a browser negotiated H.264 (Chromium ${chromeCodec}, Firefox ${ffCodec}): the room mixes one codec only`);
    }
    const panelShows = (codec) => (q) => (q?.Codecs ?? '').split(', ')[0] === codec.toUpperCase();
    await waitFor(`${chrome.name}'s quality panel to show ${chromeCodec}`, () => chrome.eval(() =>
      Object.fromEntries([...document.querySelectorAll('#quality dt')].map((dt) => [dt.textContent, dt.nextElementSibling?.textContent])))
      .then(panelShows(chromeCodec)), { describe: () => chrome.describe() });
    await waitForReport(ctx.reports, label, `Firefox's quality panel to show ${ffCodec}`, (r) => panelShows(ffCodec)(r.quality));
    const pageErrors = ctx.reports.latest(label)?.pageErrors ?? [];
    if (pageErrors.length) throw new Error(`page errors in Firefox: ${short(pageErrors, 1500)}`);
  } finally {
    console.log(`# tile centres seen: ${JSON.stringify(seen)}`);
    await screenshots(ctx, [chrome], 'h264');
    const frame = ctx.reports.latest(label)?.frame;
    if (frame?.startsWith('data:image/png;base64,')) {
      writeFileSync(path.join(ctx.artifacts, `${ctx.testIndex}-firefox-mix.png`), Buffer.from(frame.split(',')[1], 'base64'));
    }
    await client?.stop();
    await ff?.stop();
    await chrome.close();
  }
});

test('a page that joins with maxBitrate 64000 says "Audio only", decodes no video and hears the others', async (ctx) => {
  const room = roomName('e2e-audio-64k');
  const [red, green] = [PARTICIPANT_MEDIA[0], PARTICIPANT_MEDIA[1]];
  let clients = [];
  let page = null;
  let heard = null;
  try {
    clients = await twoClientsIn(ctx, room);
    page = await launchParticipant(ctx, 'Slow-link', PARTICIPANT_MEDIA[2]);
    // The bandwidth a user on a 64 kbit/s link declares (join's maxBitrate).
    await page.open(pageUrl(ctx, room, page.name, { maxBitrate: '64000' }));
    await waitConnected(page);
    const shown = () => page.eval(() => window.tessera.audioOnlyShown);
    await waitFor('the page to show "Audio only" for its bandwidth limit', async () => {
      const s = await shown();
      return s.label === 'Audio only' && /bandwidth limit/.test(s.stage) && (await page.eval(() => window.tessera.audioOnly)) === 'maxBitrate';
    }, { timeout: seconds(30), describe: async () => `shown ${short(await shown())}; ${await page.describe()}` });
    const details = await (await fetch(new URL(`/api/rooms/${room}`, ctx.url))).json();
    const tier = details.participants?.find((p) => p.name === page.name)?.tier;
    if (tier !== 'audio') throw new Error(`GET /api/rooms says the page receives tier ${tier}, not "audio"`);
    await waitFor('the page to hear both clients', async () => {
      heard = await hearTones(page, [red.freq, green.freq]);
      return heard && heard[red.freq] >= 25 && heard[green.freq] >= 25;
    }, { timeout: seconds(45), interval: 500, describe: () => `dB above the noise floor: ${JSON.stringify(heard)}` });
    // Audio only from its join on: not one video frame reached it.
    const frames = await framesDecoded(page);
    if (frames !== 0) throw new Error(`the page decoded ${frames} video frames on the audio-only tier`);
  } finally {
    if (page) await screenshots(ctx, [page], 'audio-only-64k');
    for (const c of clients) await c.stop();
    await page?.close();
  }
});

/** Runs `cmd` (ip, tc, gst-launch-1.0) to its end; throws with its output if it fails. */
async function run(cmd, args) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  child.stderr.on('data', (c) => { out += c; });
  const [code] = await once(child, 'close');
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${out.slice(-2000)}`);
}

/**
 * Camera-like media for a tessera-client's --send-file (a moving ball under noise, VP8 640x360@30 at 1 Mbit/s,
 * and an Opus tone of `freq` Hz), as the integration tests' bottleneck senders: a still colour would leave the
 * composite far under its bit rate, and a link that carries what is sent shows no limit.
 */
async function cameraFile(ctx, index, freq) {
  const file = path.join(ctx.artifacts, `camera-${index}.mkv`);
  if (existsSync(file)) return file;
  const colour = String((0xff000000 | (0x00ff0000 >>> (8 * index))) >>> 0);
  await run('gst-launch-1.0', ['-q', 'compositor', 'name=c', 'background=black', 'sink_1::alpha=0.15', '!',
    'video/x-raw,format=I420,width=640,height=360,framerate=30/1', '!', 'vp8enc', 'deadline=1', 'cpu-used=8',
    'threads=1', 'end-usage=cbr', 'target-bitrate=1000000', 'keyframe-max-dist=30', 'lag-in-frames=0', '!', 'queue',
    '!', 'mux.', 'videotestsrc', 'num-buffers=150', 'pattern=ball', `background-color=${colour}`, '!',
    'video/x-raw,width=640,height=360,framerate=30/1', '!', 'c.sink_0', 'videotestsrc', 'num-buffers=150',
    'pattern=snow', '!', 'video/x-raw,width=640,height=360,framerate=30/1', '!', 'c.sink_1', 'audiotestsrc',
    'num-buffers=250', 'samplesperbuffer=960', 'wave=sine', `freq=${freq}`, 'volume=0.1', '!',
    'audio/x-raw,rate=48000,channels=1', '!', 'opusenc', 'frame-size=20', '!', 'queue', '!', 'mux.', 'matroskamux',
    'name=mux', '!', 'filesink', `location=${file}`]);
  return file;
}

// The link of the bottleneck test (TESTING.md, "A real bottleneck"): a veth pair, the server's end here and
// shaped, the page's in a network namespace of its own (the browser's, made by a wrapper around Chromium).
const NARROW = { server: '10.99.0.1', page: '10.99.0.2' };

test('a page whose link is cut to 64 kbit/s says "Audio only" (its connection), keeps hearing, and gets video back', async (ctx) => {
  if (!ctx.binary) throw new Error('needs a server binary the runner starts (not --url)');
  const [red, green] = [PARTICIPANT_MEDIA[0], PARTICIPANT_MEDIA[1]];
  const freqs = [300, 400];
  const files = [await cameraFile(ctx, 0, freqs[0]), await cameraFile(ctx, 1, freqs[1])];
  await run('sh', ['-c', 'ip link del va 2>/dev/null; true']);
  await run('ip', ['link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb']);
  let server = null;
  let page = null;
  const clients = [];
  let heard = null;
  try {
    await run('ip', ['addr', 'add', `${NARROW.server}/24`, 'dev', 'va']);
    await run('ip', ['link', 'set', 'va', 'up']);
    // The settings of the integration test's 64 kbit/s link: a small composite, and 24 kbit/s Opus, which fits.
    server = await startServer(ctx.binary, [...ctx.serverArgs, '--host', '0.0.0.0', '--ice-address', NARROW.server,
      '--video-width', '640', '--video-height', '360', '--video-tile-width', '320', '--video-tile-height', '180',
      '--audio-bitrate', '24000'], path.join(ctx.artifacts, 'server-narrow.log'));
    const origin = `http://${NARROW.server}:${new URL(server.url).port}`;
    const room = roomName('e2e-narrow');
    for (const [i, [name, media]] of [['red', red], ['green', green]].entries()) {
      const c = startTesseraClient({ ...ctx, url: origin }, room, name, media, ['--send-file', files[i]]);
      clients.push(c);
      await c.waitEvent('connected', `${name} to connect`);
    }

    // Chromium in a network namespace of its own, which gets `vb` once it exists.
    const pidFile = path.join(ctx.artifacts, 'narrow-chromium.pid');
    rmSync(pidFile, { force: true });
    const wrapper = path.join(ctx.artifacts, 'chromium-narrow.sh');
    writeFileSync(wrapper, `#!/bin/sh
exec unshare --net sh -c 'echo $$ > ${pidFile}; i=0; until ip link show vb >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 1200 ] && exit 97; sleep 0.05; done; ip link set lo up && ip addr add ${NARROW.page}/24 dev vb && ip link set vb up && exec ${ctx.chromium} "$@"' sh "$@"
`, { mode: 0o755 });
    const narrow = new ChromiumParticipant('Narrow', { ...PARTICIPANT_MEDIA[2], ...(await makeMediaFiles(ctx.mediaDir, PARTICIPANT_MEDIA[2])),
      chromiumArgs: [`--unsafely-treat-insecure-origin-as-secure=${origin}`] },
    { executablePath: wrapper, artifacts: ctx.artifacts, problems: ctx.pageProblems });
    ctx.participants.push(narrow);
    const launched = narrow.launch();
    launched.catch(() => {}); // awaited below, once the namespace has its link
    const pid = await waitFor('the wrapped Chromium to have its namespace', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim(),
      { timeout: seconds(30), interval: 50 });
    await run('ip', ['link', 'set', 'vb', 'netns', pid]);
    page = await launched;
    await page.open(pageUrl({ url: origin }, room, page.name));
    await waitConnected(page);
    await waitFramesRising(page);
    const shown = () => page.eval(() => window.tessera.audioOnlyShown);
    const hears = async () => {
      heard = await hearTones(page, freqs);
      return heard && heard[freqs[0]] >= 25 && heard[freqs[1]] >= 25;
    };
    await waitFor('the page to hear both senders', hears, { timeout: seconds(45), interval: 500,
      describe: () => `dB above the noise floor: ${JSON.stringify(heard)}` });
    if ((await shown()).label !== null) throw new Error(`"${(await shown()).label}" before any limit`);

    // The limit: audio only, because of its connection, said so; the senders still heard.
    await run('tc', ['qdisc', 'add', 'dev', 'va', 'root', 'tbf', 'rate', '64kbit', 'burst', '16kbit', 'latency', '200ms']);
    await waitFor('the page to show "Audio only" for its connection', async () => {
      const s = await shown();
      return s.label === 'Audio only' && /connection is too slow/.test(s.stage) && (await page.eval(() => window.tessera.audioOnly)) === 'link';
    }, { timeout: seconds(30), describe: async () => `shown ${short(await shown())}; ${await page.describe()}` });
    const details = await (await fetch(new URL(`/api/rooms/${room}`, origin))).json();
    const tier = details.participants?.find((p) => p.name === page.name)?.tier;
    if (tier !== 'audio') throw new Error(`GET /api/rooms says the page receives tier ${tier}, not "audio"`);
    await waitFor('the page to hear both senders on 64 kbit/s', hears, { timeout: seconds(45), interval: 500,
      describe: () => `dB above the noise floor: ${JSON.stringify(heard)}` });

    // The link recovers (its rate far above anything sent, its queue drained, as TESTING.md's lift): video again.
    await run('tc', ['qdisc', 'change', 'dev', 'va', 'root', 'tbf', 'rate', '1gbit', 'burst', '1mbit', 'latency', '200ms']);
    await waitFor('the page to drop "Audio only" once its link recovers', async () => (await shown()).label === null,
      { timeout: seconds(60), describe: async () => `shown ${short(await shown())}; ${await page.describe()}` });
    await waitFramesRising(page);
  } finally {
    if (page) await screenshots(ctx, [page], 'audio-only-narrow');
    for (const c of clients) await c.stop();
    await page?.close();
    await server?.stop();
    await run('sh', ['-c', 'ip link del va 2>/dev/null; true']);
  }
});

/** Two tessera-clients, red (440 Hz) and green (660 Hz), connected in `room`, measuring the tones `detect` (Hz). */
async function twoClientsIn(ctx, room, detect = []) {
  const clients = [];
  try {
    for (const [name, media] of [['red', PARTICIPANT_MEDIA[0]], ['green', PARTICIPANT_MEDIA[1]]]) {
      const c = startTesseraClient(ctx, room, name, media, detect.length ? ['--detect', detect.join(',')] : []);
      clients.push(c);
      await c.waitEvent('connected', `${name} to connect`);
    }
  } catch (err) {
    for (const c of clients) await c.stop();
    throw err;
  }
  return clients;
}

test('in the recent layout the page lists everyone and marks who is not on screen, live', async (ctx) => {
  // The shipped recent layout shows the speaker and 8 others: with the page
  // and 9 tessera-clients, one of ten is left out. Nobody speaks (the page's
  // microphone is off, the clients are silent): join order fills the tiles,
  // so the last client is the one left out. It speaks: it takes the speaker
  // tile, and the last of the others who never spoke leaves the picture.
  tesseraClientBinary(ctx);
  const room = roomName('e2e-recent');
  const page = await launchParticipant(ctx, 'Viewer', PARTICIPANT_MEDIA[0]);
  const clients = [];
  const ids = [];
  const listed = () => page.eval(() => [...document.querySelectorAll('#participants li')].map((li) => ({
    id: li.dataset.id, text: li.textContent, off: li.classList.contains('offscreen'),
  })));
  let last = null;
  const waitMarked = (what, offIds) => waitFor(what, async () => {
    last = await listed();
    return last.length === 10 && last.every((li) => li.off === offIds.includes(li.id)
      && li.text.includes('not on screen') === offIds.includes(li.id));
  }, { timeout: seconds(90), describe: async () => `participant list ${JSON.stringify(last)}; ${await page.describe()}` });
  try {
    await page.open(pageUrl(ctx, room, page.name));
    await waitConnected(page);
    await page.eval(() => window.tessera.session.setMicEnabled(false));
    const res = await fetch(new URL(`/api/rooms/${room}/layout`, ctx.url), {
      method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ layout: 'recent' }),
    });
    if (res.status !== 200) throw new Error(`PUT layout: ${res.status} ${await res.text()}`);
    // Small, cheap senders: ten participants on two cores. Joined one after the other (join order is tile order).
    for (let i = 0; i < 9; i++) {
      const c = startTesseraClient(ctx, room, `client-${i + 1}`, PARTICIPANT_MEDIA[1 + (i % 3)],
        ['--volume', '0', '--width', '160', '--height', '90', '--fps', '10', '--no-decode']);
      clients.push(c);
      ids.push((await c.waitEvent('joined', `client-${i + 1} to join`)).id);
    }
    await Promise.all(clients.map((c, i) => c.waitEvent('connected', `client-${i + 1} to connect`)));
    await waitMarked('the page to mark the last client, and only it, "not on screen"', [ids[8]]);
    // The hidden one speaks: it is shown, and client-8 (the last who never spoke) is not.
    clients[8].command('tone 0.3');
    await waitMarked('the mark to move from client-9 to client-8', [ids[7]]);
  } finally {
    console.log(`# participant list: ${short(last, 1200)}`);
    await screenshots(ctx, [page], 'recent');
    for (const c of clients) await c.stop();
    await page.close();
  }
});

test('a Chromium page publishes over WHIP with trickle ICE: the room sees its colour and hears its tone until DELETE', async (ctx) => {
  const room = roomName('e2e-whip');
  // Join order is grid order: the two clients, then the page (blue, 990 Hz).
  const [red, green, page] = [PARTICIPANT_MEDIA[0], PARTICIPANT_MEDIA[1], PARTICIPANT_MEDIA[2]];
  let clients = [];
  let publisher = null;
  let seen = {};
  try {
    clients = await twoClientsIn(ctx, room, [red.freq, green.freq, page.freq]);
    publisher = await launchParticipant(ctx, 'WHIP-page', page);
    // A page of the server's own origin, with no Tessera code on it: what
    // runs below is all a WHIP publisher does (RFC 9725), trickling its
    // candidates by PATCH as Chromium finds them.
    await publisher.open(new URL('/healthz', ctx.url).toString());
    const answer = await publisher.eval(async (room) => {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
      const pc = new RTCPeerConnection();
      for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly' });
      const patches = [];
      const w = { pc, patches, candidates: [] };
      window.__whip = w;
      await pc.setLocalDescription(await pc.createOffer());
      const res = await fetch(`/whip/${room}?name=WHIP-page`, {
        method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp,
      });
      const sdp = await res.text();
      if (res.status !== 201) return { status: res.status, body: sdp };
      w.location = new URL(res.headers.get('Location'), location.href).toString();
      const etag = res.headers.get('ETag');
      await pc.setRemoteDescription({ type: 'answer', sdp });
      // What Chromium gathered so far and what it finds later, one PATCH each.
      const ufrag = pc.localDescription.sdp.match(/a=ice-ufrag:(\S+)/)[1];
      const pwd = pc.localDescription.sdp.match(/a=ice-pwd:(\S+)/)[1];
      const patch = (lines) => fetch(w.location, {
        method: 'PATCH', headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': etag ?? '*' },
        body: [`a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`, 'm=audio 9 RTP/AVP 0', 'a=mid:0', ...lines, ''].join('\r\n'),
      }).then((r) => patches.push(r.status));
      const send = (c) => {
        if (c?.candidate) { w.candidates.push(c.candidate); patch([`a=${c.candidate}`]); } else if (!c) patch(['a=end-of-candidates']);
      };
      pc.onicecandidate = (e) => send(e.candidate);
      for (const line of pc.localDescription.sdp.split('\r\n')) if (line.startsWith('a=candidate:')) send({ candidate: line.slice(2) });
      if (pc.iceGatheringState === 'complete') send(null);
      return { status: res.status, candidatesInAnswer: (sdp.match(/a=candidate:/g) ?? []).length,
        links: res.headers.get('Link'), location: w.location };
    }, room);
    console.log(`# POST /whip/${room}: ${short(answer, 300)}`);
    if (answer.status !== 201) throw new Error(`POST /whip answered ${answer.status}: ${short(answer.body, 300)}`);
    await waitFor('the WHIP page to connect', () => publisher.eval(() => window.__whip.pc.connectionState === 'connected'), {
      timeout: seconds(90),
      describe: () => publisher.eval(() => `connection ${window.__whip.pc.connectionState}, ICE ${window.__whip.pc.iceConnectionState}, `
        + `candidates sent ${window.__whip.candidates.length}, PATCH statuses ${JSON.stringify(window.__whip.patches)}`),
    });
    const patches = await publisher.eval(() => window.__whip.patches);
    if (!patches.length || patches.some((s) => s !== 204)) throw new Error(`PATCH answered ${JSON.stringify(patches)}, not all 204`);

    // Both clients: the three tiles in join order, the page's tone and the other client's.
    await Promise.all(clients.map((c, i) => {
      const other = i === 0 ? green : red;
      const who = i === 0 ? 'red' : 'green';
      return waitFor(`${who}'s mix to show the WHIP page and to play its tone`, async () => {
        const r = await c.report();
        seen[who] = { tiles: pixelsOfThumb(r, GRID_OF_THREE), tones: r?.tones };
        const tiles = seen[who].tiles;
        return tiles && [red, green, page].every((m, k) => nearRgb(tiles[k], m.rgb))
          && r.tones?.[page.freq] > -40 && r.tones?.[other.freq] > -40;
      }, { timeout: seconds(90), describe: () => `seen: ${JSON.stringify(seen[who])}` });
    }));
    const listed = async () => (await (await fetch(new URL(`/api/rooms/${room}`, ctx.url))).json()).participants?.map((p) => p.name) ?? [];
    const names = await listed();
    if (!names.includes('WHIP-page')) throw new Error(`GET /api/rooms/${room} lists ${JSON.stringify(names)}, not the WHIP page`);

    const status = await publisher.eval(async () => (await fetch(window.__whip.location, { method: 'DELETE' })).status);
    if (status !== 200) throw new Error(`DELETE ${answer.location} answered ${status}`);
    await waitFor('the room to list the WHIP page no more', async () => !(await listed()).includes('WHIP-page'), { timeout: seconds(30) });
    await Promise.all(clients.map((c, i) => waitFor(`${i ? 'green' : 'red'} to stop hearing the WHIP page`, async () => {
      const r = await c.report();
      return r?.tones?.[page.freq] < -45 && r.tones?.[(i ? red : green).freq] > -40;
    }, { timeout: seconds(30) })));
  } finally {
    console.log(`# seen by the clients: ${short(seen, 400)}`);
    if (publisher) await screenshots(ctx, [publisher], 'whip');
    for (const c of clients) await c.stop();
    await publisher?.close();
  }
});

test('a Chromium page watches over WHEP: it sees both tiles and receives the sound, takes no tile, is listed as a viewer until DELETE', async (ctx) => {
  const room = roomName('e2e-whep');
  const [red, green] = [PARTICIPANT_MEDIA[0], PARTICIPANT_MEDIA[1]];
  const GRID_OF_TWO = [[0.25, 0.5], [0.75, 0.5]];
  let clients = [];
  let viewer = null;
  let seen = {};
  try {
    clients = await twoClientsIn(ctx, room, [red.freq, green.freq]);
    viewer = await launchParticipant(ctx, 'WHEP-page', PARTICIPANT_MEDIA[2]);
    // A page of the server's own origin with no Tessera code on it: what runs
    // below is all a WHEP player does (receive-only transceivers, one POST;
    // the answer carries every server candidate, so this one trickles none).
    await viewer.open(new URL('/healthz', ctx.url).toString());
    const answer = await viewer.eval(async (room) => {
      const pc = new RTCPeerConnection();
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.addTransceiver('video', { direction: 'recvonly' });
      const video = document.createElement('video');
      video.id = 'whep-video';
      video.muted = true;
      video.autoplay = true;
      document.body.append(video);
      const stream = new MediaStream();
      pc.ontrack = (e) => { stream.addTrack(e.track); video.srcObject = stream; };
      window.__whep = { pc };
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === 'complete') resolve();
        pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
      });
      const res = await fetch(`/whep/${room}?name=WHEP-page`, {
        method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp,
      });
      const sdp = await res.text();
      if (res.status !== 201) return { status: res.status, body: sdp };
      window.__whep.location = new URL(res.headers.get('Location'), location.href).toString();
      await pc.setRemoteDescription({ type: 'answer', sdp });
      return { status: res.status, location: window.__whep.location };
    }, room);
    console.log(`# POST /whep/${room}: ${short(answer, 300)}`);
    if (answer.status !== 201) throw new Error(`POST /whep answered ${answer.status}: ${short(answer.body, 300)}`);
    await waitFor('the WHEP page to connect', () => viewer.eval(() => window.__whep.pc.connectionState === 'connected'), {
      timeout: seconds(90), describe: () => viewer.eval(() => `connection ${window.__whep.pc.connectionState}`),
    });
    // The page: both tiles, and the mix's audio (packets: a muted page
    // plays nothing out, so Chromium measures no audio energy).
    await waitFor('the WHEP page to show both tiles and receive audio', async () => {
      seen.page = await pixelsOfMix(viewer, GRID_OF_TWO, 'whep-video');
      seen.audioPackets = await viewer.eval(async () => {
        let packets = 0;
        (await window.__whep.pc.getStats()).forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'audio') packets = s.packetsReceived ?? 0;
        });
        return packets;
      });
      return seen.page && nearRgb(seen.page[0], red.rgb) && nearRgb(seen.page[1], green.rgb) && seen.audioPackets > 50;
    }, { timeout: seconds(90), describe: () => `seen: ${JSON.stringify(seen)}` });
    // The members: still two tiles, each other's tone, and no viewer among their peers.
    await Promise.all(clients.map((c, i) => {
      const who = i === 0 ? 'red' : 'green';
      const other = i === 0 ? green : red;
      return waitFor(`${who} to keep its call of two`, async () => {
        const r = await c.report();
        seen[who] = { tiles: pixelsOfThumb(r, GRID_OF_TWO), peers: r?.participants?.length };
        return seen[who].tiles && nearRgb(seen[who].tiles[0], red.rgb) && nearRgb(seen[who].tiles[1], green.rgb)
          && r.tones?.[other.freq] > -40 && r.participants?.length === 1;
      }, { timeout: seconds(60), describe: () => `seen: ${JSON.stringify(seen[who])}` });
    }));
    const detail = async () => (await fetch(new URL(`/api/rooms/${room}`, ctx.url))).json();
    const d = await detail();
    if (d.participants?.length !== 2 || d.viewers?.[0]?.name !== 'WHEP-page') {
      throw new Error(`GET /api/rooms/${room}: ${short(d, 400)}, not 2 participants and the page as a viewer`);
    }
    const status = await viewer.eval(async () => (await fetch(window.__whep.location, { method: 'DELETE' })).status);
    if (status !== 200) throw new Error(`DELETE ${answer.location} answered ${status}`);
    await waitFor('the room to list no viewer', async () => (await detail()).viewers?.length === 0, { timeout: seconds(30) });
  } finally {
    console.log(`# seen: ${short(seen, 400)}`);
    if (viewer) await screenshots(ctx, [viewer], 'whep');
    for (const c of clients) await c.stop();
    await viewer?.close();
  }
});


/** Waits until the watch page plays (`mode`: 'whep' or 'hls') and its picture shows red and green. */
async function waitWatching(p, mode) {
  const state = () => p.eval(() => ({ state: window.tesseraWatch.state, mode: window.tesseraWatch.mode, error: window.tesseraWatch.error,
    status: document.getElementById('watch-status').textContent }));
  await waitFor(`the watch page to play by ${mode}`, async () => {
    const s = await state();
    if (s.state === 'failed') throw new Error(`the watch page failed: ${short(s, 400)}`);
    return s.state === 'playing' && s.mode === mode;
  }, { timeout: seconds(90), describe: async () => short(await state(), 400) });
  let last = null;
  await waitFor('the watch page to show red and green', async () => {
    last = await colourShares(p);
    return last && last.red >= 2 && last.green >= 2;
  }, { timeout: seconds(60), describe: () => `colour shares in % ${JSON.stringify(last)}` });
}

test('the watch page plays a room over WHEP as a viewer: no tile, not a member, gone when closed', async (ctx) => {
  const room = roomName('e2e-watch');
  const clients = await twoClientsIn(ctx, room);
  const viewer = await launchParticipant(ctx, 'Watcher', PARTICIPANT_MEDIA[3]);
  const details = async () => (await fetch(new URL(`/api/rooms/${room}`, ctx.url))).json();
  try {
    await viewer.open(new URL(`/watch?room=${room}`, ctx.url).toString());
    await waitWatching(viewer, 'whep');
    let heard = null;
    await waitFor('the watch page to play both tones', async () => {
      heard = await hearTones(viewer, [440, 660]);
      return heard && heard[440] >= 25 && heard[660] >= 25;
    }, { timeout: seconds(45), describe: () => `dB above the noise floor: ${JSON.stringify(heard)}` });
    const d = await details();
    console.log(`# GET /api/rooms/${room}: participants ${short(d.participants?.map((x) => x.name))}, viewers ${short(d.viewers)}`);
    if (d.participants?.length !== 2 || d.viewers?.length !== 1) throw new Error(`the room lists ${short(d, 600)}: not 2 participants and 1 viewer`);
    // Closing the page ends the viewer at once (its DELETE), not at an ICE timeout.
    await viewer.page.close({ runBeforeUnload: true });
    await waitFor('the viewer to be gone', async () => (await details()).viewers?.length === 0, { timeout: seconds(10) });
  } finally {
    await viewer.close();
    for (const c of clients) await c.stop();
  }
});

test('the watch page falls back to HLS where WebRTC is missing: hls.js plays the room live', async (ctx) => {
  const room = roomName('e2e-hls');
  const clients = await twoClientsIn(ctx, room);
  const viewer = await launchParticipant(ctx, 'HLS-watcher', PARTICIPANT_MEDIA[3]);
  const live = (method, body) => fetch(new URL(`/api/rooms/${room}/live`, ctx.url), {
    method, headers: { 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}),
  });
  try {
    const started = await live('POST', { hls: true });
    if (started.status !== 201) throw new Error(`POST live: ${started.status} ${await started.text()}`);
    // A browser without WebRTC: the page goes straight to HLS, which Chromium plays only through hls.js.
    await viewer.open(new URL(`/watch?room=${room}`, ctx.url).toString(),
      { initScript: () => { delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection; } });
    await waitWatching(viewer, 'hls');
    const usedHlsJs = await viewer.eval(() => Boolean(window.tesseraWatch.hls && window.Hls));
    if (!usedHlsJs) throw new Error('the page played HLS without hls.js, which Chromium cannot');
    const details = await (await fetch(new URL(`/api/rooms/${room}`, ctx.url))).json();
    if (details.viewers?.length) throw new Error(`an HLS watcher is listed as a WHEP viewer: ${short(details.viewers)}`);
  } finally {
    await screenshots(ctx, [viewer], 'watch-hls');
    await live('DELETE').catch(() => {});
    await viewer.close();
    for (const c of clients) await c.stop();
  }
});

test('pages rejoin by themselves after the server restarts', async (ctx) => {
  if (!ctx.server) throw new Error('needs a server the runner started (not --url)');
  let pages = ctx.participants.filter((p) => p.page && !p.page.isClosed() && p.browser.isConnected());
  if (!pages.length) {
    const p = await launchParticipant(ctx, 'Dana', PARTICIPANT_MEDIA[3]);
    await p.open(pageUrl(ctx, roomName('e2e-restart'), p.name));
    pages = [p];
  }
  await Promise.all(pages.map((p) => waitConnected(p)));
  const ids = await Promise.all(pages.map((p) => p.eval(() => window.tessera.self?.id)));
  const port = new URL(ctx.url).port;
  await assertServerAlive(ctx);
  await ctx.server.stop(); // throws unless it exits 0
  await Promise.all(pages.map((p) => waitFor(`${p.name} to notice the server is gone`,
    () => p.eval(() => window.tessera.state === 'reconnecting'), { timeout: seconds(30), describe: () => p.describe() })));
  ctx.server = await startServer(ctx.binary, ctx.serverArgs, path.join(ctx.artifacts, 'server.log'), { port, append: true });
  try {
    await Promise.all(pages.map(async (p, i) => {
      await waitFor(`${p.name} to rejoin with a new id`, () => p.eval((old) => {
        const t = window.tessera;
        return t.state === 'connected' && t.self && t.self.id !== old;
      }, ids[i]), { timeout: seconds(90), describe: () => p.describe() });
      await waitFramesRising(p);
      const reloaded = await p.eval(() => performance.getEntriesByType('navigation')[0]?.type === 'reload');
      if (reloaded) throw new Error(`${p.name} reloaded the page`);
    }));
  } finally {
    await screenshots(ctx, pages, 'rejoined');
  }
});

// ---- Runner ----------------------------------------------------------------------

/** Throws unless the server answers /healthz and (when the runner started it) its process lives. */
async function assertServerAlive(ctx) {
  const dead = () => new Error(`the server died; log tail: ${ctx.server.logTail().slice(-800)}`);
  if (ctx.server && !ctx.server.alive) throw dead();
  let status;
  try {
    status = (await fetch(new URL('/healthz', ctx.url), { signal: AbortSignal.timeout(seconds(10)) })).status;
  } catch (err) {
    if (ctx.server && !ctx.server.alive) throw dead();
    throw new Error(`GET /healthz failed: ${err.message}`);
  }
  if (status !== 200) throw new Error(`GET /healthz answered ${status}`);
}

/**
 * The end of every run: all pages and browsers close (each participant leaves
 * by closing its socket), the server must see them go and stay up, and then
 * exit 0 on SIGTERM.
 */
async function lastLeave(ctx) {
  for (const p of ctx.participants) await p.close();
  for (const c of ctx.cleanups.splice(0)) await c();
  if (ctx.server) {
    let rooms = null;
    await waitFor('the server to see every participant leave (GET /api/rooms to be [])', async () => {
      rooms = await (await fetch(new URL('/api/rooms', ctx.url))).json();
      return rooms.length === 0;
    }, { timeout: seconds(30), describe: () => `rooms: ${short(rooms)}` });
  }
  await assertServerAlive(ctx);
  await ctx.server?.stop(); // throws unless it exits 0 within the bound
}

function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const f = path.join(dir, cmd);
    try {
      accessSync(f, constants.X_OK);
      return f;
    } catch { /* next */ }
  }
  return null;
}

async function main() {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const build = tesseraBinary ? path.resolve(path.dirname(path.resolve(tesseraBinary)), '..', '..') : process.cwd();
  const artifacts = path.resolve(opts.artifacts ?? path.join(build, 'e2e-artifacts'));
  mkdirSync(artifacts, { recursive: true });
  // What an earlier run left would pass for this run's: clear it (the media files stay).
  for (const f of readdirSync(artifacts)) {
    if (/\.(png|jpg|log|sdp)$/.test(f)) rmSync(path.join(artifacts, f), { force: true });
  }
  const mediaDir = path.join(artifacts, 'media');
  mkdirSync(mediaDir, { recursive: true });

  const leaks = nonLoopbackInterfaces();
  if (leaks.length) {
    console.log(`# warning: non-loopback interfaces (${leaks.join(', ')}) are present; run inside a loopback-only ` +
      'network namespace (see README.md, or pass --isolate as root)');
  }
  if (!existsSync(opts.chromium)) throw new Error(`${opts.chromium} not found (run tests/e2e/install.sh)`);

  const ctx = {
    url: opts.url, artifacts, mediaDir, chromium: opts.chromium,
    firefox: opts.firefox ?? which('firefox-esr'), participants: [], cleanups: [], testIndex: 0, here,
    pageProblems: [], // uncaught page errors and crashes, see ChromiumParticipant
  };
  if (!opts.url) {
    ctx.binary = path.resolve(tesseraBinary);
    // Live HLS streams into the artifacts, not the working directory.
    ctx.serverArgs = ['--live-dir', path.join(artifacts, 'live'), ...opts['server-arg']];
    ctx.server = await startServer(ctx.binary, ctx.serverArgs, path.join(artifacts, 'server.log'));
    ctx.url = ctx.server.url;
  }
  console.log(`# server ${ctx.url}; artifacts in ${artifacts}`);

  let passed = 0;
  let failed = 0;
  const flat = (text) => String(text).replace(/\s*\n\s*/g, ' | ');
  // A test passes when its body does, no page threw or crashed meanwhile, and
  // (unless it is the final shutdown) the server is still alive after it.
  const run = async (name, fn, { thenAlive = true } = {}) => {
    const started = Date.now();
    const problemsBefore = ctx.pageProblems.length;
    const newProblems = () => ctx.pageProblems.slice(problemsBefore);
    try {
      // A server that died in an earlier test fails the rest at once (that
      // test failed already), rather than after every deadline.
      if (ctx.server && !ctx.server.alive) throw new Error('the server is not running');
      await fn(ctx);
      if (newProblems().length) throw new Error(`page errors: ${short(newProblems(), 1500)}`);
      if (thenAlive) await assertServerAlive(ctx);
      passed++;
      console.log(`ok - ${name}`);
    } catch (err) {
      failed++;
      let reason = flat(err?.message ?? err);
      if (newProblems().length && !reason.startsWith('page errors')) reason += ` [page errors: ${flat(short(newProblems(), 1500))}]`;
      if (ctx.server && !ctx.server.alive && !reason.includes('log tail')) {
        reason += ` [the server died: ${flat(ctx.server.logTail().slice(-400))}]`;
      }
      console.log(`not ok - ${name}: ${reason}`);
    }
    console.log(`# ${((Date.now() - started) / 1000).toFixed(1)} s`);
  };
  const only = opts.only ? new RegExp(opts.only, 'i') : null;
  try {
    for (const t of tests) {
      ctx.testIndex++;
      if (only && !only.test(t.name)) continue;
      await run(t.name, t.fn);
    }
    await run('every participant leaves, the server stays up and exits 0 on SIGTERM', lastLeave, { thenAlive: false });
  } finally {
    for (const p of ctx.participants) {
      await p.close();
      writeFileSync(path.join(artifacts, `console-${slug(p.label)}.log`), p.console.join('\n'));
    }
    for (const c of ctx.cleanups) await c().catch(() => {});
    await ctx.reports?.close();
    // Stopped and checked by lastLeave already, unless the run broke off.
    await ctx.server?.stop().catch(() => {});
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

// ---- Start (after every test is defined) ------------------------------------------

if (opts.isolate && !process.env.TESSERA_E2E_ISOLATED && nonLoopbackInterfaces().length) {
  const args = process.argv.slice(1).filter((a) => a !== '--isolate');
  const child = spawn('unshare', ['--net', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, ...args], {
    stdio: 'inherit', env: { ...process.env, TESSERA_E2E_ISOLATED: '1' },
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  child.on('error', (err) => {
    console.error(`cannot isolate the network (unshare --net needs root): ${err.message}`);
    process.exit(2);
  });
} else {
  main().then(() => {
    // Nothing may keep the runner alive once the results are out.
    process.exit(process.exitCode ?? 0);
  }, (err) => {
    console.error(`fatal: ${err.stack || err}`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  });
}
