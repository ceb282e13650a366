import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setup, accept, answerJoins, flush, msg } from './helpers.js';

async function joinedClient(room = 'general', joinOpts = {}, joinedExtra = {}) {
  const ctx = setup();
  ctx.client.connect();
  const ws = await accept(ctx);
  const p = ctx.client.join(room, joinOpts);
  await flush();
  await answerJoins(ws, joinedExtra);
  ctx.info = await p;
  ctx.ws = ws;
  return ctx;
}

async function dropAndReconnect(ctx, joinedExtra = {}) {
  ctx.current().serverClose(1006);
  await flush();
  await ctx.clock.tick(ctx.clock.pendingDelays()[0]);
  const ws = await accept(ctx);
  return ws;
}

test('join before connect is sent after welcome; fresh join has no since', async () => {
  const ctx = setup();
  const p = ctx.client.join('general');
  ctx.client.connect();
  const ws = await accept(ctx);
  const j = ws.last('join');
  assert.deepEqual({ room: j.room, since: j.since }, { room: 'general', since: undefined });
  await answerJoins(ws);
  const info = await p;
  assert.equal(info.recovered, null);
  assert.equal(info.resumed, false);
  ctx.client.close();
});

test('rooms are re-joined after a reconnect with the last contiguous seq; recovered is surfaced', async () => {
  const ctx = await joinedClient('general', {}, { last_seq: 10 });
  ctx.ws.deliver(msg('general', 'a'));
  ctx.ws.deliver({ type: 'commit', room: 'general', msg_id: 'a', seq: 11 });
  ctx.ws.deliver(msg('general', 'b', { seq: 12 }));
  ctx.ws.deliver(msg('general', 'd', { seq: 14 })); // 13 missing: not contiguous
  assert.equal(ctx.client.lastSeq('general'), 12);
  const ws2 = await dropAndReconnect(ctx);
  const j = ws2.last('join');
  assert.equal(j.room, 'general');
  assert.equal(j.since, 12);
  await answerJoins(ws2, { recovered: true });
  const joined = ctx.of('joined').at(-1);
  assert.deepEqual(joined, { room: 'general', recovered: true, since: 12, last_seq: null, resumed: true });
  // The replay fills the hole and the ordered stream catches up.
  ws2.deliver(msg('general', 'c', { seq: 13 }));
  ws2.deliver(msg('general', 'd', { seq: 14 })); // duplicate of a message already seen
  assert.equal(ctx.client.lastSeq('general'), 14);
  assert.deepEqual(ctx.of('message').map((m) => m.msg_id), ['a', 'b', 'd', 'c']);
  assert.deepEqual(ctx.of('ordered').map((o) => `${o.seq}:${o.msg_id}`), ['11:a', '12:b', '13:c', '14:d']);
  ctx.client.close();
});

test('recovered=false: gap event with the range to page, ordering continues after last_seq', async () => {
  const ctx = await joinedClient('general', {}, { last_seq: 5 });
  ctx.ws.deliver(msg('general', 'a', { seq: 6 }));
  const ws2 = await dropAndReconnect(ctx);
  assert.equal(ws2.last('join').since, 6);
  await answerJoins(ws2, { recovered: false, last_seq: 40 });
  assert.deepEqual(ctx.of('joined').at(-1), { room: 'general', recovered: false, since: 6, last_seq: 40, resumed: true });
  assert.deepEqual(ctx.of('gap'), [{ room: 'general', after: 6, last_seq: 40 }]);
  assert.equal(ctx.client.lastSeq('general'), 40);
  ws2.deliver(msg('general', 'z', { seq: 41 }));
  assert.deepEqual(ctx.of('ordered').map((o) => o.seq), [6, 41]);
  // And the next resume asks from 41, not from the hole.
  const ws3 = await dropAndReconnect(ctx);
  assert.equal(ws3.last('join').since, 41);
  ctx.client.close();
});

test('join({since}) resumes from a seq the app already has', async () => {
  const ctx = setup();
  ctx.client.connect();
  const ws = await accept(ctx);
  const p = ctx.client.join('general', { since: 99 });
  await flush();
  assert.equal(ws.last('join').since, 99);
  await answerJoins(ws, { recovered: true });
  assert.equal((await p).recovered, true);
  ctx.client.close();
});

test('dedup: each msg_id reaches the app once (fast path, commit, replay, relay duplicate)', async () => {
  const ctx = await joinedClient('general', {}, { last_seq: 0 });
  const ws = ctx.ws;
  ws.deliver(msg('general', 'm1'));
  ws.deliver(msg('general', 'm1')); // fast-path duplicate
  ws.deliver({ type: 'commit', room: 'general', msg_id: 'm1', seq: 1 });
  ws.deliver({ type: 'commit', room: 'general', msg_id: 'm1', seq: 1 }); // commit twice
  ws.deliver(msg('general', 'm1', { seq: 1 })); // replayed from history
  ws.deliver(msg('general', 'm2', { seq: 2 })); // never seen on the fast path
  ws.deliver(msg('general', 'm2'));
  const ws2 = await dropAndReconnect(ctx);
  await answerJoins(ws2, { recovered: true });
  ws2.deliver(msg('general', 'm2', { seq: 2 })); // replay at or below since
  ws2.deliver(msg('general', 'm1', { seq: 1 }));
  assert.deepEqual(ctx.of('message').map((m) => m.msg_id), ['m1', 'm2']);
  assert.deepEqual(ctx.of('commit').map((c) => `${c.msg_id}:${c.seq}`), ['m1:1', 'm2:2']);
  assert.deepEqual(ctx.of('ordered').map((c) => c.msg_id), ['m1', 'm2']);
  // The app's message object learns its seq.
  assert.equal(ctx.of('message')[0].seq, 1);
  assert.equal(ctx.of('message')[0].type, undefined);
  ctx.client.close();
});

test('dedup is per room: the same msg_id in two rooms is two messages', async () => {
  const ctx = await joinedClient('a');
  const p = ctx.client.join('b');
  await flush();
  await answerJoins(ctx.ws);
  await p;
  ctx.ws.deliver(msg('a', 'x'));
  ctx.ws.deliver(msg('b', 'x'));
  ctx.ws.deliver(msg('c', 'x')); // not joined: ignored
  assert.deepEqual(ctx.of('message').map((m) => m.room), ['a', 'b']);
  ctx.client.close();
});

test('ordering: commits out of order are released in seq order once contiguous', async () => {
  const ctx = await joinedClient('general', {}, { last_seq: 100 });
  const ws = ctx.ws;
  for (const id of ['p', 'q', 'r', 's']) ws.deliver(msg('general', id));
  ws.deliver({ type: 'commit', room: 'general', msg_id: 'r', seq: 103 });
  ws.deliver({ type: 'commit', room: 'general', msg_id: 'p', seq: 101 });
  assert.deepEqual(ctx.of('ordered').map((o) => o.seq), [101]);
  ws.deliver({ type: 'commit', room: 'general', msg_id: 's', seq: 104 });
  ws.deliver({ type: 'commit', room: 'general', msg_id: 'q', seq: 102 });
  assert.deepEqual(ctx.of('ordered').map((o) => `${o.seq}:${o.msg_id}`), ['101:p', '102:q', '103:r', '104:s']);
  assert.deepEqual(ctx.of('ordered').map((o) => o.message.data.text), ['p', 'q', 'r', 's']);
  // commit events come as they arrive
  assert.deepEqual(ctx.of('commit').map((c) => c.seq), [103, 101, 104, 102]);
  assert.equal(ctx.client.lastSeq('general'), 104);
  ctx.client.close();
});

test('ordering: a fresh join without last_seq starts from the first seq seen', async () => {
  const ctx = await joinedClient('general');
  ctx.ws.deliver(msg('general', 'x', { seq: 57 }));
  ctx.ws.deliver(msg('general', 'y', { seq: 58 }));
  assert.deepEqual(ctx.of('ordered').map((o) => o.seq), [57, 58]);
  const ws2 = await dropAndReconnect(ctx);
  assert.equal(ws2.last('join').since, 58);
  ctx.client.close();
});

test('join errors reject the join and forget the room', async () => {
  const ctx = setup();
  ctx.client.connect();
  const ws = await accept(ctx);
  const p = ctx.client.join('secret');
  await flush();
  const j = ws.last('join');
  ws.deliver({ type: 'error', id: j.id, code: 'forbidden', message: 'no', retryable: false });
  await assert.rejects(p, (e) => e.code === 'forbidden');
  assert.deepEqual(ctx.client.rooms(), []);
  ctx.client.close();
});

test('leave sends leave, stops rejoining, rejects pending publishes of that room', async () => {
  const ctx = await joinedClient('general');
  const ws = ctx.ws;
  const pub = ctx.client.publish('general', { text: 'never acked' });
  await flush();
  const l = ctx.client.leave('general');
  await assert.rejects(pub, (e) => e.code === 'left' && e.final);
  const lf = ws.last('leave');
  ws.deliver({ type: 'left', id: lf.id, room: 'general' });
  assert.deepEqual(await l, { room: 'general' });
  const ws2 = await dropAndReconnect(ctx);
  assert.equal(ws2.framesOf('join').length, 0);
  ctx.client.close();
});

test('presence: request, events and member list', async () => {
  const ctx = await joinedClient('general', { presence: true });
  const ws = ctx.ws;
  // joined with {presence:true}: a snapshot is requested automatically
  const req = ws.last('presence');
  assert.equal(req.room, 'general');
  ws.deliver({ type: 'presence', id: req.id, room: 'general', members: [{ user: 'alice', sessions: 1 }, { user: 'bob', sessions: 2 }] });
  await flush();
  assert.deepEqual(ctx.client.members('general'), [{ user: 'alice', sessions: 1 }, { user: 'bob', sessions: 2 }]);
  ws.deliver({ type: 'presence', room: 'general', event: 'join', user: 'carol' });
  ws.deliver({ type: 'presence', room: 'general', event: 'leave', user: 'bob' });
  assert.deepEqual(ctx.client.members('general').map((m) => m.user), ['alice', 'carol']);
  assert.deepEqual(ctx.of('presence').filter((p) => p.event).map((p) => `${p.event}:${p.user}`), ['join:carol', 'leave:bob']);
  assert.ok(ctx.of('members').length >= 3);
  // explicit request
  const p = ctx.client.presence('general');
  await flush();
  const r2 = ws.last('presence');
  ws.deliver({ type: 'presence', id: r2.id, room: 'general', members: [{ user: 'dave', sessions: 1 }] });
  assert.deepEqual(await p, [{ user: 'dave', sessions: 1 }]);
  await flush();
  assert.deepEqual(ctx.client.members('general'), [{ user: 'dave', sessions: 1 }]);
  // a presence request pending over a disconnect rejects as retryable
  const p3 = ctx.client.presence('general');
  ws.serverClose(1006);
  await assert.rejects(p3, (e) => e.code === 'disconnected' && e.retryable);
  ctx.client.close();
});

test('presence: events that arrive before an older snapshot reply are not lost', async () => {
  const ctx = await joinedClient('general', { presence: true });
  const ws = ctx.ws;
  const req = ws.last('presence');
  // Seen live on a real relay: bob's join event first, then a snapshot taken before it.
  ws.deliver({ type: 'presence', room: 'general', event: 'join', user: 'bob' });
  ws.deliver({ type: 'presence', room: 'general', event: 'leave', user: 'carol' });
  ws.deliver({ type: 'presence', id: req.id, room: 'general', members: [{ user: 'alice', sessions: 1 }, { user: 'carol', sessions: 1 }] });
  await flush();
  assert.deepEqual(ctx.client.members('general').map((m) => m.user).sort(), ['alice', 'bob']);
  // After the reply, events apply directly and the log is not kept.
  ws.deliver({ type: 'presence', room: 'general', event: 'leave', user: 'bob' });
  assert.deepEqual(ctx.client.members('general').map((m) => m.user), ['alice']);
  assert.equal(ctx.client._rooms.get('general').presenceLog, null);
  ctx.client.close();
});

test('presence on a room that is not joined rejects with the relay error', async () => {
  const ctx = await joinedClient('general');
  const p = ctx.client.presence('other');
  await flush();
  const r = ctx.ws.last('presence');
  ctx.ws.deliver({ type: 'error', id: r.id, code: 'not_joined', message: 'join first', retryable: false });
  await assert.rejects(p, (e) => e.code === 'not_joined');
  ctx.client.close();
});

test('garbage and unknown frames are ignored', async () => {
  const ctx = await joinedClient('general');
  ctx.ws.deliver('not json');
  ctx.ws.deliver('[1,2]');
  ctx.ws.deliver({ type: 'future_frame', x: 1 });
  ctx.ws.deliver({ type: 'message', room: 'general' }); // no msg_id
  assert.equal(ctx.client.state, 'connected');
  assert.equal(ctx.of('message').length, 0);
  ctx.client.close();
});

test('ordering: a hole that never fills is skipped (gap) instead of buffering forever', async () => {
  const ctx = setup({ dedupSize: 5 });
  ctx.client.connect();
  const ws = await accept(ctx);
  ctx.client.join('general');
  await flush();
  await answerJoins(ws, { last_seq: 0 });
  for (let s = 2; s <= 7; s++) ws.deliver(msg('general', 'm' + s, { seq: s }));
  assert.deepEqual(ctx.of('gap'), [{ room: 'general', after: 0, last_seq: 1 }]);
  assert.deepEqual(ctx.of('ordered').map((o) => o.seq), [2, 3, 4, 5, 6, 7]);
  assert.equal(ctx.client.lastSeq('general'), 7);
  ctx.client.close();
});

test('join({rewind}) asks for the last N once, delivers them in order, later rejoins resume', async () => {
  const ctx = setup();
  ctx.client.connect();
  const ws = await accept(ctx);
  const p = ctx.client.join('general', { rewind: 50 });
  await flush();
  const j = ws.last('join');
  assert.deepEqual({ rewind: j.rewind, since: j.since }, { rewind: 50, since: undefined });
  await answerJoins(ws, { recovered: true, history: 2, since: 40, through: 42, last_seq: 42 });
  const info = await p;
  assert.deepEqual(info, { room: 'general', recovered: true, since: 40, last_seq: 42, resumed: false, rewind: 50, history: 2 });
  ws.deliver(msg('general', 'a', { seq: 41 }));
  ws.deliver(msg('general', 'b', { seq: 42 }));
  ws.deliver(msg('general', 'c')); // live, after the rewound ones
  ws.deliver({ type: 'commit', room: 'general', msg_id: 'c', seq: 43 });
  assert.deepEqual(ctx.of('message').map((m) => m.msg_id), ['a', 'b', 'c']);
  assert.deepEqual(ctx.of('ordered').map((o) => `${o.seq}:${o.msg_id}`), ['41:a', '42:b', '43:c']);
  const ws2 = await dropAndReconnect(ctx);
  const j2 = ws2.last('join');
  assert.deepEqual({ rewind: j2.rewind, since: j2.since }, { rewind: undefined, since: 43 });
  ctx.client.close();
});
