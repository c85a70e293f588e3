// Small helpers: polling with deadlines, logging, process teardown.
import { setTimeout as delay } from 'node:timers/promises';

/** Multiplies every deadline (TESSERA_E2E_TIMEOUT_SCALE or --timeout-scale). */
export const timing = { scale: Number(process.env.TESSERA_E2E_TIMEOUT_SCALE) || 1 };

export function seconds(s) {
  return s * 1000 * timing.scale;
}

/** Thrown by a probe when waiting longer cannot help (a wrong hash): waitFor fails at once. */
export class Final extends Error {}

/**
 * Polls `probe` (sync or async) every `interval` ms until it returns a truthy
 * value, which is returned. Past `timeout` ms it throws, naming `what` and the
 * last value `describe` made of the probe's state. A probe that throws is
 * polled again (a page may be between states), unless it throws `Final`.
 */
export async function waitFor(what, probe, { timeout = seconds(60), interval = 250, describe } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  let lastError;
  for (;;) {
    try {
      last = await probe();
      lastError = undefined;
      if (last) return last;
    } catch (err) {
      if (err instanceof Final) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      let detail = '';
      if (describe) {
        try { detail = await describe(); } catch (err) { detail = `(state unavailable: ${err.message})`; }
      } else if (lastError) {
        detail = lastError.message;
      }
      throw new Error(`timed out after ${Math.round(timeout / 1000)} s waiting for ${what}${detail ? ` (${detail})` : ''}`);
    }
    await delay(interval); // polling interval, not synchronisation
  }
}

/** Resolves with the child's exit, or after `ms` with null. */
export function exited(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return Promise.race([
    new Promise((resolve) => child.once('exit', (code) => resolve(code))),
    delay(ms).then(() => null),
  ]);
}

/** Stops a child we started (its own process group when spawned detached). */
export async function stopChild(child, { group = false, grace = 5000 } = {}) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const kill = (sig) => {
    try {
      if (group) process.kill(-child.pid, sig);
      else child.kill(sig);
    } catch { /* already gone */ }
  };
  kill('SIGTERM');
  if ((await exited(child, grace)) === null && child.exitCode === null && child.signalCode === null) {
    kill('SIGKILL');
    await exited(child, grace);
  }
}

export function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);
}

export function short(value, max = 600) {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text && text.length > max ? `${text.slice(0, max)}…` : text;
}
