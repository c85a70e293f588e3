// Starts the tessera binary on a free port and reads its address from stdout.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { seconds } from './util.mjs';

const LISTENING = /tessera listening on (https?:\/\/[^\s]+)/;
// The server quits at once on SIGTERM when no recording is running (the e2e
// tests record nothing); its 20 s recording grace period stays inside this.
const EXIT_BOUND_S = 30;

export async function startServer(binary, extraArgs, logPath, { port = 0, append = false } = {}) {
  const args = ['--port', String(port), '--ice-address', '127.0.0.1', ...extraArgs];
  const log = createWriteStream(logPath, { flags: append ? 'a' : 'w' });
  log.write(`$ ${binary} ${args.join(' ')}\n`);
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keepTail = (chunk) => {
    tail = (tail + chunk.toString()).slice(-4000);
  };
  child.stderr.on('data', (c) => { log.write(c); keepTail(c); });
  let stopping = false;
  // 'close' rather than 'exit': the last lines of the log are in by then.
  const exit = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  child.once('exit', (code, signal) => {
    const line = `[e2e] the server exited: ${signal ? `signal ${signal}` : `code ${code}`}${stopping ? ' (stopped by the runner)' : ''}\n`;
    keepTail(line);
    if (log.writable) log.write(line);
  });

  const url = await new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => {
      reject(new Error(`the server printed no "tessera listening on" line within ${seconds(30) / 1000} s; log tail:\n${tail}`));
    }, seconds(30));
    child.stdout.on('data', (c) => {
      log.write(c);
      keepTail(c);
      buffered += c.toString();
      const m = LISTENING.exec(buffered);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/$/, ''));
      }
    });
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${signal ?? `code ${code}`}) before listening; log tail:\n${tail}`));
    });
  });

  let stopped = null;
  const stopAndCheck = async () => {
    const wasAlive = child.exitCode === null && child.signalCode === null;
    stopping = true;
    if (wasAlive) child.kill('SIGTERM');
    const bound = seconds(EXIT_BOUND_S);
    const timer = new AbortController();
    const result = await Promise.race([exit, delay(bound, null, { signal: timer.signal }).catch(() => null)]);
    timer.abort();
    if (!result) {
      child.kill('SIGKILL');
      await exit;
    }
    log.end();
    await once(log, 'close').catch(() => {});
    const how = (r) => (r.signal ? `was killed by ${r.signal}` : `exited with status ${r.code}`);
    const logTail = `; log tail:\n${tail.slice(-1500)}`;
    if (!wasAlive) throw new Error(`the server was already dead before SIGTERM (it ${how(await exit)})${logTail}`);
    if (!result) throw new Error(`the server did not exit within ${bound / 1000} s of SIGTERM${logTail}`);
    if (result.signal || result.code !== 0) throw new Error(`on SIGTERM the server ${how(result)}, not 0${logTail}`);
  };

  return {
    url,
    child,
    get alive() { return child.exitCode === null && child.signalCode === null; },
    logTail: () => tail,
    /**
     * SIGTERM, then the server must exit with status 0 within EXIT_BOUND_S;
     * anything else (already dead, a crash, hanging) throws with the log tail.
     * Stopping twice gives the first outcome.
     */
    stop() {
      stopped ??= stopAndCheck();
      return stopped;
    },
  };
}
