// Test doubles for the SDK's unit tests: a scripted WebSocket class and a
// manual clock. They stand in for the transport, not for the relay's logic:
// each test plays the relay's side of docs/protocol.md frame by frame.
import { MeridianClient } from '../src/meridian.js';

export class FakeWebSocket {
  static instances = [];
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    this.onopen = null;
    this.onmessage = null;
    this.onerror = null;
    this.onclose = null;
    FakeWebSocket.instances.push(this);
  }

  send(text) {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(JSON.parse(text));
  }

  close(code = 1000, reason = '') {
    if (this.readyState >= 2) return;
    this.closedWith = { code, reason };
    this.readyState = 3;
    // Like a browser, the close event arrives asynchronously.
    queueMicrotask(() => this.onclose && this.onclose({ code, reason }));
  }

  // ---- the relay's side
  open() {
    this.readyState = 1;
    this.onopen && this.onopen({});
  }

  deliver(frame) {
    this.onmessage && this.onmessage({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
  }

  serverClose(code, reason = '') {
    this.readyState = 3;
    this.onclose && this.onclose({ code, reason });
  }

  fail() {
    // Connection refused: error, then close 1006, never opened.
    this.readyState = 3;
    this.onerror && this.onerror({});
    this.onclose && this.onclose({ code: 1006, reason: '' });
  }

  framesOf(type) {
    return this.sent.filter((f) => f.type === type);
  }

  last(type) {
    const l = this.framesOf(type);
    return l[l.length - 1];
  }
}

export class ManualClock {
  constructor(start = 1_764_300_000_000) {
    this.t = start;
    this.timers = new Map();
    this.seq = 0;
    this.setTimeout = (fn, ms) => {
      const id = ++this.seq;
      this.timers.set(id, { at: this.t + Math.max(0, ms || 0), fn, id });
      return id;
    };
    this.clearTimeout = (id) => { this.timers.delete(id); };
    this.now = () => this.t;
  }

  // Advance time, firing due timers in order (and settling promises between).
  async tick(ms) {
    const end = this.t + ms;
    for (;;) {
      await flush();
      let next = null;
      for (const tm of this.timers.values()) if (tm.at <= end && (!next || tm.at < next.at || (tm.at === next.at && tm.id < next.id))) next = tm;
      if (!next) break;
      this.timers.delete(next.id);
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
    await flush();
  }

  pendingDelays() {
    return [...this.timers.values()].map((t) => t.at - this.t).sort((a, b) => a - b);
  }
}

export async function flush() {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

// A JWT-shaped token (unsigned; the SDK only reads exp).
export function makeToken(sub, exp) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, exp })}.sig`;
}

export function welcomeFrame(ws, extra = {}) {
  const hello = ws.last('hello');
  return {
    type: 'welcome', id: hello && hello.id, region: 'eu-west', node: 'relay-1', session: 's1', user: 'alice',
    heartbeat: 25, limits: { max_message_bytes: 65536, publish_rate: 50, publish_burst: 100, max_rooms: 100, idle_timeout: 60 },
    ...extra,
  };
}

export function setup(options = {}) {
  FakeWebSocket.instances = [];
  const clock = new ManualClock();
  const events = [];
  const client = new MeridianClient({
    url: 'ws://main.example/',
    token: 'tok',
    WebSocket: FakeWebSocket,
    random: () => 1 - 1e-9, // jitter at the top of the window: deterministic
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    ...options,
  });
  for (const name of ['state', 'message', 'commit', 'ordered', 'gap', 'joined', 'presence', 'members', 'error', 'welcome']) {
    client.on(name, (ev) => events.push({ name, ev }));
  }
  const sockets = () => FakeWebSocket.instances;
  const current = () => FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
  return { client, clock, events, sockets, current, of: (n) => events.filter((e) => e.name === n).map((e) => e.ev) };
}

// Open the latest socket and answer hello with welcome.
export async function accept(ctx, extra = {}) {
  await flush();
  const ws = ctx.current();
  ws.open();
  ws.deliver(welcomeFrame(ws, extra));
  await flush();
  return ws;
}

// Answer every join sent on ws that has no reply yet.
export async function answerJoins(ws, extra = {}) {
  ws._answered = ws._answered || new Set();
  for (const j of ws.framesOf('join')) {
    if (ws._answered.has(j.id)) continue;
    ws._answered.add(j.id);
    const x = typeof extra === 'function' ? extra(j) : extra;
    ws.deliver({ type: 'joined', id: j.id, room: j.room, ...x });
  }
  await flush();
}

export function msg(room, msgId, extra = {}) {
  return { type: 'message', room, msg_id: msgId, from: 'bob', mid: 'b-' + msgId, region: 'us-east', node: 'relay-2', ts: 1, data: { text: msgId }, ...extra };
}
