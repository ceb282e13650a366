// A client that keeps writing until the relay closes it, with Node's `ws`
// (clients/js's dependency): prints {"code","reason","errors"} as one JSON line.
// Used by test_relay_trust (issue 12, section 4): the close code must be the
// relay's (4009, 4029), not the 1006 of a connection reset under the client.
//
//   node ws_close_client.mjs <ws url> <token> flood|bad
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../clients/js/package.json'));
const WebSocket = require('ws');

const [url, token, mode] = process.argv.slice(2);
const ws = new WebSocket(url, 'meridian.v1');
let errors = 0;
let open = true;
let n = 0;

function writeMore() {
  // Write without waiting, as a busy client does, until the socket closes.
  for (let i = 0; i < 20 && open && ws.readyState === WebSocket.OPEN; i++) {
    n++;
    ws.send(mode === 'bad'
      ? '{"type":"nope"}'
      : JSON.stringify({ type: 'publish', room: 'r', mid: `f${n}`, data: n }));
  }
  if (open) setImmediate(writeMore);
}

ws.on('message', (data) => {
  const f = JSON.parse(data.toString());
  if (f.type === 'welcome') {
    if (mode === 'bad') writeMore();
    else ws.send(JSON.stringify({ type: 'join', id: 'j', room: 'r' }));
  } else if (f.type === 'joined') {
    writeMore();
  } else if (f.type === 'error') {
    errors++;
  }
});
ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', token })));
ws.on('error', () => {});
ws.on('close', (code, reason) => {
  open = false;
  console.log(JSON.stringify({ code, reason: reason.toString(), errors }));
  process.exit(0);
});
setTimeout(() => {
  console.log(JSON.stringify({ code: -1, reason: 'no close within 20 s', errors }));
  process.exit(0);
}, 20000);
