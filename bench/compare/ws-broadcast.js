'use strict';
/*
 * Comparison target for `meridian-loadgen generic`: the simplest credible
 * WebSocket pub/sub server in Node, built on the `ws` package the way its
 * README broadcasts. Rooms are URL paths: a client connected to /lg-0 is in
 * room lg-0. A text message from a client, or the body of an HTTP POST to
 * /lg-0, is sent to every other client of that room unchanged, so the
 * loadgen's timestamp travels through untouched. One process, one core,
 * like one relay process.
 *
 *   node ws-broadcast.js [--host 127.0.0.1] [--port 8090]
 */
const http = require('http');
const { WebSocketServer } = require('ws');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const host = arg('--host', '127.0.0.1');
const port = Number(arg('--port', '8090'));

const rooms = new Map(); /* room name -> Set of sockets */

function roomOf(url) {
  return (url || '/').split('?')[0].replace(/^\/+/, '') || 'default';
}

function broadcast(room, data, except) {
  const members = rooms.get(room);
  if (!members) return 0;
  let n = 0;
  for (const ws of members) {
    if (ws !== except && ws.readyState === 1) {
      ws.send(data, { binary: false });
      n++;
    }
  }
  return n;
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST') {
    res.writeHead(req.url === '/healthz' ? 200 : 405, { 'Content-Length': 0 });
    res.end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const n = broadcast(roomOf(req.url), Buffer.concat(chunks), null);
    const body = `{"delivered":${n}}`;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
    res.end(body);
  });
});

const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 1 << 20 });
wss.on('connection', (ws, req) => {
  const room = roomOf(req.url);
  let members = rooms.get(room);
  if (!members) rooms.set(room, (members = new Set()));
  members.add(ws);
  ws.on('message', (data, isBinary) => {
    if (!isBinary) broadcast(room, data, ws);
  });
  ws.on('close', () => {
    members.delete(ws);
    if (members.size === 0) rooms.delete(room);
  });
  ws.on('error', () => {});
});

server.listen(port, host, () => {
  process.stdout.write(`ws-broadcast listening on ${host}:${port} (pid ${process.pid})\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
