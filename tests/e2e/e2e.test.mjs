// End to end: two headless Chromium pages (Debian's /usr/bin/chromium driven
// by playwright-core) use the demo chat page served by relays of two
// different regions of a locally started three-region deployment
// (deploy.mjs). They chat and see each other online; then the first page's
// region loses its relay and its nats-server (SIGKILL) while both pages keep
// sending: that page must move to another region through the fallback URLs
// and resume, and in the end both pages show every message exactly once, in
// the same (seq) order. Screenshots and the servers' logs go to
// $ARTIFACTS_DIR (default ./artifacts/e2e).
//
// Binaries come from the environment (CMake passes them): MERIDIAN_RELAY,
// MERIDIAN_CONTROL; NATS_SERVER defaults to nats-server on PATH. A missing
// browser, binary or npm dependency fails the test: it never skips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, accessSync, constants, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { Deployment, token, waitFor, sleep, API_KEY } from './deploy.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = resolve(process.env.ARTIFACTS_DIR || join(process.cwd(), 'artifacts', 'e2e'));
const REGIONS = ['eu-west', 'us-east', 'ap-south'];
const ROOM = `e2e-${Date.now().toString(36)}`;

function which(cmd) {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

function requireExecutable(path, what) {
  assert.ok(path, `${what}: not configured`);
  try {
    accessSync(path, constants.X_OK);
  } catch {
    assert.fail(`${what}: ${path} is missing or not executable`);
  }
  return path;
}

/** The page's view of the room, from its DOM (via the demo's meridianDebug hook). */
function pageMessages(page) {
  return page.evaluate(() => globalThis.meridianDebug.messages());
}

async function pageState(page) {
  return page.evaluate(() => ({
    state: document.getElementById('status').dataset.state,
    region: document.getElementById('region').textContent,
    members: [...document.querySelectorAll('#members li')].map((li) => li.textContent),
    outbox: globalThis.meridianDebug.client ? globalThis.meridianDebug.client.outboxSize : null,
    clientRegion: globalThis.meridianDebug.client ? globalThis.meridianDebug.client.region : null,
  }));
}

async function send(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

async function shot(page, name) {
  const path = join(ARTIFACTS, name);
  // Tall enough for the whole message list (it scrolls inside the page).
  const n = await page.evaluate(() => document.querySelectorAll('#messages li').length).catch(() => 0);
  await page.setViewportSize({ width: 1000, height: Math.min(8000, Math.max(720, 200 + 56 * n)) });
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
  return path;
}

/** True when `msgs` holds exactly the `texts` (each once), all rendered from a message (msg_id). */
function showsExactly(msgs, texts) {
  const shown = msgs.map((m) => m.text);
  if (shown.length !== texts.length) return false;
  const want = new Set(texts);
  return new Set(shown).size === shown.length && shown.every((t) => want.has(t)) && msgs.every((m) => m.msg_id);
}

function describe(msgs) {
  return msgs.map((m) => `${m.seq ?? (m.pending ? 'pending' : 'live')}:${m.text}`).join(' ');
}

test('two browsers in two regions chat, one region dies, both end with the same messages once each', { timeout: 240000 }, async (t) => {
  // ---- preconditions: fail (never skip) when something is missing ----
  const bins = {
    relay: requireExecutable(process.env.MERIDIAN_RELAY, 'meridian-relay (MERIDIAN_RELAY)'),
    control: requireExecutable(process.env.MERIDIAN_CONTROL, 'meridian-control (MERIDIAN_CONTROL)'),
    nats: requireExecutable(process.env.NATS_SERVER || which('nats-server'), 'nats-server (NATS_SERVER or PATH)'),
  };
  requireExecutable(CHROMIUM, 'chromium (CHROMIUM, default /usr/bin/chromium; scripts/deps installs it)');
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (err) {
    assert.fail(`playwright-core is not installed in tests/e2e (run npm ci there): ${err.message}`);
  }
  const demoDir = join(repo, 'clients', 'js', 'demo');
  assert.ok(existsSync(join(demoDir, 'index.html')), `demo page missing in ${demoDir}`);
  mkdirSync(ARTIFACTS, { recursive: true });
  // Only this run's files: drop what an earlier run left (our own names only).
  for (const f of readdirSync(ARTIFACTS)) {
    if (/^(\d-|failure-).*\.png$/.test(f) || f === 'logs' || f === 'conf') rmSync(join(ARTIFACTS, f), { recursive: true, force: true });
  }

  const dep = new Deployment({ dir: mkdtempSync(join(tmpdir(), 'meridian-e2e-')), regions: REGIONS, bins, demoDir });
  const onExit = () => dep.killAllSync();
  process.on('exit', onExit);
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => { dep.killAllSync(); process.exit(1); });
  let browser = null;
  let ok = false;
  const t0 = Date.now();
  const step = (what) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${what}`);
  try {
    step(`starting ${REGIONS.join(', ')} in ${dep.dir}`);
    await dep.start();
    const [A, B] = [dep.regions['eu-west'], dep.regions['us-east']];
    step(`deployment ready: pages ${A.pageUrl} (eu-west) and ${B.pageUrl} (us-east)`);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
      timeout: 30000,
    });
    // One browser context per user: separate storage, as two browsers would have.
    const open = async (region, user, name) => {
      const ctx = await browser.newContext({ viewport: { width: 1000, height: 720 } });
      const page = await ctx.newPage();
      page.on('pageerror', (err) => console.log(`[${name} page error] ${err.message}`));
      const url = `${region.pageUrl}?token=${token(user)}&room=${ROOM}&name=${name}`;
      await page.goto(url, { timeout: 15000 });
      return page;
    };
    const alice = await open(A, 'alice', 'Alice');
    const bob = await open(B, 'bob', 'Bob');

    // ---- 1. chat across regions, presence both ways ----
    await waitFor(async () => {
      const s = await pageState(alice);
      return s.state === 'connected' && s.region.startsWith('eu-west');
    }, 'Alice connected to eu-west', 15000);
    await waitFor(async () => {
      const s = await pageState(bob);
      return s.state === 'connected' && s.region.startsWith('us-east');
    }, 'Bob connected to us-east', 15000);
    for (const [page, other] of [[alice, 'bob'], [bob, 'alice']]) {
      await waitFor(async () => (await pageState(page)).members.includes(other), `presence: ${other} online on the other page`, 15000);
    }
    step('both pages connected, each sees the other online');

    const sent = [];
    for (let i = 1; i <= 3; i++) {
      for (const [page, who] of [[alice, 'Alice'], [bob, 'Bob']]) {
        const text = `${who} hello ${i}`;
        await send(page, text);
        sent.push(text);
      }
    }
    for (const [page, who] of [[alice, 'Alice'], [bob, 'Bob']]) {
      await waitFor(async () => showsExactly(await pageMessages(page), sent), `${who}'s page shows the 6 chat messages`, 15000);
    }
    // Each page shows the other's messages with the region that accepted them.
    const bobView = await bob.evaluate(() => [...document.querySelectorAll('#messages li')].map((li) => li.textContent));
    assert.ok(bobView.some((x) => x.includes('Alice') && x.includes('eu-west') && x.includes('Alice hello 1')), `Bob's page: ${bobView}`);
    const aliceView = await alice.evaluate(() => [...document.querySelectorAll('#messages li')].map((li) => li.textContent));
    assert.ok(aliceView.some((x) => x.includes('Bob') && x.includes('us-east') && x.includes('Bob hello 1')), `Alice's page: ${aliceView}`);
    step('chat works both ways');
    await shot(alice, '1-chat-alice-eu-west.png');
    await shot(bob, '1-chat-bob-us-east.png');

    // ---- 2. eu-west dies while both keep sending ----
    const ROUNDS = 24;
    const KILL_AT = 6;
    let killed = false;
    let offline = 0; // Alice's messages typed while her page was not connected: they wait in the outbox
    const sender = async (page, who) => {
      for (let i = 1; i <= ROUNDS; i++) {
        const text = `${who} burst ${String(i).padStart(2, '0')}`;
        await send(page, text);
        sent.push(text);
        if (who === 'Alice' && i === KILL_AT) {
          // The whole region: its relay and its nats-server, without warning.
          await Promise.all([dep.stop('relay-eu-west', 'SIGKILL'), dep.stop('nats-eu-west', 'SIGKILL')]);
          killed = Date.now();
          step(`eu-west killed (relay and nats-server, SIGKILL) after Alice's burst ${i}`);
          // Type two messages as soon as the page notices (one evaluate: the
          // state read and the submit happen in the same task of the page).
          for (const k of [1, 2]) {
            const text = `Alice offline ${k}`;
            const state = await waitFor(() => page.evaluate((t) => {
              const c = globalThis.meridianDebug.client;
              if (c.state === 'connected' && c.region === 'eu-west') return null;
              document.getElementById('text').value = t;
              document.getElementById('composer').requestSubmit();
              return c.state === 'connected' ? `connected to ${c.region}` : c.state;
            }, text), 'Alice\'s page to notice that eu-west is gone', 10000, 20);
            sent.push(text);
            if (!state.startsWith('connected')) offline++;
            step(`Alice typed "${text}" while her page was ${state}`);
          }
        }
        await sleep(150);
      }
    };
    await Promise.all([sender(alice, 'Alice'), sender(bob, 'Bob')]);
    assert.ok(killed);
    step(`both pages sent ${ROUNDS} burst messages each`);
    assert.ok(offline >= 1, 'at least one message was typed while Alice\'s page was offline (outbox path)');

    const moved = await waitFor(async () => {
      const s = await pageState(alice);
      return s.state === 'connected' && !s.region.startsWith('eu-west') && s;
    }, 'Alice\'s page to reconnect to another region', 30000, 200);
    step(`Alice's page moved to ${moved.region}; online there: ${moved.members.join(', ')}`);
    assert.ok(/^(us-east|ap-south)/.test(moved.region), `moved to ${moved.region}`);
    await waitFor(async () => (await pageState(bob)).members.includes('alice'), 'Bob sees Alice online again (through her new region)', 15000);
    for (const [page, who] of [[alice, 'Alice'], [bob, 'Bob']]) {
      await waitFor(async () => showsExactly(await pageMessages(page), sent),
        `${who}'s page shows all ${sent.length} messages once`, 30000, 200).catch(async (err) => {
        throw new Error(`${err.message}\n${who}: ${describe(await pageMessages(page))}`);
      });
    }
    step(`both pages show all ${sent.length} messages, each once`);
    await shot(alice, '2-failover-alice-moved.png');
    await shot(bob, '2-failover-bob-us-east.png');

    // ---- 3. eu-west's NATS comes back: its stream's messages are committed, every message gets its seq ----
    // Messages eu-west's stream stored just before the kill reach history
    // only when that stream is readable again (one region's stream lives in
    // that region); the relay stays dead, Alice stays where she is.
    dep.startNats('eu-west');
    await dep.waitGateways(REGIONS, 30000);
    step('eu-west nats-server restarted on its store (relay still down)');
    // Every member eventually learns every message with its seq (DESIGN.md).
    let final;
    try {
      await waitFor(async () => {
        const views = await Promise.all([pageMessages(alice), pageMessages(bob)]);
        return views.every((m) => showsExactly(m, sent) && m.every((x) => x.seq)) && views;
      }, 'every message on both pages to have its seq', 45000, 200);
    } finally {
      final = { Alice: await pageMessages(alice), Bob: await pageMessages(bob) };
      for (const [who, other] of [['Alice', 'Bob'], ['Bob', 'Alice']]) {
        const seqOf = new Map(final[other].map((m) => [m.msg_id, m.seq]));
        for (const m of final[who]) {
          if (!m.seq && seqOf.get(m.msg_id)) {
            console.log(`MISSING COMMIT: ${who}'s page never got the seq of "${m.text}" (msg_id ${m.msg_id}); ` +
              `${other}'s page has it as #${seqOf.get(m.msg_id)}`);
          }
        }
        console.log(`${who}'s page: ${describe(final[who])}`);
      }
    }
    const a = final.Alice;
    const b = final.Bob;
    // Exactly once, the same order on both pages, that order being seq order.
    assert.deepEqual(a.map((m) => m.text), b.map((m) => m.text), 'both pages show the messages in the same order');
    assert.deepEqual(a.map((m) => [m.msg_id, m.seq]), b.map((m) => [m.msg_id, m.seq]), 'same msg_id and seq for each message');
    assert.equal(new Set(a.map((m) => m.msg_id)).size, sent.length, 'each message once (distinct msg_ids)');
    const seqs = a.map((m) => m.seq);
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'pages are in seq order');
    assert.deepEqual(seqs, seqs.map((_, i) => seqs[0] + i), 'seqs are contiguous');
    assert.ok(!a.some((m) => m.failed) && !b.some((m) => m.failed), 'no message failed');
    step(`both pages: ${a.length} messages, seqs ${seqs[0]}..${seqs[seqs.length - 1]}, same order`);
    // History (PostgreSQL, through the control plane's HTTP API) holds the same, once each.
    const res = await fetch(`http://127.0.0.1:${B.ctlHttp}/v1/rooms/${ROOM}/messages?after=0&limit=1000`,
      { headers: { authorization: `Bearer ${API_KEY}` }, signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200, 'history API');
    const hist = (await res.json()).messages;
    assert.deepEqual(hist.map((m) => [m.msg_id, m.seq, m.data.text]), a.map((m) => [m.msg_id, m.seq, m.text]),
      'history holds exactly the messages the pages show, with the same seqs');
    step(`history API: ${hist.length} messages, the same as on the pages`);
    // Presence after the crash: eu-west's relay stopped heartbeating long ago
    // (3 s expiry); both users are still online on both pages (Alice through
    // her new region). Session counts are not checked: see README.md.
    await sleep(Math.max(0, killed + 5000 - Date.now()));
    for (const [page, who] of [[alice, 'Alice'], [bob, 'Bob']]) {
      const members = (await pageState(page)).members;
      step(`online on ${who}'s page: ${members.join(', ')}`);
      assert.deepEqual(members.map((m) => m.replace(/ \(\d+\)$/, '')), ['alice', 'bob'], `${who}'s page: online list`);
    }
    await shot(alice, '3-final-alice.png');
    await shot(bob, '3-final-bob.png');
    ok = true;
  } catch (err) {
    await dep.saveMetrics();
    for (const [i, ctx] of (browser ? browser.contexts() : []).entries()) {
      for (const p of ctx.pages()) {
        try { await shot(p, `failure-page-${i}.png`); } catch { /* best effort */ }
      }
    }
    throw err;
  } finally {
    if (browser) await browser.close().catch(() => {});
    await dep.stopAll();
    process.off('exit', onExit);
    dep.saveLogs(ARTIFACTS);
    console.log(`logs and configs: ${ARTIFACTS}/logs, ${ARTIFACTS}/conf`);
    if (ok) dep.remove();
    else console.log(`state kept in ${dep.dir}`);
  }
});
