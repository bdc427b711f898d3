// Shared helpers for optsite pages: JSON over fetch, WebSocket URLs and a reconnecting socket.
// Pages take what they need from this module by name: getJSON, wsURL, RunSocket, readJSONScript …
import { DASH, fmtSeconds, fmtSig, fmtVec as formatVec } from "./format.js";

/** Parse a <script type="application/json" id=...> block written by Django's json_script. */
export function readJSONScript(id, fallback = null) {
  const el = document.getElementById(id);
  if (!el) return fallback;
  try { return JSON.parse(el.textContent); } catch { return fallback; }
}

export class HTTPError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** GET a JSON document (same-origin, session cookie); throws HTTPError on a non-2xx answer. */
export async function getJSON(url, { signal } = {}) {
  const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, signal });
  let body = null;
  try { body = await resp.json(); } catch { /* not JSON */ }
  if (!resp.ok) {
    const msg = (body && (body.message || body.error)) || `${resp.status} ${resp.statusText}`;
    throw new HTTPError(resp.status, msg, body);
  }
  return body;
}

/** Absolute ws:// or wss:// URL for a path, following the page's own scheme and host. */
export function wsURL(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

/**
 * A WebSocket that reconnects with backoff and resumes where it left off.
 *
 *   const sock = new RunSocket("/ws/runs/7/", { after: 41, onMessage, onState });
 *   sock.lastSeq;            // highest step seq held; kept up to date from "steps" messages
 *   sock.send({type: "pause"});
 *   sock.close();            // for good: no reconnect
 *
 * With `after` (watch sockets, PROTOCOL I2) every connect asks for `?after=<lastSeq>` in the URL,
 * so the server sends only newer steps, and nothing is replayed. Without it, a reconnect sends
 * {"type":"subscribe","after":lastSeq} once it has seen steps (with `subscribeOnOpen`, on every
 * open). Messages sent while disconnected are queued and flushed on open. Steps already held are
 * dropped. `onState(state)` gets "connecting" | "open" | "reconnecting" | "closed" | "gone".
 * The socket never reconnects after the server said the run is gone: a "deleted" message or a
 * close with code 4404 (then onState("gone")).
 * `path` may be changed (sock.path = ...) before the next reconnect, e.g. to move from the launch
 * socket to the run's watch socket once the run id is known.
 */
export class RunSocket {
  constructor(path, { onMessage = () => {}, onState = () => {}, subscribeOnOpen = false, after = null } = {}) {
    this.path = path;
    this.onMessage = onMessage;
    this.onState = onState;
    this.inURL = after !== null && after !== undefined;
    this.lastSeq = this.inURL ? after : -1;
    this.subscribeOnOpen = subscribeOnOpen;
    this._queue = [];
    this._closed = false;
    this._attempt = 0;
    this._timer = null;
    this._connect();
  }

  get isOpen() { return this._ws && this._ws.readyState === WebSocket.OPEN; }

  /** Resume from the URL from now on (after the launch socket's run is known). */
  resumeInURL() { this.inURL = true; this.subscribeOnOpen = false; }

  _url() {
    if (!this.inURL) return wsURL(this.path);
    return wsURL(`${this.path}${this.path.includes("?") ? "&" : "?"}after=${this.lastSeq}`);
  }

  _connect() {
    this.onState(this._attempt ? "reconnecting" : "connecting");
    const ws = new WebSocket(this._url());
    this._ws = ws;
    ws.onopen = () => {
      const resumed = this._attempt > 0 || this.subscribeOnOpen;
      this._attempt = 0;
      this.onState("open");
      if (!this.inURL && (this.subscribeOnOpen || (resumed && this.lastSeq >= 0))) {
        ws.send(JSON.stringify({ type: "subscribe", after: this.lastSeq }));
      }
      for (const m of this._queue.splice(0)) ws.send(JSON.stringify(m));
    };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg.type === "steps" && msg.steps && msg.steps.length) {
        // Drop anything already held (a reconnect may replay stored steps).
        const steps = msg.steps;
        if (steps[steps.length - 1].seq <= this.lastSeq) return;
        if (steps[0].seq <= this.lastSeq) msg = { ...msg, steps: steps.filter((s) => s.seq > this.lastSeq) };
        this.lastSeq = msg.steps[msg.steps.length - 1].seq;
      } else if (msg.type === "deleted") {
        this._gone();
      }
      this.onMessage(msg);
    };
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      if (ev.code === 4404) this._gone();
      if (this._closed) { this.onState(this._isGone ? "gone" : "closed"); return; }
      // Backoff: 0.5 s, 1 s, 2 s ... capped at 10 s.
      const delay = Math.min(10000, 500 * 2 ** this._attempt++);
      this.onState("reconnecting");
      this._timer = setTimeout(() => this._connect(), delay);
    };
  }

  _gone() { this._isGone = true; this._closed = true; clearTimeout(this._timer); }

  send(obj) {
    if (this.isOpen) this._ws.send(JSON.stringify(obj));
    else if (!this._closed) this._queue.push(obj);
  }

  /** Close now and reconnect at once (e.g. after changing `path`). */
  reconnect() {
    if (this._closed) return;
    clearTimeout(this._timer);
    const old = this._ws;
    this._ws = null;
    if (old) { old.onclose = null; old.close(); }
    this._attempt = 1; // counts as a resume: send "subscribe"
    this._connect();
  }

  close() {
    this._closed = true;
    clearTimeout(this._timer);
    if (this._ws) this._ws.close();
  }
}

/** Send one message on a fresh socket and resolve with the first reply whose type is in `types`. */
export function requestOnce(path, message, types, { timeout = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsURL(path));
    const timer = setTimeout(() => { ws.close(); reject(new Error("The server did not answer in time.")); }, timeout);
    ws.onopen = () => ws.send(JSON.stringify(message));
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (types.includes(msg.type) || msg.type === "error") {
        clearTimeout(timer);
        ws.close();
        resolve(msg);
      }
    };
    ws.onerror = () => { clearTimeout(timer); reject(new Error("Could not connect to the server.")); };
  });
}

// ---- formatting ---------------------------------------------------------------------------

// The site's number formats live in format.js; these names stay for the modules that import them here.
export function fmtNum(v, digits = 6) { return fmtSig(v, digits); }
export function fmtVec(xs, digits = 6, max = 6) { return xs ? formatVec(xs, max) : DASH; }
export { fmtSeconds };

export function escapeHTML(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** Run `fn` at most once per animation frame, however often `schedule()` is called. */
export function frameBatcher(fn) {
  let pending = false;
  return function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; fn(); });
  };
}
