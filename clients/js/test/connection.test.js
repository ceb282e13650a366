import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, tokenExpiry, MeridianClient } from '../src/meridian.js';
import { setup, accept, answerJoins, flush, makeToken, FakeWebSocket } from './helpers.js';

test('backoffDelay: full jitter within [0, min(max, initial*factor^n)]', () => {
  const opts = { initial: 500, max: 30000, factor: 2 };
  assert.equal(backoffDelay(0, opts, () => 0), 0);
  assert.equal(backoffDelay(0, opts, () => 0.999999), 499);
  assert.equal(backoffDelay(3, opts, () => 0.5), 2000);
  assert.equal(backoffDelay(20, opts, () => 0.999999), 29999);
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(4, opts);
    assert.ok(d >= 0 && d < 8000);
  }
});

test('tokenExpiry reads exp from a JWT and tolerates garbage', () => {
  assert.equal(tokenExpiry(makeToken('alice', 1234)), 1234);
  assert.equal(tokenExpiry('not a jwt'), null);
  assert.equal(tokenExpiry('a.@@@.c'), null);
});

test('constructor validates url and token', () => {
  assert.throws(() => new MeridianClient({ token: 't' }), /url/);
  assert.throws(() => new MeridianClient({ url: 'ws://x/' }), /token/);
});

test('hello is the first frame; welcome resolves connect() and reports state', async () => {
  const ctx = setup();
  const p = ctx.client.connect();
  await flush();
  const ws = ctx.current();
  assert.equal(ws.url, 'ws://main.example/');
  ws.open();
  assert.deepEqual(ws.sent[0].type, 'hello');
  assert.equal(ws.sent[0].token, 'tok');
  ws.deliver({ type: 'welcome', id: ws.sent[0].id, region: 'eu-west', node: 'relay-1', user: 'alice', session: 'x', heartbeat: 25 });
  const w = await p;
  assert.equal(w.region, 'eu-west');
  assert.equal(ctx.client.state, 'connected');
  assert.equal(ctx.client.region, 'eu-west');
  assert.deepEqual(ctx.of('state').map((s) => s.state), ['connecting', 'connected']);
  ctx.client.close();
  assert.equal(ctx.client.state, 'disconnected');
  assert.equal(ws.closedWith.code, 1000);
});

test('reconnects with exponential backoff and full jitter; attempts reset after welcome', async () => {
  const ctx = setup({ backoff: { initial: 100, max: 1000, factor: 2 } });
  ctx.client.connect();
  await accept(ctx);
  ctx.current().serverClose(1006);
  await flush();
  // First reconnect after a working connection: attempt 0 -> [0, 100)
  let sched = ctx.of('state').filter((s) => s.phase === 'scheduled');
  assert.equal(sched.at(-1).reason, 'connection_lost');
  assert.equal(sched.at(-1).delay, 99);
  // Every failed attempt doubles the window, up to max.
  const delays = [];
  for (let i = 0; i < 6; i++) {
    await ctx.clock.tick(ctx.clock.pendingDelays()[0]);
    ctx.current().fail();
    await flush();
    sched = ctx.of('state').filter((s) => s.phase === 'scheduled');
    delays.push(sched.at(-1).delay);
  }
  assert.deepEqual(delays, [199, 399, 799, 999, 999, 999]);
  // Success resets the attempt counter.
  await ctx.clock.tick(999);
  await accept(ctx);
  ctx.current().serverClose(1011);
  await flush();
  sched = ctx.of('state').filter((s) => s.phase === 'scheduled');
  assert.equal(sched.at(-1).delay, 99);
  assert.equal(sched.at(-1).reason, 'internal_error');
  ctx.client.close();
});

test('jitter really is random (full range used)', async () => {
  let r = 0;
  const seq = [0.1, 0.9, 0.5];
  const ctx = setup({ random: () => seq[r++ % seq.length], backoff: { initial: 1000, max: 1000 } });
  ctx.client.connect();
  await accept(ctx);
  ctx.current().serverClose(1006);
  await flush();
  assert.equal(ctx.of('state').filter((s) => s.phase === 'scheduled').at(-1).delay, 100);
  ctx.client.close();
});

test('state events carry reasons: disconnected -> reconnecting -> connected', async () => {
  const ctx = setup();
  ctx.client.connect();
  await accept(ctx);
  ctx.current().serverClose(4008);
  await flush();
  await ctx.clock.tick(1000);
  await accept(ctx);
  const tail = ctx.of('state').slice(2).map((s) => `${s.state}:${s.reason}${s.phase ? ':' + s.phase : ''}`);
  assert.deepEqual(tail, [
    'disconnected:slow_consumer',
    'reconnecting:slow_consumer:scheduled',
    'reconnecting:slow_consumer:attempt',
    'connected:welcome',
  ]);
  ctx.client.close();
});

test('fallback URLs from welcome are tried when the main URL fails', async () => {
  const ctx = setup();
  ctx.client.connect();
  await accept(ctx, { fallback: ['ws://us-east.example/', 'ws://ap-south.example/'] });
  assert.deepEqual(ctx.client.urls, ['ws://main.example/', 'ws://us-east.example/', 'ws://ap-south.example/']);
  ctx.current().serverClose(1006);
  await flush();
  const urls = [];
  for (let i = 0; i < 4; i++) {
    await ctx.clock.tick(ctx.clock.pendingDelays()[0]);
    urls.push(ctx.current().url);
    ctx.current().fail();
    await flush();
  }
  assert.deepEqual(urls, ['ws://main.example/', 'ws://us-east.example/', 'ws://ap-south.example/', 'ws://main.example/']);
  // Connected through a fallback: the next outage starts with the main URL again.
  await ctx.clock.tick(ctx.clock.pendingDelays()[0]);
  assert.equal(ctx.current().url, 'ws://us-east.example/');
  await accept(ctx);
  ctx.current().serverClose(1001);
  await flush();
  await ctx.clock.tick(ctx.clock.pendingDelays()[0]);
  assert.equal(ctx.current().url, 'ws://main.example/');
  ctx.client.close();
});

test('reconnect frame: move at once to the given URLs, rooms resume there', async () => {
  const ctx = setup();
  ctx.client.connect();
  const ws = await accept(ctx);
  ctx.client.join('general');
  await flush();
  await answerJoins(ws);
  ws.deliver({ type: 'reconnect', reason: 'draining', urls: ['ws://us-east.example/'] });
  await flush();
  assert.equal(ws.closedWith.code, 1000);
  assert.deepEqual(ctx.clock.pendingDelays(), [0]);
  await ctx.clock.tick(0);
  assert.equal(ctx.current().url, 'ws://us-east.example/');
  const ws2 = await accept(ctx);
  assert.equal(ws2.last('join').room, 'general');
  const states = ctx.of('state').map((s) => `${s.state}:${s.reason}`);
  assert.ok(states.includes('reconnecting:draining'));
  // The relay's later 1012 close on the old socket is ignored.
  ws.onclose && ws.onclose({ code: 1012 });
  await flush();
  assert.equal(ctx.client.state, 'connected');
  ctx.client.close();
});

test('1012 without URLs: reconnect after a short random delay', async () => {
  const ctx = setup({ drainJitter: 800 });
  ctx.client.connect();
  await accept(ctx);
  ctx.current().serverClose(1012);
  await flush();
  const s = ctx.of('state').filter((x) => x.phase === 'scheduled').at(-1);
  assert.equal(s.reason, 'drain');
  assert.ok(s.delay < 800);
  ctx.client.close();
});

test('4029 and client-bug closes (1003/1009/4009) never reconnect fast', async () => {
  for (const [code, min] of [[4029, 5000], [4009, 30000], [1009, 30000], [1003, 30000]]) {
    const ctx = setup({ random: () => 0 });
    ctx.client.connect();
    await accept(ctx);
    ctx.current().serverClose(code);
    await flush();
    const s = ctx.of('state').filter((x) => x.phase === 'scheduled').at(-1);
    assert.ok(s.delay >= min, `close ${code}: delay ${s.delay} >= ${min}`);
    ctx.client.close();
  }
});

test('token provider: called at connect, again before exp, and after 4010 / 4001', async () => {
  const clockStart = 1_764_300_000_000;
  let n = 0;
  const calls = [];
  const provider = async () => {
    n++;
    calls.push(n);
    return makeToken('alice', Math.floor(clockStart / 1000) + 120 * n);
  };
  const ctx = setup({ token: provider, tokenRefreshMargin: 30000 });
  ctx.client.connect();
  let ws = await accept(ctx);
  assert.equal(n, 1);
  assert.equal(ws.sent[0].token, makeToken('alice', Math.floor(clockStart / 1000) + 120));
  // 30 s before exp the provider is called again (token kept for the next hello).
  await ctx.clock.tick(89_000);
  assert.equal(n, 1);
  await ctx.clock.tick(2_000);
  assert.equal(n, 2);
  // The relay closes with 4010 at exp: reconnect at once with the prefetched token.
  ctx.current().serverClose(4010);
  await flush();
  assert.equal(ctx.of('state').filter((s) => s.phase === 'scheduled').at(-1).delay, 0);
  await ctx.clock.tick(0);
  ws = await accept(ctx);
  assert.equal(ws.sent[0].token, makeToken('alice', Math.floor(clockStart / 1000) + 240));
  assert.equal(n, 2, 'no extra call: the token was already fresh');
  // 4001 with the current token: the provider is asked again.
  ctx.current().serverClose(4001);
  await flush();
  await ctx.clock.tick(ctx.clock.pendingDelays()[0]);
  await flush();
  assert.equal(n, 3);
  assert.equal(ctx.current().sent.length, 0); // not open yet
  ctx.current().open();
  assert.equal(ctx.current().sent[0].token, makeToken('alice', Math.floor(clockStart / 1000) + 360));
  ctx.client.close();
});

test('a static token that expires ends the client with a final error', async () => {
  const ctx = setup();
  ctx.client.connect();
  const ws = await accept(ctx);
  ctx.client.join('general');
  await flush();
  await answerJoins(ws);
  const pub = ctx.client.publish('general', { text: 'x' });
  ws.serverClose(4010);
  await assert.rejects(pub, (e) => e.code === 'token_expired' && e.final === true);
  await flush();
  assert.equal(ctx.client.state, 'disconnected');
  assert.equal(ctx.of('state').at(-1).final, true);
  assert.equal(ctx.of('error').at(-1).code, 'token_expired');
  assert.deepEqual(ctx.clock.pendingDelays(), []);
});

test('a provider that throws is retried with backoff, not fatal', async () => {
  let fail = true;
  const ctx = setup({ token: () => { if (fail) throw new Error('auth server down'); return makeToken('a', 9e9); } });
  ctx.client.connect();
  await flush();
  assert.equal(FakeWebSocket.instances.length, 0);
  assert.equal(ctx.of('error')[0].code, 'token_error');
  fail = false;
  await ctx.clock.tick(ctx.clock.pendingDelays()[0]);
  await accept(ctx);
  assert.equal(ctx.client.state, 'connected');
  ctx.client.close();
});

test('connect timeout: no welcome in time -> drop and retry', async () => {
  const ctx = setup({ connectTimeout: 5000 });
  ctx.client.connect().catch(() => {});
  await flush();
  ctx.current().open(); // hello sent, relay never answers
  await ctx.clock.tick(5000);
  assert.equal(ctx.of('state').filter((s) => s.state === 'disconnected').at(-1).reason, 'connect_timeout');
  assert.equal(ctx.sockets()[0].closedWith.code, 4000);
  ctx.client.close();
});

test('heartbeat: ping when idle, drop a silent connection', async () => {
  const ctx = setup();
  ctx.client.connect();
  const ws = await accept(ctx, { heartbeat: 10 });
  await ctx.clock.tick(10_000);
  const ping = ws.last('ping');
  assert.ok(ping, 'ping sent after 10 s of silence');
  ws.deliver({ type: 'pong', id: ping.id, ts: 1 }); // t = 10 s
  await ctx.clock.tick(10_000);
  assert.equal(ws.framesOf('ping').length, 2);
  await ctx.clock.tick(10_000);
  assert.equal(ctx.client.state, 'connected'); // 20 s of silence: still fine
  await ctx.clock.tick(10_000); // 30 s >= 2 x heartbeat + 5 s: dead
  assert.equal(ws.closedWith && ws.closedWith.code, 4000);
  assert.equal(ctx.of('state').filter((s) => s.state === 'disconnected').at(-1).reason, 'heartbeat_timeout');
  ctx.client.close();
});

test('close() stops reconnecting; connect() again rejoins rooms', async () => {
  const ctx = setup();
  ctx.client.connect();
  let ws = await accept(ctx);
  ctx.client.join('general');
  await flush();
  await answerJoins(ws);
  ctx.client.close();
  await flush();
  assert.deepEqual(ctx.clock.pendingDelays(), []);
  ctx.client.connect();
  ws = await accept(ctx);
  assert.equal(ws.last('join').room, 'general');
  ctx.client.close();
});

test('token refresh: far-off exp does not overflow timers, short-lived tokens do not loop', async () => {
  const start = 1_764_300_000_000;
  let n = 0;
  const ctx = setup({ token: () => { n++; return makeToken('a', Math.floor(start / 1000) + 10 * 365 * 86400); } });
  ctx.client.connect();
  await accept(ctx);
  await ctx.clock.tick(60_000);
  assert.equal(n, 1, '10-year token: asked once');
  assert.ok(ctx.clock.pendingDelays().every((d) => d <= 0x7fffffff));
  ctx.client.close();

  let m = 0;
  const ctx2 = setup({
    tokenRefreshMargin: 30_000,
    token: () => { m++; return makeToken('a', Math.floor(ctx2.clock.now() / 1000) + 20); },
  });
  ctx2.client.connect();
  await accept(ctx2);
  assert.equal(m, 1);
  await ctx2.clock.tick(9_000);
  assert.equal(m, 1, 'not before half of a 20 s lifetime');
  await ctx2.clock.tick(1_000);
  assert.equal(m, 2);
  await ctx2.clock.tick(30_000);
  assert.ok(m <= 6, `about one call per half-life, got ${m}`);
  ctx2.client.close();
});

test('close() then connect() while the token provider is pending opens one socket', async () => {
  let release;
  const gate = new Promise((r) => { release = r; });
  const ctx = setup({ token: () => gate.then(() => makeToken('a', 9e9)) });
  ctx.client.connect().catch(() => {});
  await flush();
  ctx.client.close();
  ctx.client.connect().catch(() => {});
  release();
  await flush();
  assert.equal(ctx.sockets().length, 1);
  ctx.client.close();
});

test('browser online event skips the remaining backoff', async () => {
  const target = new EventTarget();
  globalThis.window = target;
  try {
    const ctx = setup({ backoff: { initial: 60_000, max: 60_000 } });
    ctx.client.connect();
    await accept(ctx);
    ctx.current().serverClose(1006);
    await flush();
    assert.equal(ctx.sockets().length, 1);
    target.dispatchEvent(new Event('online'));
    await flush();
    assert.equal(ctx.sockets().length, 2);
    assert.equal(ctx.of('state').at(-1).reason, 'online');
    ctx.client.close();
    target.dispatchEvent(new Event('online'));
    await flush();
    assert.equal(ctx.sockets().length, 2, 'listener removed by close()');
  } finally {
    delete globalThis.window;
  }
});
