// Smoke test of the demo page's script in a DOM (jsdom) against a scripted
// WebSocket peer speaking docs/protocol.md over a real socket (ws). It checks
// the page's wiring: auto-start from ?token=, state display, presence list,
// sending, region and seq of messages, and resume after a drop. A real
// browser against real relays is the end-to-end suite's job.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
let haveDeps = true;
try { require.resolve('jsdom'); require.resolve('ws'); } catch { haveDeps = false; }

async function waitFor(cond, what, ms = 5000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('demo page: connect, presence, send, region and seq, resume', async () => {
  // A missing dependency is a failure, not a skip: ctest runs `npm ci` first.
  assert.ok(haveDeps, 'dev dependencies missing: run `npm ci` in clients/js');
  const { JSDOM } = await import('jsdom');
  const { WebSocketServer } = await import('ws');

  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.on('listening', r));
  const { port } = wss.address();
  const joins = [];
  const signals = [];
  let seq = 0;
  let sockets = [];
  wss.on('connection', (sock) => {
    sockets.push(sock);
    const send = (o) => sock.send(JSON.stringify(o));
    sock.on('message', (raw) => {
      const f = JSON.parse(raw.toString());
      if (f.type === 'hello') send({ type: 'welcome', id: f.id, region: 'us-east', node: 'relay-7', session: 's', user: 'alice', heartbeat: 25 });
      if (f.type === 'join') {
        joins.push(f);
        if (f.rewind !== undefined) {
          // The room's history so far: two stored messages, rewound after `joined`.
          send({ type: 'joined', id: f.id, room: f.room, recovered: true, history: 2, since: 0, through: 2, last_seq: 2 });
          for (const s of [1, 2]) {
            send({ type: 'message', room: f.room, msg_id: `old${s}`.padEnd(32, '0'), from: 'bob', mid: `b${s}`,
              region: 'eu-west', node: 'relay-1', ts: Date.now(), data: { text: `earlier ${s}` }, seq: s });
          }
          seq = 2;
          return;
        }
        send({ type: 'joined', id: f.id, room: f.room, ...(f.since !== undefined ? { recovered: true } : {}) });
      }
      if (f.type === 'signal') signals.push(f);
      if (f.type === 'presence') send({ type: 'presence', id: f.id, room: f.room, members: [{ user: 'alice', sessions: 1 }, { user: 'bob', sessions: 2 }] });
      if (f.type === 'publish') {
        const msgId = f.mid.padEnd(32, '0').slice(0, 32);
        send({ type: 'message', room: f.room, msg_id: msgId, from: 'alice', mid: f.mid, region: 'us-east', node: 'relay-7', ts: Date.now(), data: f.data });
        send({ type: 'ack', id: f.id, room: f.room, msg_id: msgId, mid: f.mid });
        send({ type: 'commit', room: f.room, msg_id: msgId, seq: ++seq });
      }
    });
  });

  const html = readFileSync(join(root, 'demo', 'index.html'), 'utf8');
  const dom = new JSDOM(html, { url: `http://127.0.0.1:${port}/?token=tok&name=Alice&room=general` });
  const saved = {};
  for (const k of ['document', 'location', 'localStorage']) {
    saved[k] = Object.getOwnPropertyDescriptor(globalThis, k);
    Object.defineProperty(globalThis, k, { value: dom.window[k], configurable: true, writable: true });
  }
  const doc = dom.window.document;
  const $ = (id) => doc.getElementById(id);
  try {
    await import(pathToFileURL(join(root, 'demo', 'app.js')).href + '?t=' + Date.now());
    await waitFor(() => $('status').dataset.state === 'connected', 'connected state');
    assert.equal($('url').value, `ws://127.0.0.1:${port}/`, 'relay URL defaults to the page origin');
    assert.ok($('login').hidden && !$('chat').hidden);
    assert.match($('region').textContent, /us-east/);
    await waitFor(() => $('members').children.length === 2, 'presence list');
    assert.deepEqual([...$('members').children].map((li) => li.textContent), ['alice', 'bob (2)']);
    assert.equal(joins[0].room, 'general');
    // The page opens with the room's last messages (rewind 50).
    assert.equal(joins[0].rewind, 50);
    await waitFor(() => $('messages').children.length === 2, 'rewound history');
    assert.deepEqual([...$('messages').children].map((x) => x.querySelector('.text').textContent), ['earlier 1', 'earlier 2']);

    // Typing indicators: a signal from bob shows, and typing here sends one.
    for (const s of sockets) {
      s.send(JSON.stringify({ type: 'signal', room: 'general', from: 'bob', region: 'eu-west', node: 'n', data: { typing: true, name: 'Bob' } }));
    }
    await waitFor(() => $('typing').textContent === 'Bob is typing…', 'typing indicator');
    $('text').value = 'h';
    $('text').dispatchEvent(new dom.window.Event('input'));
    await waitFor(() => signals.length === 1, 'typing signal sent');
    assert.deepEqual(signals[0].data, { typing: true, name: 'Alice' });
    assert.equal(signals[0].room, 'general');

    $('text').value = 'hello <b>world</b>';
    $('composer').dispatchEvent(new dom.window.Event('submit', { cancelable: true }));
    const li = await waitFor(() => [...$('messages').children].find((x) => /#3/.test(x.textContent)), 'committed message');
    assert.equal(li.querySelector('.badge').textContent, 'us-east');
    assert.equal(li.querySelector('.text').textContent, 'hello <b>world</b>', 'text, not HTML');
    assert.equal(li.querySelector('b'), null);
    assert.match(li.querySelector('.who').textContent, /Alice \(alice\)/);
    assert.equal($('messages').children.length, 3, 'own message shown once, after the history');

    // Drop the connection: the page shows it, the SDK resumes from seq 3.
    for (const s of sockets) s.terminate();
    sockets = [];
    await waitFor(() => $('status').dataset.state === 'reconnecting', 'reconnecting state');
    await waitFor(() => $('status').dataset.state === 'connected', 'connected again', 10000);
    await waitFor(() => joins.length === 2, 'rejoin');
    assert.equal(joins[1].since, 3);
    assert.equal(joins[1].rewind, undefined);
    await waitFor(() => /resumed after #3/.test($('resume-info').textContent), 'resume info');
    assert.ok($('log').children.length >= 4);
  } finally {
    $('leave').click();
    for (const [k, d] of Object.entries(saved)) {
      if (d) Object.defineProperty(globalThis, k, d);
      else delete globalThis[k];
    }
    for (const s of wss.clients) s.terminate();
    await new Promise((r) => wss.close(r));
    dom.window.close();
  }
});
