#!/usr/bin/env node
// Live check of the SDK against running relays (not part of `npm test`):
//   node scripts/smoke.mjs --url ws://A/ [--url2 ws://B/] --token JWT_A --token2 JWT_B
//        [--room smoke] [--count 10] [--commits] [--timeout 15000]
// Client A (on --url) and client B (on --url2, default --url) join the room
// with presence; A publishes --count messages; every publish must be acked
// and B must receive each exactly once (with --commits: also its seq).
// Prints one JSON line; exit status 0 on success, 1 on failure.
import { MeridianClient } from '../src/meridian.js';

function args(argv) {
  const o = { room: 'smoke', count: 10, timeout: 15000, commits: false };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    if (k === 'commits') o.commits = true;
    else o[k] = argv[++i];
  }
  o.count = Number(o.count);
  o.timeout = Number(o.timeout);
  if (!o.url || !o.token || !o.token2) {
    console.error('usage: smoke.mjs --url WS_URL --token JWT --token2 JWT [--url2 WS_URL] [--room R] [--count N] [--commits]');
    process.exit(2);
  }
  return o;
}

const o = args(process.argv);
const a = new MeridianClient({ url: o.url, token: o.token });
const b = new MeridianClient({ url: o.url2 || o.url, token: o.token2 });
const received = new Map(); // mid -> count
const committed = new Map(); // msg_id -> seq
const errors = [];
b.on('message', (m) => received.set(m.mid, (received.get(m.mid) || 0) + 1));
b.on('commit', (c) => committed.set(c.msg_id, c.seq));
for (const c of [a, b]) c.on('error', (e) => errors.push(`${e.code}: ${e.message}`));

const result = { ok: false };
const timer = setTimeout(() => finish('timeout'), o.timeout);

function finish(error) {
  clearTimeout(timer);
  if (error) result.error = error;
  result.errors = errors;
  console.log(JSON.stringify(result));
  a.close();
  b.close();
  process.exit(result.ok ? 0 : 1);
}

try {
  const [wa, wb] = await Promise.all([a.connect(), b.connect()]);
  result.regions = [wa.region, wb.region];
  await b.join(o.room, { presence: true });
  await a.join(o.room, { presence: true });
  const acks = await Promise.all(Array.from({ length: o.count }, (_, i) => a.publish(o.room, { text: `smoke ${i}` })));
  result.acked = acks.length;
  const mids = acks.map((x) => x.mid);
  const want = () => mids.every((m) => received.get(m) >= 1) &&
    (!o.commits || acks.every((x) => committed.has(x.msg_id)));
  while (!want()) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 200)); // let duplicates, if any, arrive
  result.received = mids.filter((m) => received.has(m)).length;
  result.duplicates = mids.filter((m) => received.get(m) > 1).length;
  if (o.commits) {
    const seqs = acks.map((x) => committed.get(x.msg_id)).sort((p, q) => p - q);
    result.seqs = [seqs[0], seqs[seqs.length - 1]];
    result.seq_contiguous = seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1);
  }
  result.members = (await b.presence(o.room)).map((m) => m.user).sort();
  result.ok = result.received === o.count && result.duplicates === 0 && (!o.commits || result.seq_contiguous);
  finish(result.ok ? null : 'mismatch');
} catch (err) {
  finish(`${err.code || 'error'}: ${err.message}`);
}
