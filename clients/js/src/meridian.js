// Meridian JavaScript SDK — one ES module, no runtime dependencies.
// Works in browsers and in Node 20+ (there it loads the optional `ws`
// package when no global WebSocket exists). Protocol: docs/protocol.md.

export const VERSION = '0.1.0';

/** Connection states reported by the `state` event. */
export const State = Object.freeze({
  CONNECTING: 'connecting',
  CONNECTED: 'connected',
  DISCONNECTED: 'disconnected',
  RECONNECTING: 'reconnecting',
});

/** An error from the relay or the SDK. `final` errors will not be retried. */
export class MeridianError extends Error {
  constructor(code, message, { retryable = false, final = !retryable, frame } = {}) {
    super(message || code);
    this.name = 'MeridianError';
    this.code = code;
    this.retryable = retryable;
    this.final = final;
    if (frame !== undefined) this.frame = frame;
  }
}

const OPEN = 1;

// What to do after a close, by close code (docs/protocol.md "Close codes").
//   kind: 'backoff'  normal exponential backoff
//         'now'      reconnect at once (drain)
//         'token'    refresh the token, then reconnect at once
//         'auth'     refresh the token, then reconnect with backoff
//         'slow'     a client bug: reconnect, but never fast
//         'ratelimit' back off for longer than usual
const CLOSE_REASONS = {
  1000: ['normal_close', 'backoff'],
  1001: ['going_away', 'backoff'],
  1003: ['binary_frame', 'slow'],
  1006: ['connection_lost', 'backoff'],
  1009: ['message_too_big', 'slow'],
  1011: ['internal_error', 'backoff'],
  1012: ['drain', 'now'],
  4001: ['auth_failed', 'auth'],
  4002: ['handshake_timeout', 'backoff'],
  4008: ['slow_consumer', 'backoff'],
  4009: ['too_many_bad_frames', 'slow'],
  4010: ['token_expired', 'token'],
  4029: ['rate_limited', 'ratelimit'],
};

/** Decode the `exp` claim (seconds) of a JWT without verifying it; null if absent. */
export function tokenExpiry(token) {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length < 2) return null;
  try {
    let b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    while (b64.length % 4) b64 += '=';
    const bin = atob(b64);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return typeof claims.exp === 'number' ? claims.exp : null;
  } catch {
    return null;
  }
}

/**
 * Full-jitter exponential backoff: a uniform delay in
 * [0, min(max, initial * factor^attempt)] (attempt counts from 0).
 */
export function backoffDelay(attempt, { initial = 500, max = 30000, factor = 2 } = {}, random = Math.random) {
  const cap = Math.min(max, initial * Math.pow(factor, Math.max(0, attempt)));
  return Math.floor(random() * cap);
}

function randomId(n = 8) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = new Uint8Array(n);
  if (globalThis.crypto && typeof globalThis.crypto.getRandomValues === 'function') {
    globalThis.crypto.getRandomValues(bytes);
  } else {
    for (let i = 0; i < n; i++) bytes[i] = Math.floor(Math.random() * 256);
  }
  let s = '';
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}

function uniq(list) {
  const out = [];
  for (const u of list) if (typeof u === 'string' && u && !out.includes(u)) out.push(u);
  return out;
}

// A set of recent keys with a bounded size (oldest dropped first).
class BoundedMap {
  constructor(limit) {
    this.limit = limit;
    this.map = new Map();
  }
  has(k) { return this.map.has(k); }
  get(k) { return this.map.get(k); }
  set(k, v) {
    if (this.map.has(k)) this.map.delete(k);
    this.map.set(k, v);
    while (this.map.size > this.limit) this.map.delete(this.map.keys().next().value);
  }
  delete(k) { this.map.delete(k); }
  get size() { return this.map.size; }
}

class Emitter {
  constructor() { this._listeners = new Map(); }
  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return this;
  }
  off(event, fn) {
    const set = this._listeners.get(event);
    if (set) set.delete(fn);
    return this;
  }
  once(event, fn) {
    const wrap = (...args) => { this.off(event, wrap); fn(...args); };
    return this.on(event, wrap);
  }
  emit(event, ...args) {
    const set = this._listeners.get(event);
    if (!set || set.size === 0) return false;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (err) {
        // An application listener failing must not break the SDK's state.
        setTimeout(() => { throw err; }, 0);
      }
    }
    return true;
  }
}

let wsModulePromise = null;
async function defaultWebSocket() {
  if (typeof globalThis.WebSocket === 'function') return globalThis.WebSocket;
  if (!wsModulePromise) {
    const name = 'ws'; // a variable keeps bundlers from resolving it for browsers
    wsModulePromise = import(name).then(
      (m) => m.WebSocket || m.default,
      () => {
        wsModulePromise = null;
        throw new MeridianError('no_websocket',
          'no global WebSocket: install the "ws" package or pass the WebSocket option');
      });
  }
  return wsModulePromise;
}

/**
 * A Meridian client: one WebSocket to a relay, with automatic reconnect,
 * resume of joined rooms, a publish outbox and de-duplicated delivery.
 *
 * Events: state, welcome, message, commit, ordered, gap, joined, left,
 * presence, members, signal, refreshed, error.
 */
export class MeridianClient extends Emitter {
  constructor(options = {}) {
    super();
    const urls = Array.isArray(options.url) ? options.url : [options.url];
    this._urls = uniq(urls);
    if (this._urls.length === 0) throw new TypeError('MeridianClient: url is required');
    if (typeof options.token === 'function') this._tokenProvider = options.token;
    else if (typeof options.getToken === 'function') this._tokenProvider = options.getToken;
    else if (typeof options.tokenProvider === 'function') this._tokenProvider = options.tokenProvider;
    else if (typeof options.token === 'string') this._token = options.token;
    else throw new TypeError('MeridianClient: token (string or function) is required');

    this._WebSocket = options.WebSocket || null;
    this._protocols = options.protocols;
    this._backoff = { initial: 500, max: 30000, factor: 2, ...(options.backoff || {}) };
    this._slowDelay = options.slowReconnectDelay ?? 30000;
    this._rateLimitDelay = options.rateLimitDelay ?? 5000;
    this._drainJitter = options.drainJitter ?? 1000;
    this._connectTimeout = options.connectTimeout ?? 10000;
    this._refreshMargin = options.tokenRefreshMargin ?? 30000;
    this._publishRetryDelay = options.publishRetryDelay ?? 1000;
    this._dedupSize = options.dedupSize ?? 5000;
    this._random = options.random || Math.random;
    this._setTimeout = options.setTimeout || ((fn, ms) => setTimeout(fn, ms));
    this._clearTimeout = options.clearTimeout || ((t) => clearTimeout(t));
    this._now = options.now || (() => Date.now());
    this._midPrefix = options.midPrefix || randomId(10);
    // false: hello says "echo":false and the relay does not send this
    // connection its own messages; each one is taken from its ack instead.
    this._echo = options.echo !== false;
    this._midCounter = 0;
    this._reqCounter = 0;

    this.state = State.DISCONNECTED;
    this.region = null;
    this.node = null;
    this.user = null;
    this.session = null;
    this.limits = null;
    this.welcome = null;

    this._ws = null;
    this._authenticated = false;
    this._wanted = false; // the app wants to be connected
    this._attempt = 0; // failed attempts since the last welcome
    this._urlIndex = 0;
    this._fallback = [];
    this._preferred = []; // URLs from a reconnect frame, tried first
    this._reconnectTimer = null;
    this._connectTimer = null;
    this._refreshTimer = null;
    this._heartbeatTimer = null;
    this._lastRx = 0;
    this._nextKind = null; // reconnect kind decided by a reconnect frame
    this._tokenPromise = null;
    this._tokenAt = null;
    this._openEpoch = 0;
    this._onOnline = null;

    this._rooms = new Map(); // room -> room state
    this._requests = new Map(); // request id -> {resolve, reject, type, room}
    this._outbox = []; // unacknowledged publishes, in publish order
    this._connectWaiters = [];
  }

  // ---------------------------------------------------------------- public API

  /** Connect (and stay connected). Resolves on the first `welcome`. */
  connect() {
    const p = new Promise((resolve, reject) => {
      if (this._authenticated) return resolve(this.welcome);
      this._connectWaiters.push({ resolve, reject });
    });
    if (!this._wanted) {
      this._wanted = true;
      this._watchOnline(true);
      this._open(State.CONNECTING, 'connect');
    }
    return p;
  }

  /** Close for good: pending publishes and joins are rejected. */
  close(reason = 'closed') {
    this._wanted = false;
    this._openEpoch++;
    this._watchOnline(false);
    this._clearTimers();
    const err = new MeridianError('closed', 'client closed', { final: true });
    this._failAll(err);
    if (this._ws) this._dropSocket(1000, reason);
    this._resetConnection();
    this._setState(State.DISCONNECTED, reason, { final: true });
  }

  /**
   * Join a room (kept joined across reconnects). Resolves with
   * {room, recovered, last_seq} on the first `joined`.
   * options.presence: keep a member list for this room (`members` event).
   * options.since: last seq the app already has (resume from there).
   * options.rewind: on the first join, the room's last N messages (a
   *   chat page showing recent history); later rejoins resume from the
   *   last seq as usual. Ignored when `since` is given.
   */
  join(room, options = {}) {
    let r = this._rooms.get(room);
    if (!r) {
      r = {
        name: room,
        joined: false,
        waiters: [],
        lastSeq: null, // highest contiguous committed seq
        pending: new Map(), // seq -> {msg_id, message} above lastSeq
        seen: new BoundedMap(this._dedupSize), // msg_id -> {message, seq}
        presence: !!options.presence,
        members: new Map(),
      };
      if (Number.isInteger(options.since) && options.since >= 0) r.lastSeq = options.since;
      else if (Number.isInteger(options.rewind) && options.rewind > 0) r.rewind = options.rewind;
      this._rooms.set(room, r);
    } else if (options.presence) {
      r.presence = true;
    }
    const p = new Promise((resolve, reject) => {
      if (r.joined && r.info) return resolve(r.info);
      r.waiters.push({ resolve, reject });
    });
    if (this._authenticated && !r.joinSent) this._sendJoin(r);
    return p;
  }

  /** Leave a room; its unacknowledged publishes are rejected. */
  leave(room) {
    const r = this._rooms.get(room);
    if (!r) return Promise.resolve({ room });
    this._rooms.delete(room);
    const err = new MeridianError('left', `left room ${room}`, { final: true });
    for (const w of r.waiters) w.reject(err);
    this._outbox = this._outbox.filter((e) => {
      if (e.room !== room) return true;
      this._clearEntryTimer(e);
      e.reject(err);
      return false;
    });
    if (!this._authenticated || !r.joinSent) return Promise.resolve({ room });
    return this._request({ type: 'leave', room }).then(
      () => ({ room }),
      (e) => (e.code === 'not_joined' || e.code === 'disconnected' ? { room } : Promise.reject(e)));
  }

  /** Rooms the client wants to be in. */
  rooms() { return [...this._rooms.keys()]; }

  /** Highest contiguous committed seq seen in a room (null if none yet). */
  lastSeq(room) {
    const r = this._rooms.get(room);
    return r ? r.lastSeq : null;
  }

  /** Current member list of a room joined with {presence: true}. */
  members(room) {
    const r = this._rooms.get(room);
    if (!r) return [];
    return [...r.members.entries()].map(([user, sessions]) => ({ user, sessions }));
  }

  /**
   * Publish `data` to a joined room. Resolves with {room, msg_id, mid} on
   * `ack`; retried with the same mid across reconnects; rejects only on a
   * final error (not joined, forbidden, too large, left, closed...).
   */
  publish(room, data, options = {}) {
    return new Promise((resolve, reject) => {
      if (!this._rooms.has(room)) {
        reject(new MeridianError('not_joined', `join ${room} before publishing`, { final: true }));
        return;
      }
      if (data === undefined) {
        reject(new MeridianError('bad_frame', 'data is required', { final: true }));
        return;
      }
      const mid = options.mid || this.newMid();
      const entry = { room, data, mid, resolve, reject, sentOn: null, id: null, timer: null, retries: 0 };
      this._outbox.push(entry);
      this._flushRoom(room);
    });
  }

  /** A new client message id (prefix-counter), for apps that want to know the mid before publishing. */
  newMid() { return `${this._midPrefix}-${++this._midCounter}`; }

  /** Number of publishes waiting for their `ack`. */
  get outboxSize() { return this._outbox.length; }

  /** Ask the relay who is in a room. Resolves with the member list. */
  presence(room) {
    if (!this._authenticated) {
      return Promise.reject(new MeridianError('disconnected', 'not connected', { retryable: true }));
    }
    const r0 = this._rooms.get(room);
    // Events that arrive while the snapshot is on its way are replayed over
    // it: the relay may answer with a snapshot older than those events.
    if (r0 && r0.presence) r0.presenceLog = r0.presenceLog || [];
    const p = this._request({ type: 'presence', room });
    if (r0 && r0.presence) r0.snapshots = (r0.snapshots || 0) + 1;
    const done = () => {
      if (r0 && r0.presence && --r0.snapshots === 0) r0.presenceLog = null;
    };
    return p.then((f) => {
      const members = Array.isArray(f.members) ? f.members : [];
      const r = this._rooms.get(room);
      if (r && r === r0 && r.presence) {
        this._setMembers(r, members, r.presenceLog || []);
        r.presenceLog = [];
      }
      done();
      return members;
    }, (err) => {
      done();
      throw err;
    });
  }

  /**
   * Send an ephemeral signal (typing, cursor, "seen") to a joined room: no
   * ack, no seq, no history, never retried; the room's other members get a
   * `signal` event. Returns true when it was sent, false when the client is
   * not connected, the room is not joined yet, or `data` is larger than the
   * relay's limit (welcome.limits.signal_max_bytes).
   */
  signal(room, data) {
    const r = this._rooms.get(room);
    if (!this._authenticated || !r || !r.joined || data === undefined) return false;
    const max = this.limits && this.limits.signal_max_bytes;
    if (max && new TextEncoder().encode(JSON.stringify(data)).length > max) return false;
    return this._sendRaw({ type: 'signal', room, data });
  }

  /** Protocol-level ping; resolves with the round-trip time in ms. */
  ping() {
    if (!this._authenticated) {
      return Promise.reject(new MeridianError('disconnected', 'not connected', { retryable: true }));
    }
    const t0 = this._now();
    return this._request({ type: 'ping' }).then(() => this._now() - t0);
  }

  /** URLs tried in order when (re)connecting: main URL(s), then fallbacks. */
  get urls() { return uniq([...this._urls, ...this._fallback]); }

  // ------------------------------------------------------------ connection

  _setState(state, reason, extra = {}) {
    this.state = state;
    this.emit('state', { state, reason, ...extra });
  }

  _nextUrl() {
    if (this._preferred.length > 0) return this._preferred.shift();
    const list = this.urls;
    const url = list[this._urlIndex % list.length];
    this._urlIndex++;
    return url;
  }

  // How long before the token's exp to fetch a new one: the configured
  // margin, but at most half the token's lifetime (short-lived tokens must
  // not make the client ask the provider in a loop).
  _refreshDelay() {
    const exp = tokenExpiry(this._token);
    if (exp === null) return null;
    const remaining = exp * 1000 - this._now();
    const lifetime = exp * 1000 - (this._tokenAt ?? this._now());
    const margin = Math.min(this._refreshMargin, Math.max(0, lifetime / 2));
    return remaining - margin;
  }

  async _getToken(force) {
    if (!this._tokenProvider) return this._token;
    if (this._token && !force) {
      const d = this._refreshDelay();
      if (d === null || d > 0) return this._token;
    }
    if (!this._tokenPromise) {
      this._tokenPromise = Promise.resolve()
        .then(() => this._tokenProvider())
        .then((t) => {
          if (typeof t !== 'string' || !t) throw new MeridianError('bad_token', 'token provider returned no token');
          this._token = t;
          this._tokenAt = this._now();
          this._scheduleRefresh();
          // Connected: hand the new token to the session instead of reconnecting.
          if (this._authenticated) this._sendRefresh(t);
          return t;
        })
        .finally(() => { this._tokenPromise = null; });
    }
    return this._tokenPromise;
  }

  // Fetch a fresh token shortly before the current one expires, so a close
  // with 4010 reconnects at once with a valid token.
  _scheduleRefresh() {
    if (this._refreshTimer) this._clearTimeout(this._refreshTimer);
    this._refreshTimer = null;
    if (!this._tokenProvider) return;
    const d = this._refreshDelay();
    if (d === null) return;
    // Timers overflow past 2^31-1 ms; never refresh more than once a second.
    const delay = Math.min(Math.max(1000, d), 0x7fffffff);
    this._refreshTimer = this._setTimeout(() => {
      this._refreshTimer = null;
      if (!this._wanted) return;
      if (this._refreshDelay() > 0) this._scheduleRefresh(); // woke early (long timer)
      else this._getToken(true).catch((e) => this.emit('error', e));
    }, delay);
  }

  // A `refresh` frame: same session, same rooms. If the relay refuses the
  // token, the session goes on until its old token expires (4010), and the
  // reconnect then asks the provider again.
  _sendRefresh(token) {
    const ws = this._ws;
    this._request({ type: 'refresh', token }).then((f) => {
      if (this._ws === ws) this._usedToken = token;
      this.emit('refreshed', { exp: f.exp ?? null });
    }, (err) => {
      if (err.code === 'disconnected') return;
      // Refused: after the 4010 that follows, ask getToken() again rather than reuse it.
      if (this._token === token) this._usedToken = token;
      this.emit('error', err);
    });
  }

  async _open(state, reason) {
    if (!this._wanted) return;
    const epoch = ++this._openEpoch;
    const url = this._nextUrl();
    this._setState(state, reason, { url, attempt: this._attempt, phase: 'attempt' });
    let token;
    let WS;
    // After 4001/4010 ask the provider again, unless the token was already
    // refreshed ahead of its expiry.
    const force = this._needFreshToken && this._token === this._usedToken;
    this._needFreshToken = false;
    try {
      WS = this._WebSocket || await defaultWebSocket();
      token = await this._getToken(force);
    } catch (err) {
      if (!this._wanted || epoch !== this._openEpoch) return;
      const e = err instanceof MeridianError ? err : new MeridianError('token_error', String(err && err.message || err), { retryable: true });
      this.emit('error', e);
      if (e.code === 'no_websocket') {
        this._fatal(e);
        return;
      }
      this._attempt++;
      this._scheduleReconnect('backoff', e.code);
      return;
    }
    if (!this._wanted || epoch !== this._openEpoch) return; // closed or superseded meanwhile
    this._usedToken = token;
    let ws;
    try {
      ws = this._protocols ? new WS(url, this._protocols) : new WS(url);
    } catch (err) {
      this.emit('error', new MeridianError('connect_failed', String(err && err.message || err), { retryable: true }));
      this._attempt++;
      this._scheduleReconnect('backoff', 'connect_failed');
      return;
    }
    this._ws = ws;
    this._url = url;
    this._authenticated = false;
    this._nextKind = null;
    this._connectTimer = this._setTimeout(() => {
      this._connectTimer = null;
      if (this._ws === ws && !this._authenticated) this._dropSocket(4000, 'connect_timeout', 'connect_timeout');
    }, this._connectTimeout);
    ws.onopen = () => {
      if (this._ws !== ws) return;
      this._lastRx = this._now();
      const hello = { type: 'hello', id: this._nextId(), token };
      if (!this._echo) hello.echo = false;
      this._sendRaw(hello);
    };
    ws.onmessage = (ev) => {
      if (this._ws !== ws) return;
      this._onData(ev.data);
    };
    ws.onerror = () => {
      // A close event always follows; nothing to do here.
    };
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._onClose(ev && ev.code || 1006, ev && ev.reason || '');
    };
  }

  _dropSocket(code, reason, closeReason) {
    const ws = this._ws;
    if (!ws) return;
    try { ws.close(code, reason); } catch { /* already closing */ }
    if (closeReason) this._onClose(code, closeReason, true);
    else this._ws = null;
  }

  // Forget everything tied to the current socket; rooms and the outbox stay.
  _resetConnection() {
    this._ws = null;
    this._authenticated = false;
    this._stopHeartbeat();
    if (this._connectTimer) { this._clearTimeout(this._connectTimer); this._connectTimer = null; }
    for (const r of this._rooms.values()) { r.joined = false; r.joinSent = false; }
    for (const e of this._outbox) { e.sentOn = null; this._clearEntryTimer(e); }
    const lost = new MeridianError('disconnected', 'connection closed', { retryable: true });
    for (const [id, req] of this._requests) {
      this._requests.delete(id);
      req.reject(lost);
    }
  }

  _onClose(code, reason, local = false) {
    const wasAuthenticated = this._authenticated;
    this._resetConnection();
    if (!this._wanted) return;
    let [name, kind] = CLOSE_REASONS[code] || ['closed_' + code, 'backoff'];
    if (local) name = reason || name;
    if (this._nextKind) kind = this._nextKind; // a reconnect frame said so
    if (!wasAuthenticated) this._attempt++;
    this._setState(State.DISCONNECTED, name, { code, wasConnected: wasAuthenticated });
    if ((kind === 'auth' || kind === 'token') && !this._tokenProvider) {
      this._fatal(new MeridianError(name, `relay closed with ${code} and no token provider was given`, { final: true }));
      return;
    }
    this._scheduleReconnect(kind, name);
  }

  _fatal(err) {
    this._wanted = false;
    this._watchOnline(false);
    this._clearTimers();
    this.emit('error', err);
    this._failAll(err);
    this._setState(State.DISCONNECTED, err.code, { final: true });
  }

  // Browsers: when the network comes back, skip the rest of the backoff.
  _watchOnline(on) {
    const target = globalThis.window && typeof globalThis.window.addEventListener === 'function' ? globalThis.window : null;
    if (!target) return;
    if (on && !this._onOnline) {
      this._onOnline = () => {
        if (!this._wanted || !this._reconnectTimer) return;
        this._clearTimeout(this._reconnectTimer);
        this._reconnectTimer = null;
        this._open(State.RECONNECTING, 'online');
      };
      target.addEventListener('online', this._onOnline);
    } else if (!on && this._onOnline) {
      target.removeEventListener('online', this._onOnline);
      this._onOnline = null;
    }
  }

  _scheduleReconnect(kind, reason) {
    if (!this._wanted) return;
    let delay;
    switch (kind) {
      case 'now':
        delay = this._preferred.length > 0 ? 0 : Math.floor(this._random() * this._drainJitter);
        break;
      case 'token':
        this._needFreshToken = true;
        delay = 0;
        break;
      case 'auth':
        this._needFreshToken = true;
        delay = backoffDelay(this._attempt, this._backoff, this._random);
        break;
      case 'slow':
        delay = this._slowDelay + backoffDelay(this._attempt, this._backoff, this._random);
        break;
      case 'ratelimit':
        delay = this._rateLimitDelay + backoffDelay(this._attempt, this._backoff, this._random);
        break;
      default:
        delay = backoffDelay(this._attempt, this._backoff, this._random);
    }
    if (this._reconnectTimer) this._clearTimeout(this._reconnectTimer);
    this.emit('state', { state: State.RECONNECTING, reason, delay, attempt: this._attempt, phase: 'scheduled' });
    this.state = State.RECONNECTING;
    this._reconnectTimer = this._setTimeout(() => {
      this._reconnectTimer = null;
      this._open(State.RECONNECTING, reason);
    }, delay);
  }

  _clearTimers() {
    for (const k of ['_reconnectTimer', '_connectTimer', '_refreshTimer']) {
      if (this[k]) { this._clearTimeout(this[k]); this[k] = null; }
    }
    this._stopHeartbeat();
    for (const e of this._outbox) this._clearEntryTimer(e);
  }

  _failAll(err) {
    for (const w of this._connectWaiters) w.reject(err);
    this._connectWaiters = [];
    for (const r of this._rooms.values()) {
      for (const w of r.waiters) w.reject(err);
      r.waiters = [];
    }
    const out = this._outbox;
    this._outbox = [];
    for (const e of out) { this._clearEntryTimer(e); e.reject(err); }
    for (const [id, req] of this._requests) {
      this._requests.delete(id);
      req.reject(err);
    }
  }

  // Application-level keepalive: browsers cannot see WebSocket pings, so a
  // silent dead connection is detected with protocol `ping` frames.
  _startHeartbeat(seconds) {
    this._stopHeartbeat();
    const interval = Math.max(1, seconds || 25) * 1000;
    const tick = () => {
      this._heartbeatTimer = this._setTimeout(tick, interval);
      const idle = this._now() - this._lastRx;
      if (idle >= 2 * interval + 5000) {
        this._dropSocket(4000, 'heartbeat_timeout', 'heartbeat_timeout');
      } else if (idle >= interval) {
        this._sendRaw({ type: 'ping', id: this._nextId() });
      }
    };
    this._heartbeatTimer = this._setTimeout(tick, interval);
  }

  _stopHeartbeat() {
    if (this._heartbeatTimer) { this._clearTimeout(this._heartbeatTimer); this._heartbeatTimer = null; }
  }

  // ---------------------------------------------------------------- frames

  _nextId() { return ++this._reqCounter; }

  _sendRaw(frame) {
    const ws = this._ws;
    if (!ws || ws.readyState !== OPEN) return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  _request(frame) {
    return new Promise((resolve, reject) => {
      const id = this._nextId();
      this._requests.set(id, { resolve, reject, type: frame.type, room: frame.room });
      if (!this._sendRaw({ ...frame, id })) {
        this._requests.delete(id);
        reject(new MeridianError('disconnected', 'not connected', { retryable: true }));
      }
    });
  }

  _onData(data) {
    this._lastRx = this._now();
    if (typeof data !== 'string') {
      try { data = new TextDecoder().decode(data); } catch { return; }
    }
    let f;
    try { f = JSON.parse(data); } catch { return; }
    if (!f || typeof f !== 'object' || typeof f.type !== 'string') return;
    switch (f.type) {
      case 'welcome': this._onWelcome(f); break;
      case 'joined': this._onJoined(f); break;
      case 'left': this._onLeft(f); break;
      case 'refreshed': this._settle(f); break;
      case 'refresh_due': this._onRefreshDue(f); break;
      case 'signal':
        if (this._rooms.has(f.room)) this.emit('signal', { room: f.room, from: f.from, region: f.region, data: f.data });
        break;
      case 'ack': this._onAck(f); break;
      case 'message': this._onMessage(f); break;
      case 'commit': this._onCommit(f); break;
      case 'presence': this._onPresence(f); break;
      case 'pong': this._settle(f); break;
      case 'reconnect': this._onReconnectFrame(f); break;
      case 'error': this._onError(f); break;
      default: break; // newer relay, unknown frame: ignore
    }
  }

  _onLeft(f) {
    if (this._settle(f) || typeof f.reason !== 'string') {
      this.emit('left', { room: f.room });
      return;
    }
    // The relay ended the membership itself (a refreshed token no longer
    // allows the room): forget the room, so a reconnect does not rejoin it.
    const r = this._rooms.get(f.room);
    if (r) {
      this._rooms.delete(f.room);
      const err = new MeridianError(f.reason, `removed from room ${f.room}: ${f.reason}`, { final: true });
      for (const w of r.waiters) w.reject(err);
      this._outbox = this._outbox.filter((e) => {
        if (e.room !== f.room) return true;
        this._clearEntryTimer(e);
        e.reject(err);
        return false;
      });
    }
    this.emit('left', { room: f.room, reason: f.reason });
  }

  // The relay says the token expires soon: with a provider, fetch a new
  // one now (it goes to the relay as `refresh`).
  _onRefreshDue(f) {
    this.emit('refresh_due', { exp: f.exp ?? null });
    if (this._tokenProvider) this._getToken(true).catch((e) => this.emit('error', e));
  }

  _settle(f) {
    if (f.id === undefined) return null;
    const req = this._requests.get(f.id);
    if (!req) return null;
    this._requests.delete(f.id);
    req.resolve(f);
    return req;
  }

  _onWelcome(f) {
    if (this._authenticated) return; // one welcome per connection
    if (this._connectTimer) { this._clearTimeout(this._connectTimer); this._connectTimer = null; }
    this._authenticated = true;
    this._attempt = 0;
    this._urlIndex = 0;
    this.welcome = f;
    this.region = f.region ?? null;
    this.node = f.node ?? null;
    this.user = f.user ?? null;
    this.session = f.session ?? null;
    this.limits = f.limits ?? null;
    if (Array.isArray(f.fallback)) this._fallback = uniq(f.fallback);
    this._startHeartbeat(f.heartbeat);
    this._scheduleRefresh();
    this._setState(State.CONNECTED, 'welcome', { url: this._url, region: this.region, node: this.node });
    this.emit('welcome', f);
    const waiters = this._connectWaiters;
    this._connectWaiters = [];
    for (const w of waiters) w.resolve(f);
    for (const r of this._rooms.values()) if (!r.joinSent) this._sendJoin(r);
  }

  _sendJoin(r) {
    const frame = { type: 'join', room: r.name };
    if (r.lastSeq !== null) frame.since = r.lastSeq;
    else if (r.rewind) frame.rewind = r.rewind;
    r.joinSent = true;
    const since = frame.since;
    const rewind = frame.rewind;
    this._request(frame).then(
      (f) => this._roomJoined(r, f, since, rewind),
      (err) => {
        if (err.code === 'disconnected') return; // rejoined after reconnect
        if (this._rooms.get(r.name) === r) this._rooms.delete(r.name);
        const e = err instanceof MeridianError ? err : new MeridianError('join_failed', String(err));
        for (const w of r.waiters) w.reject(e);
        r.waiters = [];
        // Publishes queued for this room can never be sent.
        this._outbox = this._outbox.filter((entry) => {
          if (entry.room !== r.name) return true;
          this._clearEntryTimer(entry);
          entry.reject(e);
          return false;
        });
      });
  }

  _onJoined(f) {
    // Replies are handled through the request table; an unsolicited joined is ignored.
    this._settle(f);
  }

  _roomJoined(r, f, since, rewind) {
    if (this._rooms.get(r.name) !== r) return;
    r.joined = true;
    const recovered = since === undefined && rewind === undefined ? null : f.recovered !== false;
    const lastSeq = Number.isInteger(f.last_seq) ? f.last_seq : null;
    if (rewind !== undefined && r.lastSeq === null && Number.isInteger(f.since)) {
      // The rewound messages (seqs after f.since) follow `joined`: ordered
      // delivery starts with them.
      r.lastSeq = f.since;
      this._drainOrdered(r);
    } else if (since !== undefined && f.recovered === false && lastSeq !== null && lastSeq > (r.lastSeq ?? 0)) {
      // Not everything could be replayed: the app pages (from, to] over
      // the HTTP history API; ordered delivery continues after last_seq.
      const from = r.lastSeq ?? since;
      this._advanceTo(r, lastSeq);
      this.emit('gap', { room: r.name, after: from, last_seq: lastSeq });
    } else if (r.lastSeq === null && lastSeq !== null) {
      r.lastSeq = lastSeq; // baseline for a fresh join
      this._drainOrdered(r);
    }
    const info = { room: r.name, recovered, since: since ?? null, last_seq: lastSeq, resumed: since !== undefined };
    if (rewind !== undefined) {
      info.rewind = rewind;
      info.history = Number.isInteger(f.history) ? f.history : 0;
      if (Number.isInteger(f.since)) info.since = f.since;
    }
    r.info = info;
    this.emit('joined', info);
    const waiters = r.waiters;
    r.waiters = [];
    for (const w of waiters) w.resolve(info);
    if (r.presence) this.presence(r.name).catch(() => {});
    this._flushRoom(r.name);
  }

  // ------------------------------------------------------------- publishes

  _flushRoom(room) {
    if (!this._authenticated) return;
    const r = this._rooms.get(room);
    if (!r || !r.joined) return;
    for (const e of this._outbox) {
      if (e.room === room && e.sentOn === null && e.timer === null) this._sendPublish(e);
    }
  }

  _sendPublish(e) {
    const frame = { type: 'publish', id: this._nextId(), room: e.room, mid: e.mid, data: e.data };
    const text = JSON.stringify(frame);
    const max = this.limits && this.limits.max_message_bytes;
    if (max && new TextEncoder().encode(text).length > max) {
      this._removeEntry(e);
      e.reject(new MeridianError('too_large', `message is larger than ${max} bytes`, { final: true }));
      return;
    }
    e.id = frame.id;
    e.sentOn = this._ws;
    try {
      this._ws.send(text);
    } catch {
      e.sentOn = null;
    }
  }

  _removeEntry(e) {
    const i = this._outbox.indexOf(e);
    if (i >= 0) this._outbox.splice(i, 1);
    this._clearEntryTimer(e);
  }

  _clearEntryTimer(e) {
    if (e.timer) { this._clearTimeout(e.timer); e.timer = null; }
  }

  _entryFor(f) {
    return this._outbox.find((e) =>
      (f.mid !== undefined && e.mid === f.mid && (f.room === undefined || e.room === f.room)) ||
      (f.id !== undefined && e.id === f.id && e.sentOn !== null));
  }

  _onAck(f) {
    const e = this._entryFor(f);
    if (!e) return;
    this._removeEntry(e);
    const r = this._rooms.get(e.room);
    if (!this._echo && r && typeof f.msg_id === 'string' && !r.seen.has(f.msg_id)) {
      // No echo comes (no `message` event either): the message is known from
      // here, so that its `commit` and `ordered` events carry it.
      const message = { room: e.room, msg_id: f.msg_id, from: this.user, mid: e.mid, data: e.data };
      r.seen.set(f.msg_id, { message, seq: null });
    }
    e.resolve({ room: e.room, msg_id: f.msg_id, mid: e.mid });
  }

  _onError(f) {
    const err = new MeridianError(f.code || 'error', f.message, { retryable: !!f.retryable, frame: f });
    if (f.id !== undefined) {
      const e = this._outbox.find((x) => x.id === f.id && x.sentOn !== null);
      if (e) {
        if (f.retryable) {
          // rate_limited / unavailable / internal: try again later, same mid.
          e.sentOn = null;
          e.retries++;
          const delay = backoffDelay(e.retries, { initial: this._publishRetryDelay, max: 30000, factor: 2 }, this._random) +
            this._publishRetryDelay;
          e.timer = this._setTimeout(() => { e.timer = null; this._flushRoom(e.room); }, delay);
        } else {
          this._removeEntry(e);
          e.reject(err);
        }
        return;
      }
      const req = this._requests.get(f.id);
      if (req) {
        this._requests.delete(f.id);
        req.reject(err);
        return;
      }
    }
    this.emit('error', err);
  }

  // ------------------------------------------------- delivery and ordering

  _onMessage(f) {
    const r = this._rooms.get(f.room);
    if (!r || typeof f.msg_id !== 'string') return;
    const known = r.seen.get(f.msg_id);
    const hasSeq = Number.isInteger(f.seq);
    if (!known) {
      // A replayed message at or below the contiguous seq was seen before
      // (its identity may have left the bounded set): drop it.
      if (hasSeq && r.lastSeq !== null && f.seq <= r.lastSeq) return;
      const message = { ...f };
      delete message.type;
      r.seen.set(f.msg_id, { message, seq: null });
      this.emit('message', message);
    }
    if (hasSeq) this._committed(r, f.msg_id, f.seq);
  }

  _onCommit(f) {
    const r = this._rooms.get(f.room);
    if (!r || typeof f.msg_id !== 'string' || !Number.isInteger(f.seq)) return;
    this._committed(r, f.msg_id, f.seq);
  }

  _committed(r, msgId, seq) {
    let entry = r.seen.get(msgId);
    if (entry && entry.seq !== null) return; // commit already known
    if (!entry) {
      if (r.lastSeq !== null && seq <= r.lastSeq) return;
      entry = { message: null, seq: null };
    }
    entry.seq = seq;
    r.seen.set(msgId, entry);
    if (entry.message) entry.message.seq = seq;
    this.emit('commit', { room: r.name, msg_id: msgId, seq, message: entry.message });
    if (r.lastSeq === null) r.lastSeq = seq - 1; // first seq after a fresh join
    if (seq <= r.lastSeq) return;
    r.pending.set(seq, { msg_id: msgId, message: entry.message });
    if (r.pending.size > this._dedupSize) {
      // A hole that does not fill: give up on it rather than buffer forever.
      const first = Math.min(...r.pending.keys());
      const after = r.lastSeq;
      r.lastSeq = first - 1;
      this.emit('gap', { room: r.name, after, last_seq: first - 1 });
    }
    this._drainOrdered(r);
  }

  _drainOrdered(r) {
    for (const s of r.pending.keys()) if (s <= r.lastSeq) r.pending.delete(s);
    while (r.pending.has(r.lastSeq + 1)) {
      const next = r.pending.get(r.lastSeq + 1);
      r.pending.delete(r.lastSeq + 1);
      r.lastSeq++;
      this.emit('ordered', { room: r.name, seq: r.lastSeq, msg_id: next.msg_id, message: next.message });
    }
  }

  _advanceTo(r, seq) {
    if (r.lastSeq === null || seq > r.lastSeq) r.lastSeq = seq;
    this._drainOrdered(r);
  }

  // -------------------------------------------------------------- presence

  _onPresence(f) {
    if (f.id !== undefined && this._requests.has(f.id)) {
      this._settle(f);
      this.emit('presence', { room: f.room, members: f.members || [] });
      return;
    }
    const r = this._rooms.get(f.room);
    if (r && r.presence && typeof f.user === 'string') {
      this._applyPresence(r, f);
      if (r.presenceLog) r.presenceLog.push(f);
      this.emit('members', { room: r.name, members: this.members(r.name) });
    }
    this.emit('presence', { room: f.room, event: f.event, user: f.user, sessions: f.sessions });
  }

  _applyPresence(r, f) {
    // Relays send the user's total session count with join and update events.
    const n = typeof f.sessions === 'number' && f.sessions > 0 ? f.sessions : null;
    if (f.event === 'join') r.members.set(f.user, n || Math.max(1, r.members.get(f.user) || 0));
    else if (f.event === 'update' && n) r.members.set(f.user, n);
    else if (f.event === 'leave') r.members.delete(f.user);
  }

  _setMembers(r, list, replay = []) {
    r.members = new Map();
    for (const m of list) if (m && typeof m.user === 'string') r.members.set(m.user, m.sessions || 1);
    for (const f of replay) this._applyPresence(r, f);
    this.emit('members', { room: r.name, members: this.members(r.name) });
  }

  // ------------------------------------------------------------- reconnect

  _onReconnectFrame(f) {
    const urls = Array.isArray(f.urls) ? uniq(f.urls) : [];
    if (urls.length > 0) {
      this._preferred = urls;
      this._fallback = uniq([...urls, ...this._fallback]);
    }
    this.emit('state', { state: State.RECONNECTING, reason: f.reason || 'reconnect', urls, phase: 'requested' });
    // Move now: closing from our side is safe (unacked publishes stay in the outbox).
    this._nextKind = 'now';
    const ws = this._ws;
    if (ws) {
      try { ws.close(1000, 'reconnect'); } catch { /* ignore */ }
      this._onClose(1012, f.reason || 'drain', true);
    }
  }
}

export default MeridianClient;
