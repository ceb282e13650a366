// Token refresh without reconnecting (docs/protocol.md, "Token refresh"):
// the SDK hands a new token from getToken() to the live session, keeps its
// rooms, and only reconnects (4010) when the relay refused the refresh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setup, accept, answerJoins, flush, makeToken, msg } from './helpers.js';

const start = 1_764_300_000_000;
const exp = (s) => Math.floor(start / 1000) + s;

test('getToken: refresh_due fetches a token and refreshes the same session', async () => {
  let n = 0;
  const ctx = setup({ getToken: async () => makeToken('alice', exp(600 * ++n)) });
  const refreshed = [];
  ctx.client.on('refreshed', (ev) => refreshed.push(ev));
  ctx.client.connect();
  const ws = await accept(ctx);
  ctx.client.join('general');
  await flush();
  await answerJoins(ws);
  ws.deliver({ type: 'refresh_due', exp: exp(600) });
  await flush();
  assert.equal(n, 2);
  const r = ws.last('refresh');
  assert.equal(r.token, makeToken('alice', exp(1200)));
  ws.deliver({ type: 'refreshed', id: r.id, exp: exp(1200) });
  await flush();
  assert.deepEqual(refreshed, [{ exp: exp(1200) }]);
  // Same socket, no new hello, no rejoin; messages keep flowing.
  assert.equal(ctx.sockets().length, 1);
  assert.equal(ws.framesOf('hello').length, 1);
  assert.equal(ws.framesOf('join').length, 1);
  ws.deliver(msg('general', 'm1'));
  assert.deepEqual(ctx.of('message').map((m) => m.msg_id), ['m1']);
  ctx.client.close();
});

test('the proactive refresh before exp also goes to the live session', async () => {
  let n = 0;
  const ctx = setup({ getToken: async () => makeToken('alice', exp(120 * ++n)), tokenRefreshMargin: 30000 });
  ctx.client.connect();
  const ws = await accept(ctx);
  for (let t = 0; t < 91; t += 13) { // the relay stays audible: no heartbeat time-out
    await ctx.clock.tick(13_000);
    ws.deliver({ type: 'pong' });
  }
  assert.equal(n, 2);
  assert.equal(ws.last('refresh').token, makeToken('alice', exp(240)));
  ctx.client.close();
});

test('a refused refresh is reported; the session ends with 4010 and reconnects with a new token', async () => {
  let n = 0;
  const ctx = setup({ getToken: async () => makeToken('alice', exp(600 * ++n)) });
  ctx.client.connect();
  const ws = await accept(ctx);
  ws.deliver({ type: 'refresh_due', exp: exp(600) });
  await flush();
  const r = ws.last('refresh');
  ws.deliver({ type: 'error', id: r.id, code: 'user_mismatch', message: 'the token is for another user', retryable: false });
  await flush();
  assert.equal(ctx.of('error').at(-1).code, 'user_mismatch');
  ws.serverClose(4010);
  await flush();
  await ctx.clock.tick(0);
  const ws2 = await accept(ctx);
  assert.equal(ws2.framesOf('hello').length, 1);
  assert.equal(n, 3, 'the refused token is not used again');
  assert.equal(ws2.last('hello').token, makeToken('alice', exp(1800)));
  ctx.client.close();
});

test('a room the refreshed token no longer allows is forgotten, not rejoined', async () => {
  const ctx = setup({ getToken: async () => makeToken('alice', exp(600)) });
  const left = [];
  ctx.client.on('left', (ev) => left.push(ev));
  ctx.client.connect();
  const ws = await accept(ctx);
  ctx.client.join('team-a');
  ctx.client.join('other');
  await flush();
  await answerJoins(ws);
  const pub = ctx.client.publish('other', { text: 'x' });
  await flush();
  ws.deliver({ type: 'left', room: 'other', reason: 'forbidden' });
  await assert.rejects(pub, (e) => e.code === 'forbidden' && e.final === true);
  assert.deepEqual(left, [{ room: 'other', reason: 'forbidden' }]);
  assert.deepEqual(ctx.client.rooms(), ['team-a']);
  ws.serverClose(1006);
  await flush();
  await ctx.clock.tick(ctx.clock.pendingDelays()[0]);
  const ws2 = await accept(ctx);
  assert.deepEqual(ws2.framesOf('join').map((j) => j.room), ['team-a']);
  ctx.client.close();
});
