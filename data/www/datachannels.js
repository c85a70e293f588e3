// The "chat" and "file" data channels (docs/datachannels.md).
import { sha256Hex } from './sha256.js';

export const CHUNK_PAYLOAD = 16 * 1024;   // bytes of file data per binary message
export const BUFFER_HIGH = 1024 * 1024;   // never queue more than this on the channel
export const BUFFER_LOW = 256 * 1024;     // resume sending below this
const READ_SLICE = 256 * 1024;            // bytes read from the Blob at a time
const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const ID_PATTERN = /^[A-Za-z0-9]{1,32}$/;

export function newTransferId(length = 16) {
  const bytes = new Uint8Array(length);
  crypto.getRandomValues(bytes);
  let id = '';
  for (const b of bytes) id += ID_ALPHABET[b % ID_ALPHABET.length];
  return id;
}

/** One binary chunk: [1 byte: L][L bytes: id, ASCII][payload]. */
export function encodeChunk(id, payload) {
  const frame = new Uint8Array(1 + id.length + payload.byteLength);
  frame[0] = id.length;
  for (let i = 0; i < id.length; i++) frame[1 + i] = id.charCodeAt(i);
  frame.set(payload, 1 + id.length);
  return frame;
}

/** Returns {id, payload} or null for a malformed chunk. */
export function decodeChunk(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes.length < 2) return null;
  const len = bytes[0];
  if (len < 1 || len > 32 || bytes.length < 1 + len) return null;
  const id = String.fromCharCode(...bytes.subarray(1, 1 + len));
  if (!ID_PATTERN.test(id)) return null;
  return { id, payload: bytes.subarray(1 + len) };
}

/** Resolves when the channel's buffer drains below its low threshold. */
function drained(channel) {
  return new Promise((resolve, reject) => {
    let timer = 0;
    const done = (err) => {
      channel.removeEventListener('bufferedamountlow', onLow);
      channel.removeEventListener('close', onClose);
      clearInterval(timer);
      if (err) reject(err); else resolve();
    };
    const onLow = () => done();
    const onClose = () => done(new Error('the file channel closed'));
    channel.addEventListener('bufferedamountlow', onLow);
    channel.addEventListener('close', onClose);
    // Belt and braces: some stacks skip the event when the buffer empties at once.
    timer = setInterval(() => {
      if (channel.readyState !== 'open') done(new Error('the file channel closed'));
      else if (channel.bufferedAmount <= channel.bufferedAmountLowThreshold) done();
    }, 250);
  });
}

/**
 * Sends and receives files over the "file" channel and keeps the list of
 * transfers both ways for the UI. Events: 'transfer' (detail: the transfer
 * object, whenever its progress or state changes), 'received' (detail: the
 * finished incoming entry {name, size, sha256, from, fromName, url, mime}).
 */
export class FileTransfers extends EventTarget {
  constructor() {
    super();
    this.channel = null;
    this.transfers = new Map(); // id -> {id, direction, name, size, done, state, ...}
    this.received = [];         // finished incoming files, oldest first
    this.queue = [];            // outgoing transfers waiting for their turn
    this.sending = false;
  }

  /** The channel used for sending; receiving works on any attached channel. */
  setChannel(channel) {
    this.channel = channel;
    if (channel) {
      channel.binaryType = 'arraybuffer';
      channel.bufferedAmountLowThreshold = BUFFER_LOW;
      channel.addEventListener('open', () => this.pump());
    }
  }

  /** Attaches the receive side to a channel (ours or one the server opened). */
  listen(channel) {
    channel.binaryType = 'arraybuffer';
    channel.addEventListener('message', (e) => this.onMessage(e.data));
  }

  /** Queues a File or Blob (with a name) for sending; returns the transfer. */
  send(file, name = file.name || 'file') {
    const t = {
      id: newTransferId(), direction: 'out', name, size: file.size,
      mime: file.type || 'application/octet-stream', done: 0, state: 'queued', blob: file,
    };
    this.transfers.set(t.id, t);
    this.queue.push(t);
    this.changed(t);
    this.pump();
    return t;
  }

  async pump() {
    if (this.sending) return;
    const ch = this.channel;
    if (!ch || ch.readyState !== 'open') return;
    this.sending = true;
    try {
      while (this.queue.length && this.channel === ch && ch.readyState === 'open') {
        const t = this.queue.shift();
        try {
          await this.sendOne(ch, t);
        } catch (err) {
          t.state = 'failed';
          t.error = String(err.message || err);
          delete t.blob;
          this.changed(t);
          // Tell the receivers to drop the partial file, if they can still hear us.
          if (ch.readyState === 'open') ch.send(JSON.stringify({ type: 'cancel', id: t.id }));
          // A closed channel fails the rest too; the session may reopen one.
          if (ch.readyState !== 'open') {
            for (const q of this.queue) { q.state = 'failed'; q.error = t.error; this.changed(q); }
            this.queue = [];
          }
        }
      }
    } finally {
      this.sending = false;
    }
  }

  async sendOne(ch, t) {
    t.state = 'sending';
    this.changed(t);
    ch.send(JSON.stringify({ type: 'start', id: t.id, name: t.name, size: t.size, mime: t.mime }));
    let offset = 0;
    let lastUpdate = 0;
    while (offset < t.size) {
      const slice = new Uint8Array(await t.blob.slice(offset, offset + READ_SLICE).arrayBuffer());
      if (slice.byteLength === 0) throw new Error('the file could not be read');
      for (let p = 0; p < slice.byteLength; p += CHUNK_PAYLOAD) {
        const frame = encodeChunk(t.id, slice.subarray(p, p + CHUNK_PAYLOAD));
        while (ch.bufferedAmount + frame.byteLength > BUFFER_HIGH) await drained(ch);
        if (ch.readyState !== 'open') throw new Error('the file channel closed');
        ch.send(frame);
        t.done = offset + p + frame.byteLength - 1 - t.id.length;
        const now = performance.now();
        if (now - lastUpdate > 100) { lastUpdate = now; this.changed(t); }
      }
      offset += slice.byteLength;
    }
    ch.send(JSON.stringify({ type: 'end', id: t.id }));
    t.done = t.size;
    t.state = 'sent';
    delete t.blob;
    this.changed(t);
  }

  onMessage(data) {
    if (typeof data === 'string') {
      let msg;
      try { msg = JSON.parse(data); } catch { return; }
      if (!msg || typeof msg.id !== 'string' || !ID_PATTERN.test(msg.id)) return;
      if (msg.type === 'start') this.onStart(msg);
      else if (msg.type === 'end') this.onEnd(msg);
      else if (msg.type === 'cancel') this.onCancel(msg);
      return;
    }
    if (data instanceof Blob) { // binaryType could not be set in time
      data.arrayBuffer().then((b) => this.onChunk(b));
      return;
    }
    this.onChunk(data);
  }

  onStart(msg) {
    const t = {
      id: msg.id, direction: 'in',
      name: typeof msg.name === 'string' && msg.name ? msg.name : 'file',
      size: Number.isFinite(msg.size) ? msg.size : 0,
      mime: typeof msg.mime === 'string' && msg.mime ? msg.mime : 'application/octet-stream',
      from: msg.from ?? null, fromName: msg.fromName ?? null,
      done: 0, state: 'receiving', chunks: [], lastUpdate: 0,
    };
    this.transfers.set(t.id, t);
    this.changed(t);
  }

  onChunk(buffer) {
    const c = decodeChunk(buffer);
    if (!c) return;
    const t = this.transfers.get(c.id);
    if (!t || t.direction !== 'in' || t.state !== 'receiving') return;
    t.chunks.push(c.payload);
    t.done += c.payload.byteLength;
    const now = performance.now();
    if (now - t.lastUpdate > 100) { t.lastUpdate = now; this.changed(t); }
  }

  async onEnd(msg) {
    const t = this.transfers.get(msg.id);
    if (!t || t.direction !== 'in' || t.state !== 'receiving') return;
    t.state = 'verifying';
    const blob = new Blob(t.chunks, { type: t.mime });
    delete t.chunks;
    if (blob.size !== t.size) {
      t.state = 'failed';
      t.error = `received ${blob.size} of ${t.size} bytes`;
      this.changed(t);
      return;
    }
    t.sha256 = await sha256Hex(await blob.arrayBuffer());
    t.url = URL.createObjectURL(blob);
    t.state = 'received';
    const entry = {
      id: t.id, name: t.name, size: blob.size, mime: t.mime, sha256: t.sha256,
      from: t.from, fromName: t.fromName, url: t.url,
    };
    this.received.push(entry);
    this.changed(t);
    this.dispatchEvent(new CustomEvent('received', { detail: entry }));
  }

  onCancel(msg) {
    const t = this.transfers.get(msg.id);
    if (!t || t.direction !== 'in' || t.state !== 'receiving') return;
    this.fail(t, 'cancelled by the sender');
  }

  fail(t, why) {
    t.state = 'failed';
    t.error = why;
    delete t.chunks;
    this.changed(t);
  }

  /** Incoming transfers from `participantId` (or all, when omitted) can no longer finish. */
  abortIncoming(participantId, why) {
    for (const t of this.transfers.values()) {
      if (t.direction === 'in' && t.state === 'receiving' &&
          (participantId === undefined || t.from === participantId)) this.fail(t, why);
    }
  }

  changed(t) {
    this.dispatchEvent(new CustomEvent('transfer', { detail: t }));
  }
}

/**
 * The chat channel: sends {"text"}; receives {"from","name","text","ts"}.
 * Events: 'message' (detail: {from, name, text, ts, self}).
 */
export class Chat extends EventTarget {
  constructor() {
    super();
    this.channel = null;
    this.log = [];
  }

  setChannel(channel) {
    this.channel = channel;
  }

  get ready() {
    return this.channel !== null && this.channel.readyState === 'open';
  }

  listen(channel) {
    channel.addEventListener('message', (e) => {
      if (typeof e.data !== 'string') return;
      let msg;
      try { msg = JSON.parse(e.data); } catch { return; }
      if (!msg || typeof msg.text !== 'string') return;
      this.add({
        from: typeof msg.from === 'string' ? msg.from : '',
        name: typeof msg.name === 'string' ? msg.name : 'someone',
        text: msg.text,
        ts: Number.isFinite(msg.ts) ? msg.ts : Date.now(),
        self: false,
      });
    });
  }

  /** Sends `text`; the server does not echo it, so it is logged here. */
  send(text, self = { id: '', name: 'me' }) {
    if (!this.ready || !text) return false;
    this.channel.send(JSON.stringify({ text }));
    this.add({ from: self.id, name: self.name, text, ts: Date.now(), self: true });
    return true;
  }

  add(entry) {
    this.log.push(entry);
    this.dispatchEvent(new CustomEvent('message', { detail: entry }));
  }
}
