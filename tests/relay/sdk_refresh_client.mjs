// The JavaScript SDK against a real relay (issue 16 §1): a client whose
// getToken() mints 3-second tokens stays in one session for 12 s, refreshing
// on the relay's refresh_due, still joined and getting its own messages.
// Prints one JSON line {"ok","refreshes","sessions","messages","closes"};
// exit 0 when it held.
//
//   node sdk_refresh_client.mjs <ws url> <secret>
import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../clients/js/package.json'));
const WebSocket = require('ws');
const { MeridianClient } = await import(path.join(here, '../../clients/js/src/meridian.js'));

const [url, secret] = process.argv.slice(2);
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
let minted = 0;
function getToken() {
  minted++;
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({ sub: 'sdk-refresher', exp: Math.floor(Date.now() / 1000) + 3 });
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

// Bounded: a relay that never answers fails the run instead of hanging it.
setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: 'timed out after 40 s' }));
  process.exit(1);
}, 40000).unref();

const client = new MeridianClient({ url, getToken, WebSocket, tokenRefreshMargin: 1000 });
const sessions = new Set();
let refreshes = 0;
let messages = 0;
const closes = [];
client.on('welcome', (w) => sessions.add(w.session));
client.on('refreshed', () => refreshes++);
client.on('message', () => messages++);
client.on('state', (s) => { if (s.state === 'disconnected') closes.push(s.code ?? s.reason); });
await client.connect();
await client.join('refreshing');
const end = Date.now() + 12000;
let i = 0;
while (Date.now() < end) {
  await client.publish('refreshing', { i: i++ });
  await new Promise((r) => setTimeout(r, 500));
}
await new Promise((r) => setTimeout(r, 300));
const ok = sessions.size === 1 && closes.length === 0 && refreshes >= 2 && messages === i;
console.log(JSON.stringify({ ok, refreshes, minted, sessions: sessions.size, messages, published: i, closes }));
client.close();
process.exit(ok ? 0 : 1);
