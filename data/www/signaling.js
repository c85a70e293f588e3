// The signaling WebSocket (docs/protocol.md): one JSON object per text frame.
// A thin wrapper: reconnection policy lives in the session, which knows
// whether a close was wanted.

/** URL of the server's signaling endpoint on this page's origin (ws: or wss:). */
export function signalingUrl(loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

/**
 * Events: 'open', 'message' (detail: the parsed object), 'close'
 * (detail: {code, reason, wasClean}).
 */
export class Signaling extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.ws = null;
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (this.ws === ws) this.dispatchEvent(new Event('open'));
    });
    ws.addEventListener('message', (e) => {
      if (this.ws !== ws || typeof e.data !== 'string') return;
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        console.warn('tessera: signaling frame is not JSON', e.data);
        return;
      }
      if (msg && typeof msg === 'object' && typeof msg.type === 'string') {
        this.dispatchEvent(new CustomEvent('message', { detail: msg }));
      }
    });
    ws.addEventListener('close', (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.dispatchEvent(new CustomEvent('close', {
        detail: { code: e.code, reason: e.reason, wasClean: e.wasClean },
      }));
    });
    // 'error' is always followed by 'close', which carries what we act on.
  }

  /** Sends one message; returns false when the socket is not open. */
  send(msg) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /** Closes without a 'close' event: the caller wanted it. */
  close(code = 1000, reason = 'bye') {
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(code, reason);
  }
}
