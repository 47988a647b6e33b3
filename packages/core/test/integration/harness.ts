import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { createCore, coreConfigSchema, type Core, type CoreConfigInput } from '@outpost/core';
import { DatagramType, datagramKey, encodeDatagram, openDatabase, openDatagram, ReplayGuard, silentLogger, sublevel, validateConfig, type DecodedDatagram } from '@outpost/common';
import { grantFor, postgresGate, removeDir, startPostgres, tempDir, type E2eGate, type StatedServices, type TestPostgres } from '@outpost/testing';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, inject } from 'vitest';

/**
 * Under the core-on-postgres project every core keeps its records in PostgreSQL, one
 * table per data dir (so a restart on the same dir finds its records).
 */
const pgUrl = process.env.OUTPOST_TEST_CORE_STORE === 'postgres' ? inject('coreStoreUrl') : '';
const storeFor = (dir: string) => (pgUrl ? { kind: 'postgres' as const, url: pgUrl, table: `t_${createHash('sha256').update(dir).digest('hex').slice(0, 20)}` } : undefined);

/** A clock the test moves by hand (expiry, offline states). */
export interface TestClock {
  now(): number;
  advance(ms: number): void;
}

export function testClock(start = Date.now()): TestClock {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

export interface Res<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** One running core in a temp data dir, with an HTTP client for its API. */
export interface TestCore {
  core: Core;
  dir: string;
  clock: TestClock;
  url: string;
  admin: string;
  /** JSON call; `token` defaults to the admin token (`null`: no Authorization header). */
  call<T = any>(method: string, path: string, opts?: { body?: unknown; token?: string | null; headers?: Record<string, string>; raw?: string | Buffer }): Promise<Res<T>>;
  stop(): Promise<void>;
}

const running: TestCore[] = [];
const dirs: string[] = [];
const sockets: Socket[] = [];

export async function newDataDir(): Promise<string> {
  const d = await tempDir('outpost-core-test-');
  dirs.push(d);
  return d;
}

/** Starts a real core on port 0 (HTTP and UDP, 127.0.0.1). */
export async function startCore(opts: { dir?: string; clock?: TestClock; config?: Partial<CoreConfigInput> } = {}): Promise<TestCore> {
  const dir = opts.dir ?? (await newDataDir());
  const clock = opts.clock ?? testClock();
  const { http, datagram, ...rest } = opts.config ?? {};
  const config = validateConfig(
    coreConfigSchema,
    { dataDir: dir, http: { port: 0, ...http }, datagram: { host: '127.0.0.1', port: 0, ...datagram }, ...(storeFor(dir) ? { store: storeFor(dir) } : {}), ...rest },
    { file: 'test' },
  );
  const core = createCore(config, { logger: silentLogger(), clock });
  await core.start();
  const url = core.url;
  const admin = core.adminToken;
  let stopped = false;
  const tc: TestCore = {
    core,
    dir,
    clock,
    url,
    admin,
    async call(method, path, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      const token = o.token === undefined ? admin : o.token;
      if (token !== null) headers.authorization = `Bearer ${token}`;
      let body: string | Buffer | undefined = o.raw;
      if (o.body !== undefined) {
        body = JSON.stringify(o.body);
        headers['content-type'] ??= 'application/json';
      }
      const res = await fetch(`${url}/api/v1${path}`, { method, headers, body });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        // not JSON: leave the text
      }
      return { status: res.status, body: parsed as any, headers: res.headers };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await core.stop();
    },
  };
  running.push(tc);
  return tc;
}

/** afterEach: stops every core, closes every socket, removes every temp dir. */
export async function cleanup(): Promise<void> {
  for (const s of sockets.splice(0)) await new Promise<void>((r) => s.close(() => r()));
  for (const c of running.splice(0)) await c.stop();
  for (const d of dirs.splice(0)) await removeDir(d);
}

// ------------------------------------------------------------------ enrollment

export async function createToken(tc: TestCore, kind: 'agent' | 'site-server', extra: Record<string, unknown> = {}): Promise<string> {
  const r = await tc.call('POST', '/tokens', { body: { for: kind, ...extra } });
  if (r.status !== 201) throw new Error(`token: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.token as string;
}

export interface Enrolled {
  id: string;
  credential: string;
  secret: string;
  key: Buffer;
  datagramPort: number;
}

export function enrolled(body: { id: string; credential: string; datagramPort: number }): Enrolled {
  const secret = body.credential.slice(body.credential.indexOf('.') + 1);
  return { id: body.id, credential: body.credential, secret, key: datagramKey(secret), datagramPort: body.datagramPort };
}

export async function enrollAgent(tc: TestCore, name: string, fields: { ips?: string[]; macs?: string[]; os?: string } = {}, token?: string): Promise<Enrolled> {
  const r = await tc.call('POST', '/enroll', { token: null, body: { token: token ?? (await createToken(tc, 'agent')), name, ...fields } });
  if (r.status !== 201) throw new Error(`enroll agent: ${r.status} ${JSON.stringify(r.body)}`);
  return enrolled(r.body);
}

export async function enrollSiteServer(
  tc: TestCore,
  name: string,
  fields: { address?: string; tickleAddress?: string; services?: Record<string, unknown> } = {},
): Promise<Enrolled> {
  const stated = { name, services: { task: { url: `http://${name}.test:8080` } }, ...fields };
  // The grant is exactly what it enrolls with (its services, the hosts of its URLs, its address).
  const body = { token: await createToken(tc, 'site-server', { grant: grantFor(stated.services as StatedServices, fields) }), ...stated };
  const r = await tc.call('POST', '/enroll', { token: null, body });
  if (r.status !== 201) throw new Error(`enroll site server: ${r.status} ${JSON.stringify(r.body)}`);
  return enrolled(r.body);
}

// ------------------------------------------------------------------ UDP

/** A UDP socket on 127.0.0.1, closed by {@link cleanup}. */
export async function udpSocket(): Promise<Socket> {
  const s = createSocket('udp4');
  sockets.push(s);
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

/** The next datagram on `s`, or undefined after `timeoutMs`. */
export function nextMessage(s: Socket, timeoutMs = 1_000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const onMsg = (m: Buffer) => {
      clearTimeout(timer);
      resolve(m);
    };
    const timer = setTimeout(() => {
      s.off('message', onMsg);
      resolve(undefined);
    }, timeoutMs);
    s.once('message', onMsg);
  });
}

/** Every datagram that arrives on `s` during `ms`. */
export async function collect(s: Socket, ms: number): Promise<Buffer[]> {
  const got: Buffer[] = [];
  const onMsg = (m: Buffer) => got.push(m);
  s.on('message', onMsg);
  await new Promise((r) => setTimeout(r, ms));
  s.off('message', onMsg);
  return got;
}

let seq = 0;
/** A signed HEARTBEAT from `agent`, stamped with the core's clock. */
export function heartbeat(tc: TestCore, agent: Enrolled, payload: unknown = {}, stamp: { timestamp?: number; seq?: number } = {}): Buffer {
  return encodeDatagram(
    {
      type: DatagramType.HEARTBEAT,
      flags: 0,
      timestamp: stamp.timestamp ?? tc.clock.now(),
      seq: stamp.seq ?? ++seq,
      sender: agent.id,
      payload: Buffer.from(JSON.stringify(payload)),
    },
    agent.key,
  );
}

export async function sendTo(s: Socket, tc: TestCore, msg: Buffer): Promise<void> {
  await new Promise<void>((resolve, reject) => s.send(msg, tc.core.datagramPort, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
}

/** Opens a datagram from the core (sender 'core') with `key`; throws when it does not verify. */
export function openFromCore(msg: Buffer, key: Buffer, now = Date.now()): DecodedDatagram {
  const r = openDatagram(msg, (id) => (id === 'core' ? key : undefined), new ReplayGuard({ windowMs: 10 * 60_000 }), now);
  if (!r.ok) throw new Error(`datagram from core does not open: ${r.reason}`);
  return r.value;
}

// ------------------------------------------------------------------ the database

interface AgentRec {
  id: string;
  macs: string[];
}
interface SiteRec {
  name: string;
  subnets: string[];
}
interface TokenRec {
  id: string;
  uses: number;
  usesLeft: number;
}

/** Reads the db as store.ts lays it out and lists every disagreement of records and indexes. */
export async function inspectDb(dir: string) {
  const db = await openDatabase(dir);
  try {
    const all = async <V>(name: string) => (await sublevel<V>(db, name).iterator().all()) as [string, V][];
    const agents = new Map((await all<AgentRec>('agents')).map(([k, v]) => [k, v]));
    const macIndex = await all<string>('agent-macs');
    const sites = new Map((await all<SiteRec>('sites')).map(([k, v]) => [k, v]));
    const subnetIndex = new Map(await all<string>('subnets'));
    const tokens = (await all<TokenRec>('tokens')).map(([, v]) => v);
    const problems: string[] = [];
    const macKeys = new Set(macIndex.map(([k]) => k));
    for (const [id, a] of agents) {
      if (a.id !== id) problems.push(`agent key ${id} holds ${a.id}`);
      for (const m of a.macs) if (!macKeys.has(`${m}!${id}`)) problems.push(`agent ${id}: MAC ${m} has no index entry`);
    }
    for (const [k, v] of macIndex) {
      const [mac, id] = k.split('!') as [string, string];
      const a = agents.get(id);
      if (v !== id) problems.push(`index ${k} → ${v}`);
      if (!a) problems.push(`index ${k} points to a missing agent`);
      else if (!a.macs.includes(mac)) problems.push(`index ${k}: agent does not have that MAC`);
    }
    const owner = new Map<string, string>();
    for (const [name, s] of sites) {
      for (const n of s.subnets) {
        if (subnetIndex.get(n) !== name) problems.push(`site ${name}: subnet ${n} indexed to ${subnetIndex.get(n)}`);
        if (owner.has(n)) problems.push(`subnet ${n} in two sites: ${owner.get(n)} and ${name}`);
        owner.set(n, name);
      }
    }
    for (const [n, name] of subnetIndex) {
      const s = sites.get(name);
      if (!s) problems.push(`subnet ${n} points to a missing site ${name}`);
      else if (!s.subnets.includes(n)) problems.push(`subnet ${n} → ${name}, which does not list it`);
    }
    return { agents, sites, tokens, problems };
  } finally {
    await db.close();
  }
}

/**
 * One PostgreSQL for a test file's suites: started before them when the gate lets them run
 * (`describe.runIf(gate.run)`), destroyed after them, the cores the tests started stopped
 * first. `pg()` is the server.
 */
export function postgresForFile(what: string): { gate: E2eGate; pg(): TestPostgres } {
  const gate = postgresGate(what);
  let pg: TestPostgres | undefined;
  beforeAll(async () => {
    if (gate.run) pg = await startPostgres({ fsync: false });
  }, 120_000);
  afterAll(async () => {
    await cleanup();
    await pg?.destroy();
  });
  return {
    gate,
    pg: () => {
      if (!pg) throw new Error('PostgreSQL is not started (outside a suite run under its gate)');
      return pg;
    },
  };
}
