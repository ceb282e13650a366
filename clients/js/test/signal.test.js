// Ephemeral signals (docs/protocol.md, "Signals"): fire and forget, never
// queued or retried, delivered as `signal` events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setup, accept, answerJoins, flush } from './helpers.js';

test('signal: sent only to a joined room while connected, within the size limit; events for joined rooms', async () => {
  const ctx = setup();
  const got = [];
  ctx.client.on('signal', (ev) => got.push(ev));
  assert.equal(ctx.client.signal('general', { typing: true }), false, 'not connected');
  ctx.client.connect();
  const limits = { max_message_bytes: 65536, signal_max_bytes: 32 };
  const ws = await accept(ctx, { limits });
  assert.equal(ctx.client.signal('general', { typing: true }), false, 'not joined');
  ctx.client.join('general');
  await flush();
  assert.equal(ctx.client.signal('general', { typing: true }), false, 'join not answered');
  await answerJoins(ws);
  assert.equal(ctx.client.signal('general', { typing: true }), true);
  assert.equal(ctx.client.signal('general', { text: 'x'.repeat(40) }), false, 'too large');
  assert.deepEqual(ws.framesOf('signal'), [{ type: 'signal', room: 'general', data: { typing: true } }]);
  ws.deliver({ type: 'signal', room: 'general', from: 'bob', region: 'us-east', node: 'n', data: { typing: true } });
  ws.deliver({ type: 'signal', room: 'elsewhere', from: 'bob', data: 1 });
  assert.deepEqual(got, [{ room: 'general', from: 'bob', region: 'us-east', data: { typing: true } }]);
  // Signals are not queued for later: nothing is sent after a reconnect.
  ws.serverClose(1006);
  await flush();
  assert.equal(ctx.client.signal('general', { typing: true }), false);
  await ctx.clock.tick(ctx.clock.pendingDelays()[0]);
  const ws2 = await accept(ctx, { limits });
  await answerJoins(ws2);
  assert.deepEqual(ws2.framesOf('signal'), []);
  ctx.client.close();
});
