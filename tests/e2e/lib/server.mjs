// Starts the tessera binary on a free port and reads its address from stdout.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { stopChild, seconds } from './util.mjs';

const LISTENING = /tessera listening on (https?:\/\/[^\s]+)/;

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

  return {
    url,
    child,
    get alive() { return child.exitCode === null && child.signalCode === null; },
    logTail: () => tail,
    async stop() {
      stopping = true;
      await stopChild(child);
      log.end();
      await once(log, 'close').catch(() => {});
    },
  };
}
