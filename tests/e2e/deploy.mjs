// A small multi-region Meridian deployment on free loopback ports, started
// for one test run: one nats-server per region (each region its own cluster,
// gateways between all of them, JetStream, so the regions form a
// supercluster), one PostgreSQL (initdb as `postgres` into a temporary
// directory), one meridian-relay per region serving the demo page, and one
// meridian-control per region consuming its region's stream (the layout of
// scripts/up). Every process is started in its own process group and
// stopped by stop()/stopAll(), even when the test fails.
import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, writeFileSync, openSync, closeSync, chmodSync, existsSync, rmSync, cpSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

export const SECRET = 'e2e-test-secret-0123456789abcdef';
export const API_KEY = 'e2e-api-key-0123456789abcdef';
const PG_BIN = process.env.PG_BIN || '/usr/lib/postgresql/15/bin';

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `cond` (sync or async) until it returns a truthy value; throw after `ms`. */
export async function waitFor(cond, what, ms = 10000, every = 100) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await cond();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) {
      const detail = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`timed out after ${ms} ms waiting for ${what}${detail}`);
    }
    await sleep(every);
  }
}

const taken = new Set();

function canListen(port) {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, picked at random below
 * the kernel's ephemeral range (32768-60999): the region the test kills is
 * restarted on the same ports, and a port from the ephemeral range can be
 * handed to some other process's connection or port-0 listener meanwhile.
 */
export async function freePort() {
  for (let i = 0; i < 500; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (taken.has(port)) continue;
    if (await canListen(port)) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free port found in 20000-31999 on 127.0.0.1');
}

/** An HS256 JWT as docs/protocol.md describes (sub, exp). */
export function token(sub, ttlS = 3600) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({ sub, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + ttlS });
  const sig = createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

async function httpGet(url, timeoutMs = 1000) {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}

export class Deployment {
  constructor({ dir, regions, bins, demoDir, relayLimits = {} }) {
    this.relayLimits = relayLimits;
    this.dir = dir;
    this.names = regions;
    this.bins = bins; // {relay, control, nats}
    this.demoDir = demoDir;
    this.procs = new Map(); // name -> {child, pid, log, stopSignal}
    this.regions = {};
    mkdirSync(join(dir, 'logs'), { recursive: true });
    mkdirSync(join(dir, 'conf'), { recursive: true });
  }

  log(name) {
    return join(this.dir, 'logs', `${name}.log`);
  }

  /** Start `cmd` in its own process group with output appended to logs/NAME.log. */
  spawn(name, cmd, args, { stopSignal = 'SIGTERM' } = {}) {
    const fd = openSync(this.log(name), 'a');
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const p = { name, child, pid: child.pid, stopSignal, exited: false, code: null };
    child.on('exit', (code, sig) => {
      p.exited = true;
      p.code = code ?? sig;
    });
    child.on('error', (err) => {
      p.exited = true;
      p.code = err.message;
    });
    this.procs.set(name, p);
    return p;
  }

  alive(name) {
    const p = this.procs.get(name);
    return !!p && !p.exited;
  }

  /** Signal a process group and wait (bounded) for the leader to exit; SIGKILL after `ms`. */
  async stop(name, signal, ms = 5000) {
    const p = this.procs.get(name);
    if (!p || p.exited) return;
    const sig = signal || p.stopSignal;
    try { process.kill(-p.pid, sig); } catch { /* gone */ }
    const end = Date.now() + ms;
    while (!p.exited && Date.now() < end) await sleep(20);
    if (!p.exited) {
      try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ }
      const end2 = Date.now() + 3000;
      while (!p.exited && Date.now() < end2) await sleep(20);
    }
  }

  /** Stop everything still running (in reverse start order). */
  async stopAll() {
    for (const name of [...this.procs.keys()].reverse()) await this.stop(name);
  }

  /** Synchronous last resort (process 'exit' handler): SIGKILL every group. */
  killAllSync() {
    for (const p of this.procs.values()) {
      if (!p.exited) try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }

  async expectAlive(name) {
    if (!this.alive(name)) {
      const tail = existsSync(this.log(name)) ? readFileSync(this.log(name), 'utf8').split('\n').slice(-15).join('\n') : '';
      throw new Error(`${name} exited (${this.procs.get(name)?.code}); log tail:\n${tail}`);
    }
  }

  async allocate() {
    for (const name of this.names) {
      const r = { name };
      for (const k of ['natsClient', 'natsCluster', 'natsGateway', 'natsMonitor', 'relay', 'relayAdmin', 'ctlHttp', 'ctlAdmin']) {
        r[k] = await freePort();
      }
      r.natsUrl = `nats://127.0.0.1:${r.natsClient}`;
      r.wsUrl = `ws://127.0.0.1:${r.relay}/`;
      r.pageUrl = `http://127.0.0.1:${r.relay}/`;
      r.storeDir = join(this.dir, 'data', `nats-${name}`);
      this.regions[name] = r;
    }
    this.pgPort = await freePort();
  }

  natsConf(r) {
    const gws = this.names.map((n) => `    {name: "${n}", urls: ["nats://127.0.0.1:${this.regions[n].natsGateway}"]}`).join('\n');
    return `server_name: "${r.name}-nats-1"
host: "127.0.0.1"
port: ${r.natsClient}
http_port: ${r.natsMonitor}

cluster {
  name: "${r.name}"
  host: "127.0.0.1"
  port: ${r.natsCluster}
  routes: ["nats-route://127.0.0.1:${r.natsCluster}"]
}

gateway {
  name: "${r.name}"
  host: "127.0.0.1"
  port: ${r.natsGateway}
  gateways: [
${gws}
  ]
}

jetstream {
  store_dir: "${r.storeDir}"
}
`;
  }

  startNats(name) {
    const r = this.regions[name];
    mkdirSync(r.storeDir, { recursive: true });
    const conf = join(this.dir, 'conf', `nats-${name}.conf`);
    writeFileSync(conf, this.natsConf(r));
    this.spawn(`nats-${name}`, this.bins.nats, ['-c', conf]);
  }

  /** Every live region's server sees outbound and inbound gateways to the other live regions. */
  async waitGateways(names = this.names, ms = 30000) {
    for (const name of names) {
      const r = this.regions[name];
      await waitFor(async () => {
        await this.expectAlive(`nats-${name}`);
        const { body } = await httpGet(`http://127.0.0.1:${r.natsMonitor}/gatewayz`);
        const gz = JSON.parse(body);
        return names.every((o) => o === name ||
          (gz.outbound_gateways && gz.outbound_gateways[o] && gz.inbound_gateways && gz.inbound_gateways[o]));
      }, `gateways of nats-${name}`, ms);
    }
  }

  /** JetStream has a meta leader (the supercluster can create streams). */
  async waitJetStream(name, ms = 30000) {
    const r = this.regions[name];
    await waitFor(async () => {
      const { body } = await httpGet(`http://127.0.0.1:${r.natsMonitor}/jsz`);
      const j = JSON.parse(body);
      return j.meta_cluster && j.meta_cluster.leader;
    }, `JetStream meta leader (seen from ${name})`, ms);
  }

  async startPostgres() {
    const dir = join(this.dir, 'pg');
    mkdirSync(dir, { recursive: true });
    chmodSync(this.dir, 0o755);
    execFileSync('chown', ['postgres:', dir]);
    chmodSync(dir, 0o700);
    execFileSync('runuser', ['-u', 'postgres', '--', join(PG_BIN, 'initdb'), '-D', dir, '-U', 'postgres',
      '--auth=trust', '-E', 'UTF8'], { stdio: ['ignore', openSync(this.log('initdb'), 'a'), openSync(this.log('initdb'), 'a')], timeout: 60000 });
    // SIGINT is PostgreSQL's fast shutdown (runuser passes it on).
    this.spawn('postgres', 'runuser', ['-u', 'postgres', '--', join(PG_BIN, 'postgres'), '-D', dir, '-p', String(this.pgPort),
      '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`, '-c', 'fsync=off'],
    { stopSignal: 'SIGINT' });
    await waitFor(async () => {
      await this.expectAlive('postgres');
      try {
        execFileSync(join(PG_BIN, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(this.pgPort)], { timeout: 3000 });
        return true;
      } catch { return false; }
    }, 'PostgreSQL accepting connections', 30000, 200);
    this.conninfo = `host=127.0.0.1 port=${this.pgPort} user=postgres dbname=postgres`;
  }

  startRelay(name) {
    const r = this.regions[name];
    const cfg = {
      region: name,
      node_id: `${name}-relay-1`,
      listen: `127.0.0.1:${r.relay}`,
      admin_listen: `127.0.0.1:${r.relayAdmin}`,
      nats: [r.natsUrl],
      auth: { secret: SECRET },
      stream: { placement: name },
      presence: { heartbeat_ms: 1000, expire_heartbeats: 3 },
      limits: { max_connections_per_ip: 0, ...this.relayLimits },
      static_dir: this.demoDir,
      fallback_urls: this.names.filter((n) => n !== name).map((n) => this.regions[n].wsUrl),
      drain_grace_ms: 2000,
    };
    const path = join(this.dir, 'conf', `relay-${name}.json`);
    writeFileSync(path, JSON.stringify(cfg, null, 2));
    this.spawn(`relay-${name}`, this.bins.relay, ['--config', path]);
  }

  async waitReady(proc, adminPort, ms = 30000) {
    await waitFor(async () => {
      await this.expectAlive(proc);
      const { status } = await httpGet(`http://127.0.0.1:${adminPort}/readyz`);
      return status === 200;
    }, `${proc} /readyz 200`, ms, 100);
  }

  startControl(name) {
    const r = this.regions[name];
    const cfg = {
      region: name,
      regions: [name],
      node: `control-${name}`,
      nats: [r.natsUrl],
      postgres: this.conninfo,
      http_listen: `127.0.0.1:${r.ctlHttp}`,
      admin_listen: `127.0.0.1:${r.ctlAdmin}`,
      api_keys: [API_KEY],
      stream: { placement: name },
      batch: { max_messages: 200, max_wait_ms: 20 },
      // A batch in flight when its region's NATS died is redelivered after
      // this (default 30 s): keep the test short.
      consumer: { ack_wait_ms: 5000 },
    };
    const path = join(this.dir, 'conf', `control-${name}.json`);
    writeFileSync(path, JSON.stringify(cfg, null, 2));
    this.spawn(`control-${name}`, this.bins.control, ['--config', path]);
  }

  /** Start everything and wait until it is ready. */
  async start() {
    await this.allocate();
    for (const n of this.names) this.startNats(n);
    await this.waitGateways();
    await this.waitJetStream(this.names[0]);
    await this.startPostgres();
    for (const n of this.names) this.startRelay(n);
    for (const n of this.names) await this.waitReady(`relay-${n}`, this.regions[n].relayAdmin);
    // One after the other, so that only the first applies the migrations.
    for (const n of this.names) {
      this.startControl(n);
      await this.waitReady(`control-${n}`, this.regions[n].ctlAdmin);
    }
  }

  /** Save /metrics of every live relay and control plane into logs/ (for a failure's diagnosis). */
  async saveMetrics() {
    for (const [name, r] of Object.entries(this.regions)) {
      for (const [proc, port] of [[`relay-${name}`, r.relayAdmin], [`control-${name}`, r.ctlAdmin]]) {
        if (!this.alive(proc)) continue;
        try {
          const { body } = await httpGet(`http://127.0.0.1:${port}/metrics`, 2000);
          writeFileSync(join(this.dir, 'logs', `${proc}.metrics`), body);
        } catch { /* best effort */ }
      }
    }
  }

  /** Copy the logs and configs next to the screenshots. */
  saveLogs(dest) {
    try {
      mkdirSync(dest, { recursive: true });
      cpSync(join(this.dir, 'logs'), join(dest, 'logs'), { recursive: true });
      cpSync(join(this.dir, 'conf'), join(dest, 'conf'), { recursive: true });
    } catch { /* best effort */ }
  }

  remove() {
    try { rmSync(this.dir, { recursive: true, force: true }); } catch { /* best effort */ }
  }
}
