import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setup, accept, answerJoins, flush } from './helpers.js';

function ack(ws, frame, msgId = 'id-' + frame.mid) {
  ws.deliver({ type: 'ack', id: frame.id, room: frame.room, msg_id: msgId, mid: frame.mid });
}

async function joined(options = {}) {
  const ctx = setup({ midPrefix: 'c1', ...options });
  ctx.client.connect();
  const ws = await accept(ctx);
  ctx.client.join('general');
  await flush();
  await answerJoins(ws);
  return { ctx, ws };
}

test('each publish gets its own mid (prefix-counter) and resolves on ack', async () => {
  const { ctx, ws } = await joined();
  const p1 = ctx.client.publish('general', { text: 'one' });
  const p2 = ctx.client.publish('general', { text: 'two' });
  await flush();
  const [f1, f2] = ws.framesOf('publish');
  assert.equal(f1.mid, 'c1-1');
  assert.equal(f2.mid, 'c1-2');
  assert.deepEqual(f1.data, { text: 'one' });
  assert.equal(ctx.client.outboxSize, 2);
  ack(ws, f2);
  ack(ws, f1);
  assert.deepEqual(await p1, { room: 'general', msg_id: 'id-c1-1', mid: 'c1-1' });
  assert.deepEqual(await p2, { room: 'general', msg_id: 'id-c1-2', mid: 'c1-2' });
  assert.equal(ctx.client.outboxSize, 0);
  ctx.client.close();
});

test('default mid prefix is random per client', async () => {
  const a = setup();
  const b = setup();
  assert.notEqual(a.client._midPrefix, b.client._midPrefix);
  assert.match(a.client._midPrefix, /^[a-z0-9]{10}$/);
});

test('publish while disconnected waits in the outbox and goes out after the room is joined', async () => {
  const ctx = setup({ midPrefix: 'c1' });
  ctx.client.join('general');
  const p = ctx.client.publish('general', 'early');
  ctx.client.connect();
  const ws = await accept(ctx);
  assert.equal(ws.framesOf('publish').length, 0, 'not before joined');
  await answerJoins(ws);
  const f = ws.last('publish');
  assert.equal(f.mid, 'c1-1');
  ack(ws, f);
  assert.equal((await p).mid, 'c1-1');
  ctx.client.close();
});

test('unacknowledged publishes are retried with the same mid after a reconnect, in order, once each', async () => {
  const { ctx, ws } = await joined();
  const settled = [];
  const ps = [1, 2, 3].map((n) => ctx.client.publish('general', { n }).then(
    (a) => settled.push('ok:' + a.mid), (e) => settled.push('err:' + e.code)));
  await flush();
  ack(ws, ws.framesOf('publish')[0]); // only the first is acked
  await flush();
  ws.serverClose(1006);
  await flush();
  assert.deepEqual(settled, ['ok:c1-1'], 'a disconnect does not reject');
  assert.equal(ctx.client.outboxSize, 2);
  await ctx.clock.tick(ctx.clock.pendingDelays()[0]);
  const ws2 = await accept(ctx);
  assert.equal(ws2.framesOf('publish').length, 0, 'waits for the rejoin');
  await answerJoins(ws2);
  const resent = ws2.framesOf('publish');
  assert.deepEqual(resent.map((f) => f.mid), ['c1-2', 'c1-3']);
  assert.deepEqual(resent.map((f) => f.data.n), [2, 3]);
  // The relay acks the retried message again (same identity -> same msg_id).
  resent.forEach((f) => ack(ws2, f));
  await Promise.all(ps);
  assert.deepEqual(settled, ['ok:c1-1', 'ok:c1-2', 'ok:c1-3']);
  // A second reconnect sends nothing: the outbox is empty.
  ws2.serverClose(1006);
  await flush();
  await ctx.clock.tick(ctx.clock.pendingDelays()[0]);
  const ws3 = await accept(ctx);
  await answerJoins(ws3);
  assert.equal(ws3.framesOf('publish').length, 0);
  ctx.client.close();
});

test('outbox survives several failed attempts and a move to a fallback region', async () => {
  const { ctx, ws } = await joined();
  ws.deliver({ type: 'reconnect', reason: 'draining', urls: ['ws://us-east.example/'] });
  const p = ctx.client.publish('general', 'while moving');
  await flush();
  await ctx.clock.tick(0);
  ctx.current().fail(); // us-east refused too
  await flush();
  await ctx.clock.tick(ctx.clock.pendingDelays()[0]);
  const ws2 = await accept(ctx);
  await answerJoins(ws2);
  const f = ws2.last('publish');
  assert.equal(f.mid, 'c1-1');
  ack(ws2, f);
  assert.equal((await p).mid, 'c1-1');
  ctx.client.close();
});

test('retryable errors (rate_limited, unavailable) resend later with the same mid', async () => {
  const { ctx, ws } = await joined({ publishRetryDelay: 1000 });
  const p = ctx.client.publish('general', 'x');
  await flush();
  let f = ws.last('publish');
  ws.deliver({ type: 'error', id: f.id, code: 'rate_limited', message: 'slow down', retryable: true });
  await flush();
  assert.equal(ws.framesOf('publish').length, 1);
  await ctx.clock.tick(999);
  assert.equal(ws.framesOf('publish').length, 1, 'not before the retry delay');
  await ctx.clock.tick(4000);
  assert.equal(ws.framesOf('publish').length, 2);
  f = ws.last('publish');
  assert.equal(f.mid, 'c1-1');
  ws.deliver({ type: 'error', id: f.id, code: 'unavailable', message: 'nats down', retryable: true });
  await ctx.clock.tick(10_000);
  f = ws.last('publish');
  assert.equal(ws.framesOf('publish').length, 3);
  ack(ws, f);
  assert.equal((await p).mid, 'c1-1');
  ctx.client.close();
});

test('non-retryable errors reject the publish (final)', async () => {
  const { ctx, ws } = await joined();
  const p = ctx.client.publish('general', 'x');
  await flush();
  const f = ws.last('publish');
  ws.deliver({ type: 'error', id: f.id, code: 'forbidden', message: 'no', retryable: false });
  await assert.rejects(p, (e) => e.code === 'forbidden' && e.final === true && e.retryable === false);
  assert.equal(ctx.client.outboxSize, 0);
  ctx.client.close();
});

test('publish to a room not joined, or too large for the relay, rejects at once', async () => {
  const { ctx, ws } = await joined();
  await assert.rejects(ctx.client.publish('elsewhere', 1), (e) => e.code === 'not_joined' && e.final);
  ctx.client.limits = { max_message_bytes: 200 };
  await assert.rejects(ctx.client.publish('general', 'x'.repeat(300)), (e) => e.code === 'too_large' && e.final);
  assert.equal(ws.framesOf('publish').length, 0, 'never sent (a 1009 close would follow)');
  ctx.client.close();
});

test('close() rejects everything still in the outbox', async () => {
  const { ctx } = await joined();
  const p = ctx.client.publish('general', 'x');
  ctx.client.close();
  await assert.rejects(p, (e) => e.code === 'closed' && e.final);
});

test('an explicit mid is used as given (app-level idempotency)', async () => {
  const { ctx, ws } = await joined();
  const p = ctx.client.publish('general', 'x', { mid: 'order-42' });
  await flush();
  const f = ws.last('publish');
  assert.equal(f.mid, 'order-42');
  ack(ws, f);
  assert.equal((await p).mid, 'order-42');
  ctx.client.close();
});

test('echo: hello says nothing by default, "echo":false with echo: false', async () => {
  const { ws } = await joined();
  assert.equal(ws.last('hello').echo, undefined);
  const { ctx, ws: ws2 } = await joined({ echo: false });
  assert.equal(ws2.last('hello').echo, false);
  // Its own message comes with its ack: no `message` event, yet its commit
  // and its place in the order carry it.
  const p = ctx.client.publish('general', { text: 'mine' });
  await flush();
  const [f] = ws2.framesOf('publish');
  ack(ws2, f, 'own-1');
  assert.deepEqual(await p, { room: 'general', msg_id: 'own-1', mid: f.mid });
  ws2.deliver({ type: 'commit', room: 'general', msg_id: 'own-1', seq: 1 });
  await flush();
  assert.equal(ctx.of('message').length, 0);
  const [c] = ctx.of('commit');
  assert.equal(c.seq, 1);
  assert.deepEqual(c.message.data, { text: 'mine' });
  assert.equal(c.message.mid, f.mid);
  assert.equal(c.message.from, 'alice');
  assert.deepEqual(ctx.of('ordered').map((o) => `${o.seq}:${o.message && o.message.data.text}`), ['1:mine']);
  // Others' messages still come as messages.
  ws2.deliver({ type: 'message', room: 'general', msg_id: 'b-1', from: 'bob', mid: 'b', data: { text: 'hi' } });
  await flush();
  assert.deepEqual(ctx.of('message').map((m) => m.msg_id), ['b-1']);
});
