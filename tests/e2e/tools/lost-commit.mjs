// Reproduces a lost-commit problem (not run by ctest): commits are published
// on core NATS, so a `meridian.commit.<room>` published by a region's control
// plane just before that region's nats-server dies, or right after it comes
// back but before its gateways are up, never reaches the relays of other
// regions, and nothing sends it again. Their members keep those messages
// without a seq (or never get them when the fast path missed them too).
//
// One publisher on eu-west sends as fast as it can (raw WebSocket), one member
// on us-east listens; eu-west's relay and nats-server are SIGKILLed, the
// nats-server is restarted on its store, and after a grace period the member's
// view is compared with history. Exit 1 when some message lacks its seq or is
// missing on the member, 0 otherwise.
//
//   MERIDIAN_RELAY=build/relay/meridian-relay MERIDIAN_CONTROL=build/control/meridian-control \
//     node tests/e2e/tools/lost-commit.mjs
// Needs `npm ci` in clients/js (for `ws`).
import { createRequire } from 'node:module';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Deployment, token, waitFor, sleep, API_KEY } from '../deploy.mjs';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const WebSocket = createRequire(join(repo, 'clients', 'js', 'package.json'))('ws');
const dep = new Deployment({
  dir: mkdtempSync(join(tmpdir(), 'meridian-lost-commit-')),
  regions: ['eu-west', 'us-east', 'ap-south'],
  bins: { relay: process.env.MERIDIAN_RELAY, control: process.env.MERIDIAN_CONTROL, nats: process.env.NATS_SERVER || 'nats-server' },
  demoDir: join(repo, 'clients', 'js', 'demo'),
  relayLimits: { publish_rate: 100000, publish_burst: 100000 },
});
process.on('exit', () => dep.killAllSync());
const room = 'lost-commit';

function member(url, user) {
  const ws = new WebSocket(url);
  const c = { ws, seqOf: new Map(), acks: new Set(), joined: false };
  ws.on('message', (raw) => {
    const f = JSON.parse(raw.toString());
    if (f.type === 'message') c.seqOf.set(f.msg_id, f.seq ?? c.seqOf.get(f.msg_id) ?? null);
    if (f.type === 'commit') c.seqOf.set(f.msg_id, f.seq);
    if (f.type === 'ack') c.acks.add(f.msg_id);
    if (f.type === 'welcome') ws.send(JSON.stringify({ type: 'join', id: 2, room }));
    if (f.type === 'joined') c.joined = true;
  });
  ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', id: 1, token: token(user) })));
  ws.on('error', () => {});
  return c;
}

let rc = 2;
try {
  await dep.start();
  const [A, B] = [dep.regions['eu-west'], dep.regions['us-east']];
  const bob = member(B.wsUrl, 'bob');
  const alice = member(A.wsUrl, 'alice');
  await waitFor(() => bob.joined && alice.joined, 'both joined', 10000);
  let i = 0;
  const timer = setInterval(() => {
    if (alice.ws.readyState === 1) alice.ws.send(JSON.stringify({ type: 'publish', room, mid: `m${++i}`, data: i }));
  }, 2);
  await sleep(1500);
  await Promise.all([dep.stop('relay-eu-west', 'SIGKILL'), dep.stop('nats-eu-west', 'SIGKILL')]);
  clearInterval(timer);
  dep.startNats('eu-west');
  await dep.waitGateways();
  await sleep(8000); // commits and redeliveries settle
  const hist = [];
  for (let page = 0; page < 100; page++) {
    const after = hist.length ? hist[hist.length - 1].seq : 0;
    const res = await fetch(`http://127.0.0.1:${B.ctlHttp}/v1/rooms/${room}/messages?after=${after}&limit=1000`,
      { headers: { authorization: `Bearer ${API_KEY}` } });
    const body = await res.json();
    if (res.status !== 200) throw new Error(`history API: ${res.status} ${JSON.stringify(body)}`);
    hist.push(...body.messages);
    if (!body.more) break;
  }
  const missing = hist.filter((m) => !bob.seqOf.has(m.msg_id));
  const noSeq = hist.filter((m) => bob.seqOf.has(m.msg_id) && bob.seqOf.get(m.msg_id) !== m.seq);
  console.log(`published ${i}, acked ${alice.acks.size}, history ${hist.length}; ` +
    `us-east member: ${bob.seqOf.size} messages, ${noSeq.length} without (the right) seq ` +
    `[${noSeq.map((m) => m.seq).join(' ')}], ${missing.length} missing [${missing.map((m) => m.seq).join(' ')}]`);
  rc = noSeq.length || missing.length ? 1 : 0;
  await dep.saveMetrics();
  console.log(`logs: ${dep.dir}/logs`);
} finally {
  await dep.stopAll();
}
process.exit(rc);
