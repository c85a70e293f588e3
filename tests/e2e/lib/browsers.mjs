// Launching the browsers: Chromium through playwright-core (one browser per
// participant, since fake media files are per process), Firefox ESR as a
// plain process whose page reports to a local endpoint (no webdriver).
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync, createWriteStream, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { seconds, stopChild, waitFor, short } from './util.mjs';

export function chromiumArgs(media) {
  return [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    `--use-file-for-fake-video-capture=${media.video}`, `--use-file-for-fake-audio-capture=${media.audio}`,
    '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns',
    '--auto-select-desktop-capture-source=Entire screen',
    '--autoplay-policy=no-user-gesture-required',
    '--disable-renderer-backgrounding', '--disable-background-timer-throttling',
    '--disable-backgrounding-occluded-windows', '--window-size=1280,900',
    ...(media.chromiumArgs ?? []),
  ];
}

/**
 * A participant: one Chromium process, one context, one page. Its uncaught
 * JavaScript errors, page crashes and an unexpected browser exit go to
 * `problems` (shared by all participants), which the runner turns into the
 * failure of the test during which they came.
 */
export class ChromiumParticipant {
  constructor(name, media, { executablePath, artifacts, problems }) {
    this.name = name;
    this.label = name; // stays when a test renames the participant
    this.media = media;
    this.executablePath = executablePath;
    this.artifacts = artifacts;
    this.problems = problems;
    this.console = [];
  }

  async launch() {
    this.browser = await chromium.launch({
      executablePath: this.executablePath,
      headless: false,
      ignoreDefaultArgs: ['--headless'],
      args: chromiumArgs(this.media),
      timeout: seconds(60),
    });
    this.browser.on('disconnected', () => {
      if (!this.closing) this.problem('the browser exited');
    });
    return this;
  }

  /**
   * Opens a fresh context and page (a participant may join several rooms in turn); `initScript` runs in the page
   * before any of its own (a browser without some API).
   */
  async open(url, { initScript } = {}) {
    if (this.context) await this.context.close().catch(() => {});
    this.context = await this.browser.newContext({ viewport: { width: 1280, height: 900 } });
    if (initScript) await this.context.addInitScript(initScript);
    this.page = await this.context.newPage();
    this.page.on('console', (m) => this.log(`console.${m.type()}: ${m.text()}`));
    this.page.on('pageerror', (e) => this.problem(`uncaught error: ${e.stack || e.message}`));
    this.page.on('crash', () => this.problem('the page crashed'));
    await this.page.goto(url, { timeout: seconds(30) });
    return this.page;
  }

  problem(what) {
    this.log(what);
    this.problems.push(`${this.name}: ${what}`);
  }

  log(line) {
    this.console.push(`${new Date().toISOString()} ${line}`);
    if (this.console.length > 2000) this.console.shift();
  }

  /** Evaluates `fn(arg)` in the page. */
  eval(fn, arg) {
    return this.page.evaluate(fn, arg);
  }

  /** A compact description of the page's state, for failure messages. */
  async describe() {
    const s = await this.eval(() => {
      const t = window.tessera;
      const v = t.stats?.inbound?.video;
      const a = t.stats?.inbound?.audio;
      // Chromium binds a receiver's track to the SSRC the answer signals; a
      // stream arriving with another SSRC is decoded but never reaches <video>.
      const sdp = t.pc?.remoteDescription?.sdp ?? '';
      const videoSection = sdp.split('\r\nm=').find((x) => x.startsWith('video')) ?? '';
      const signaled = [...new Set([...videoSection.matchAll(/a=ssrc:(\d+) /g)].map((m) => Number(m[1])))];
      const unbound = v && v.framesDecoded > 0 && v.trackIdentifier === '';
      return {
        state: t.state, detail: t.stateDetail, id: t.self?.id,
        participants: t.participants.map((p) => p.name), layout: t.layout,
        framesDecoded: v?.framesDecoded, frame: v ? `${v.frameWidth}x${v.frameHeight}` : null,
        videoElement: `${t.video.width}x${t.video.height}`, audioEnergy: a?.totalAudioEnergy,
        ice: t.pc?.iceConnectionState, signaling: t.pc?.signalingState,
        errors: t.errors.slice(-3).map((e) => `${e.code}: ${e.message}`), mediaError: t.mediaError,
        ...(unbound ? { videoNotBoundToTrack: `inbound video SSRC ${v.ssrc} has no track; the answer signals SSRC ${signaled.join(',') || 'none'}` } : {}),
      };
    });
    return `${this.name}: ${short(s, 500)}`;
  }

  async screenshot(file) {
    try {
      await this.page.screenshot({ path: path.join(this.artifacts, file), timeout: seconds(20) });
    } catch (err) {
      this.log(`screenshot ${file} failed: ${err.message}`);
    }
  }

  async close() {
    this.closing = true;
    await this.browser?.close().catch(() => {});
  }
}

/** Collects what pages POST to /report/<label>: the latest body per label. */
export async function startReportServer() {
  const latest = new Map();
  const server = createServer((req, res) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (req.method !== 'POST' || !req.url.startsWith('/report/')) {
      res.writeHead(req.method === 'OPTIONS' ? 204 : 404);
      res.end();
      return;
    }
    const label = decodeURIComponent(req.url.slice('/report/'.length));
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => {
      body += c;
      if (body.length > 4 * 1024 * 1024) req.destroy();
    });
    req.on('end', () => {
      try {
        const value = JSON.parse(body);
        const previous = latest.get(label);
        // Keep the last frame snapshot and SDP even when this report has none.
        if (!value.frame && previous?.frame) value.frame = previous.frame;
        if (!value.remoteSdp && previous?.remoteSdp) value.remoteSdp = previous.remoteSdp;
        value.receivedAt = Date.now();
        latest.set(label, value);
      } catch { /* ignore a torn body */ }
      res.writeHead(204);
      res.end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    urlFor: (label) => `http://127.0.0.1:${port}/report/${encodeURIComponent(label)}`,
    latest: (label) => latest.get(label) ?? null,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

export const FIREFOX_PREFS = {
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  'media.autoplay.default': 0,
  'media.autoplay.blocking_policy': 0,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'media.peerconnection.ice.loopback': true,
  'media.peerconnection.ice.link_local': true,
  'media.peerconnection.ice.default_address_only': false,
  // Without a granted camera/microphone permission Firefox gathers only the
  // default route's address, and a loopback-only namespace has no default route.
  'permissions.default.camera': 1,
  'permissions.default.microphone': 1,
  'toolkit.telemetry.enabled': false,
  'toolkit.telemetry.unified': false,
  'toolkit.telemetry.server': '',
  'datareporting.healthreport.uploadEnabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'app.update.enabled': false,
  'app.update.auto': false,
  'app.normandy.enabled': false,
  'extensions.update.enabled': false,
  'browser.shell.checkDefaultBrowser': false,
  'browser.startup.homepage_override.mstone': 'ignore',
  'browser.aboutwelcome.enabled': false,
  'browser.safebrowsing.malware.enabled': false,
  'browser.safebrowsing.phishing.enabled': false,
  'browser.safebrowsing.downloads.enabled': false,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'browser.tabs.warnOnClose': false,
  'dom.min_background_timeout_value': 10,
};

/** Runs `firefox-esr` headless on `url` with a fresh profile; stop() ends it. */
export async function startFirefox(executable, url, logPath) {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'tessera-ff-'));
  const prefs = Object.entries(FIREFOX_PREFS)
    .map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});`).join('\n');
  writeFileSync(path.join(profile, 'user.js'), `${prefs}\n`);
  const log = createWriteStream(logPath);
  const args = ['--headless', '--no-remote', '--profile', profile, url];
  log.write(`$ MOZ_HEADLESS=1 ${executable} ${args.join(' ')}\n`);
  const child = spawn(executable, args, {
    env: { ...process.env, MOZ_HEADLESS: '1', MOZ_CRASHREPORTER_DISABLE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: content processes stop with it
  });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const failed = new Promise((_, reject) => {
    child.once('error', reject);
  });
  failed.catch(() => {});
  return {
    child,
    failed,
    async stop() {
      await stopChild(child, { group: true });
      log.end();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Waits until the page reports (through the report server) a state passing `check`. */
export function waitForReport(reports, label, what, check, timeout = seconds(90)) {
  return waitFor(what, () => {
    const r = reports.latest(label);
    return r && Date.now() - r.receivedAt < seconds(10) && check(r) ? r : null;
  }, {
    timeout,
    describe: () => {
      const r = reports.latest(label);
      if (!r) return 'the page never reported';
      const v = r.stats?.inbound?.video;
      const videoSection = (r.remoteSdp ?? '').split('\r\nm=').find((x) => x.startsWith('video')) ?? '';
      const signaled = [...new Set([...videoSection.matchAll(/a=ssrc:(\d+) /g)].map((m) => m[1]))];
      return short({
        state: r.state, detail: r.stateDetail, participants: r.participants?.map((p) => p.name),
        framesDecoded: v?.framesDecoded, inboundVideo: v ? `ssrc ${v.ssrc}` : 'none',
        answerVideoSsrc: signaled.join(',') || 'none', video: r.video, errors: r.errors?.slice(-3),
        mediaError: r.mediaError, ageMs: Date.now() - r.receivedAt,
      });
    },
  });
}
