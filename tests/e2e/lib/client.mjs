// A tessera-client process (docs/client.md) as a participant beside the
// browsers: JSON events and replies on its stdout, commands on its stdin.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { seconds, stopChild, waitFor, short } from './util.mjs';

export class TesseraClient {
  /** Starts `binary` with `args`; its events (not its reports, which carry a thumbnail) go to `logPath`. */
  constructor(binary, args, logPath) {
    this.events = [];
    this.pending = []; // resolvers of `report` commands, answered in order
    this.log = createWriteStream(logPath);
    this.log.write(`$ ${binary} ${args.join(' ')}\n`);
    this.child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.pipe(this.log, { end: false });
    this.child.stdin.on('error', () => { /* it exited; stop() and the waits say so */ });
    this.closed = new Promise((resolve) => this.child.once('close', (code, signal) => resolve({ code, signal })));
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      let j;
      try { j = JSON.parse(line); } catch { return; }
      if (j.reply === 'report') {
        this.pending.shift()?.(j);
      } else {
        this.log.write(`${line}\n`);
        if (j.event) this.events.push(j);
      }
    });
  }

  get alive() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first event `name` passing `check`, waited for; fails at once if the client exits. */
  waitEvent(name, what, check = () => true, timeout = seconds(90)) {
    return waitFor(what, () => {
      const e = this.events.find((x) => x.event === name && check(x));
      if (e) return e;
      if (!this.alive) throw new Error(`tessera-client exited; events: ${short(this.events.map((x) => x.event))}`);
      return null;
    }, { timeout, describe: () => `events so far: ${short(this.events.slice(-8), 800)}` });
  }

  /** Sends a command line (docs/client.md) whose reply nobody waits for, e.g. `tone 0.3`. */
  command(line) {
    this.child.stdin.write(`${line}\n`);
  }

  /** One report (docs/client.md), or null if none comes within 10 s. */
  report() {
    if (!this.alive) return Promise.resolve(null);
    return Promise.race([
      new Promise((resolve) => {
        this.pending.push(resolve);
        this.child.stdin.write('report\n');
      }),
      delay(seconds(10), null),
    ]);
  }

  /** Leaves (the `leave` command), or is stopped if it does not exit within 10 s. */
  async stop() {
    if (this.alive) {
      this.child.stdin.write('leave\n');
      const left = await Promise.race([this.closed, delay(seconds(10), null)]);
      if (!left) await stopChild(this.child);
    }
    await this.closed;
    this.log.end();
  }
}
