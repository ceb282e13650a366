// Packaging checks: the demo's SDK copy is current, `npm pack` ships the
// right files and installs, no runtime dependencies, declarations compile,
// and in Node without a global WebSocket the `ws` package is used.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const require = createRequire(join(root, 'package.json'));

function installed(name) {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
}
const NEED_NPM_CI = 'dev dependencies missing: run `npm ci` in clients/js';

test('demo/meridian.js is the current SDK (run `npm run build:demo` after editing src/)', () => {
  const src = readFileSync(join(root, 'src', 'meridian.js'), 'utf8');
  const copy = readFileSync(join(root, 'demo', 'meridian.js'), 'utf8');
  assert.ok(copy === src, 'demo/meridian.js is stale: run `npm run build:demo` in clients/js');
});

test('demo directory is self-contained: every local reference resolves inside demo/', () => {
  const html = readFileSync(join(root, 'demo', 'index.html'), 'utf8');
  const app = readFileSync(join(root, 'demo', 'app.js'), 'utf8');
  const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
  const imports = [...app.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
  assert.ok(refs.length >= 2);
  for (const r of [...refs, ...imports]) {
    assert.ok(!/^(https?:)?\/\//.test(r), `no external asset: ${r}`);
    assert.ok(!r.startsWith('..') && !r.startsWith('/'), `stays in demo/: ${r}`);
    assert.ok(existsSync(join(root, 'demo', r)), `exists: ${r}`);
  }
});

test('no runtime dependencies; ws is an optional peer', () => {
  assert.equal(pkg.dependencies, undefined);
  assert.equal(pkg.type, 'module');
  assert.deepEqual(pkg.peerDependenciesMeta, { ws: { optional: true } });
  const src = readFileSync(join(root, 'src', 'meridian.js'), 'utf8');
  assert.doesNotMatch(src, /^\s*import\s.*from\s/m, 'the SDK has no static imports');
  assert.doesNotMatch(src, /require\(/);
});

test('npm pack ships the module, the declarations, the README, the licence and package.json only', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
  const [info] = JSON.parse(out);
  const files = info.files.map((f) => f.path).sort();
  assert.deepEqual(files, ['LICENSE', 'README.md', 'package.json', 'src/meridian.d.ts', 'src/meridian.js']);
  assert.equal(info.name, '@meridian/client');
});

test('the packed tarball installs and imports in a fresh project', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meridian-pack-'));
  try {
    const tgz = execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: root, encoding: 'utf8' }).trim().split('\n').pop();
    const app = join(dir, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', join(dir, tgz)], { cwd: app, stdio: 'pipe' });
    writeFileSync(join(app, 'main.js'),
      "import M, { MeridianClient, State } from '@meridian/client';\n" +
      "const c = new MeridianClient({ url: 'ws://127.0.0.1:1/', token: 't' });\n" +
      "console.log(M === MeridianClient, State.CONNECTED, c.state);\n");
    const out = execFileSync(process.execPath, ['main.js'], { cwd: app, encoding: 'utf8' });
    assert.equal(out.trim(), 'true connected disconnected');
    assert.ok(existsSync(join(app, 'node_modules', '@meridian', 'client', 'src', 'meridian.d.ts')));
    assert.ok(!existsSync(join(app, 'node_modules', 'ws')), 'ws is not pulled in');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('type declarations compile against a typed usage example', () => {
  assert.ok(installed('typescript'), NEED_NPM_CI);
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', join(root, 'test', 'types', 'tsconfig.json')], { cwd: root, stdio: 'pipe' });
});

test('Node without a global WebSocket: the ws package carries a real session', async () => {
  assert.ok(installed('ws'), NEED_NPM_CI);
  const { WebSocketServer } = await import('ws');
  const { MeridianClient } = await import('../src/meridian.js');
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.on('listening', r));
  const seen = [];
  wss.on('connection', (sock) => {
    sock.on('message', (raw, isBinary) => {
      assert.equal(isBinary, false, 'text frames only');
      const f = JSON.parse(raw.toString());
      seen.push(f.type);
      const send = (o) => sock.send(JSON.stringify(o));
      if (f.type === 'hello') send({ type: 'welcome', id: f.id, region: 'eu-west', node: 'relay-1', session: 's', user: 'alice', heartbeat: 25 });
      if (f.type === 'join') send({ type: 'joined', id: f.id, room: f.room });
      if (f.type === 'publish') {
        send({ type: 'message', room: f.room, msg_id: 'x'.repeat(32), from: 'alice', mid: f.mid, region: 'eu-west', node: 'relay-1', ts: Date.now(), data: f.data });
        send({ type: 'ack', id: f.id, room: f.room, msg_id: 'x'.repeat(32), mid: f.mid });
      }
    });
  });
  const { port } = wss.address();
  const client = new MeridianClient({ url: `ws://127.0.0.1:${port}/`, token: 'tok' });
  try {
    const got = new Promise((r) => client.once('message', r));
    const w = await client.connect();
    assert.equal(w.region, 'eu-west');
    await client.join('general');
    const ack = await client.publish('general', { text: 'über ✓' });
    assert.equal(ack.msg_id, 'x'.repeat(32));
    const m = await got;
    assert.deepEqual(m.data, { text: 'über ✓' });
    assert.deepEqual(seen, ['hello', 'join', 'publish']);
  } finally {
    client.close();
    await new Promise((r) => wss.close(r));
  }
});

test('the licence is the project licence: Apache-2.0, and LICENSE is the root LICENSE', () => {
  assert.equal(pkg.license, 'Apache-2.0');
  assert.equal(readFileSync(join(root, 'LICENSE'), 'utf8'), readFileSync(join(root, '..', '..', 'LICENSE'), 'utf8'));
});
