import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:https';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { removeDir, startTcpRelay, tempDir, waitFor, type TcpRelay } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { Authority } from '../../src/ca/authority.js';
import { certificateFingerprint } from '../../src/ca/authority.js';
import { issueLinkCert } from '../../src/hierarchy/tls.js';
import { cleanup, createToken, enrollAgent, newDataDir, startCore, type TestCore } from './harness.js';
import { connect, FAST, join, journalWrites, parentAndChild, realClock, rogueChild } from './hierarchy-helpers.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/core-child.mjs', import.meta.url));
const procs: ChildProcess[] = [];
const relays: TcpRelay[] = [];

afterEach(async () => {
  for (const p of procs.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const r of relays.splice(0)) await r.close();
  await cleanup();
});

/** Link states follow real silence here: "minutes" become seconds. */
const LINK = { degradedAfter: 1_000, failedAfter: 3_000, summaryInterval: 200 };
const task = (name: string) => ({ name, kind: 'command', program: '/bin/echo', args: [name] });

type Call = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;

/** The names of a core's tasks. */
async function taskNames(call: Call): Promise<string[]> {
  const r = await call('GET', '/tasks');
  if (r.status !== 200) throw new Error(`GET /tasks: ${r.status}`);
  return (r.body.items as Array<{ name: string }>).map((t) => t.name).sort();
}

/** The ids of the agents of core `core` that `call`'s core knows from its child. */
async function upAgents(call: Call, core: string): Promise<string[]> {
  const r = await call('GET', `/hierarchy/agents?core=${core}&limit=100000`);
  return (r.body.items as Array<{ id: string }>).map((a) => a.id).sort();
}

/**
 * Creates tasks `<prefix>-<i>` on a core, a few at a time, until `stop()` or `max` (bounded in
 * count and time). `acked` holds the names the core answered 201 for; a request that fails
 * (the core was killed) counts neither way.
 */
function taskStream(call: () => Call, prefix: string, max: number, concurrency = 4): { acked: Set<string>; sent: () => number; stop: () => Promise<void> } {
  const acked = new Set<string>();
  let next = 0;
  let stopped = false;
  const deadline = Date.now() + 40_000;
  const worker = async (): Promise<void> => {
    while (!stopped && next < max && Date.now() < deadline) {
      const name = `${prefix}-${String(next++).padStart(5, '0')}`;
      const r = await call()('POST', '/tasks', task(name)).catch(() => undefined);
      if (r?.status === 201) acked.add(name);
      else if (r === undefined) await new Promise((res) => setTimeout(res, 50));
    }
  };
  const workers = Array.from({ length: concurrency }, () => worker());
  return {
    acked,
    sent: () => next,
    stop: async () => {
      stopped = true;
      await Promise.all(workers);
    },
  };
}

/**
 * Compares what two journals recorded for each key: every write of the source reached the
 * replica once, in order (a page applied twice records its values twice).
 */
function expectSameWrites(source: Map<string, Array<string | undefined>>, replica: Map<string, Array<string | undefined>>, what: string): void {
  const missing = [...source.keys()].filter((k) => !replica.has(k));
  expect(missing, `${what}: keys never written on the replica`).toEqual([]);
  const differ = [...source].filter(([k, v]) => JSON.stringify(replica.get(k)) !== JSON.stringify(v)).map(([k, v]) => `${k}: ${v.length} write(s) at the source, ${replica.get(k)?.length} on the replica`);
  expect(differ, `${what}: keys written a different number of times or with other values`).toEqual([]);
}

const callOf =
  (tc: TestCore): Call =>
  (method, path, body) =>
    tc.call(method, path, body === undefined ? {} : { body });

describe('hierarchy faults: a link cut by a black hole', () => {
  it('both cores keep working; the link shows degraded then failed; the child comes back by itself and catches up with nothing lost or applied twice', async () => {
    const { parent, child, token, url } = await parentAndChild({ clock: realClock, hierarchy: LINK });
    const relay = await startTcpRelay({ port: Number(new URL(url).port) });
    relays.push(relay);
    await join(child, `https://${relay.address}`, token);
    const childId = (await child.call('GET', '/hierarchy')).body.core.id as string;
    const P = callOf(parent);
    const C = callOf(child);

    for (let i = 0; i < 20; i++) expect((await P('POST', '/tasks', task(`before-${i}`))).status).toBe(201);
    const agents = [(await enrollAgent(child, 'pc-0')).id];
    await waitFor(async () => (await taskNames(C)).length === 20 && (await upAgents(P, childId)).length === 1, { timeoutMs: 10_000, what: 'the first sync' });

    // A steady stream of changes on the parent, across the cut and the reconnection.
    const stream = taskStream(() => P, 'cut', 3_000, 2);
    await waitFor(() => stream.acked.size >= 50, { timeoutMs: 10_000, what: 'the stream started' });
    relay.cut();

    // Both cores keep working on their own: the parent takes the stream; the child enrolls agents and keeps its own tasks.
    const token2 = await createToken(child, 'agent', { uses: 50 });
    for (let i = 1; i <= 10; i++) agents.push((await enrollAgent(child, `pc-${i}`, {}, token2)).id);
    for (let i = 0; i < 5; i++) expect((await C('POST', '/tasks', task(`local-${i}`))).status).toBe(201);

    const childState = async () => ((await P('GET', '/hierarchy')).body.children as Array<{ id: string; state: string }>).find((c) => c.id === childId)?.state;
    const parentState = async () => (await C('GET', '/hierarchy')).body.parent?.state as string | undefined;
    await waitFor(async () => (await childState()) === 'degraded', { timeoutMs: 10_000, what: "the parent's view: degraded" });
    await waitFor(async () => (await parentState()) === 'degraded', { timeoutMs: 10_000, what: "the child's view: degraded" });
    await waitFor(async () => (await childState()) === 'failed', { timeoutMs: 10_000, what: "the parent's view: failed" });
    await waitFor(async () => (await parentState()) === 'failed', { timeoutMs: 10_000, what: "the child's view: failed" });
    const during = stream.acked.size;

    // Heal just as the child starts a new attempt: that handshake is black-holed for good,
    // so the child must give up on it and dial again (2 ping intervals here, not 10 s).
    await relay.nextConnection();
    relay.heal();
    await waitFor(async () => (await parentState()) === 'ok' && (await childState()) === 'ok', { timeoutMs: 6_000, what: 'the child back by itself' });
    await waitFor(() => stream.acked.size >= during + 100, { timeoutMs: 15_000, what: 'more changes after the reconnection' });
    await stream.stop();

    // Caught up: the child holds exactly the parent's tasks (and its own), the parent every agent of the child.
    const expected = await taskNames(P);
    expect(expected.length).toBe(20 + stream.acked.size);
    const locals = Array.from({ length: 5 }, (_, i) => `local-${i}`);
    await waitFor(async () => JSON.stringify(await taskNames(C)) === JSON.stringify([...expected, ...locals].sort()), { timeoutMs: 15_000, what: "the child holding the parent's tasks" });
    await waitFor(async () => JSON.stringify(await upAgents(P, childId)) === JSON.stringify([...agents].sort()), { timeoutMs: 10_000, what: "the child's agents on the parent" });
    const status = (await C('GET', '/hierarchy')).body.parent;
    expect(status).toMatchObject({ state: 'ok', lag: 0, skipped: 0 });
    expect(((await P('GET', '/hierarchy')).body.children as Array<{ skipped: number }>)[0]!.skipped).toBe(0);

    // Nothing applied twice: each write of the parent's journal is in the child's once, and the mirror for summaries.
    await child.stop();
    await parent.stop();
    expectSameWrites(await journalWrites(parent.dir, ['task-defs']), await journalWrites(child.dir, ['task-defs']), 'down');
    expectSameWrites(await journalWrites(child.dir, ['hier-up']), await journalWrites(parent.dir, ['hier-up']), 'up');
  });

  it('a content fetch that stalls is given up after two ping intervals and tried again: the package arrives once the path is back', async () => {
    const { parent, child, token, url } = await parentAndChild({ clock: realClock, hierarchy: LINK });
    const relay = await startTcpRelay({ port: Number(new URL(url).port) });
    relays.push(relay);
    await join(child, `https://${relay.address}`, token);
    await waitFor(async () => (await child.call('GET', '/hierarchy')).body.parent?.state === 'ok', { timeoutMs: 10_000, what: 'the link' });

    // The link's WebSocket keeps flowing; the connection the child opens for content is black-holed.
    relay.cut({ existing: false });
    const content = Buffer.from('payload '.repeat(1000));
    const sha256 = createHash('sha256').update(content).digest('hex');
    const pkg = await parent.call('POST', '/packages', { body: { name: 'tool', version: '1', files: [{ path: 'bin/tool', size: content.length, sha256 }] } });
    expect(pkg.status).toBe(201);
    expect((await parent.call('PUT', `/packages/${pkg.body.id}/files/bin/tool`, { raw: content, headers: { 'content-type': 'application/octet-stream' } })).status).toBe(200);
    // Enabled on the parent (no package server anywhere): the child core fetches the content itself.
    const fetching = relay.nextConnection();
    expect((await parent.call('POST', `/packages/${pkg.body.id}/enable`, { body: {} })).status).toBe(200);
    await fetching;
    await waitFor(async () => /sent nothing for/.test((await child.call('GET', '/hierarchy')).body.parent.contentError ?? ''), { timeoutMs: 10_000, what: 'the stalled fetch given up' });
    relay.heal();
    await waitFor(async () => (await child.call('GET', `/packages/${pkg.body.id}`)).body?.state === 'ready', { timeoutMs: 15_000, what: 'the package on the child' });
    // The link itself never stalled: the fetch runs beside it.
    expect((await child.call('GET', '/hierarchy')).body.parent.lastError).toBeNull();
  });
});

interface ProcCore {
  proc: ChildProcess;
  dir: string;
  url: string;
  admin: string;
  call: Call;
}

/** A core in its own process (test/fixtures/core-child.mjs) on `dir`, `extra` merged into its config. */
async function spawnCore(dir: string, extra: Record<string, unknown>): Promise<ProcCore> {
  const proc = spawn(process.execPath, [FIXTURE, dir, JSON.stringify(extra)], { stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(proc);
  const lines = createInterface({ input: proc.stdout! });
  const [line] = (await Promise.race([once(lines, 'line'), once(proc, 'exit').then(() => [undefined])])) as [string | undefined];
  if (!line) throw new Error('the core process exited before it served');
  const { url, adminToken } = JSON.parse(line) as { url: string; adminToken: string };
  const call: Call = async (method, path, body) => {
    const res = await fetch(`${url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  return { proc, dir, url, admin: adminToken, call };
}

async function kill9(c: ProcCore): Promise<void> {
  const exited = once(c.proc, 'exit');
  c.proc.kill('SIGKILL');
  await exited;
}

async function stopCore(c: ProcCore): Promise<void> {
  const exited = once(c.proc, 'exit');
  c.proc.kill('SIGTERM');
  await exited;
}

describe('hierarchy faults: kill -9 mid-sync', () => {
  it('of the child, then of the parent: after restarts on the same data dirs and ports the child holds exactly the parent\'s items and the parent the child\'s summaries, each applied once', async () => {
    // Small pages: many of them are in flight when a core dies.
    const hier = { ...LINK, batch: 20 };
    const parentDir = await newDataDir();
    const childDir = await newDataDir();
    let parent = await spawnCore(parentDir, { hierarchy: { name: 'hq', listen: { host: '127.0.0.1', port: 0 }, ...hier } });
    const listener = (await parent.call('GET', '/hierarchy')).body.listener as string;
    const parentCfg = { http: { port: Number(new URL(parent.url).port) }, hierarchy: { name: 'hq', listen: { host: '127.0.0.1', port: Number(new URL(listener).port) }, ...hier } };
    let child = await spawnCore(childDir, { hierarchy: { name: 'emea', ...hier } });
    const childCfg = { http: { port: Number(new URL(child.url).port) }, hierarchy: { name: 'emea', ...hier } };
    const childId = (await child.call('GET', '/hierarchy')).body.core.id as string;
    const token = (await parent.call('POST', '/hierarchy/tokens', {})).body.token as string;
    expect((await child.call('POST', '/hierarchy/join', { url: listener, token })).status).toBe(200);

    const MAX = 20_000;
    const stream = taskStream(() => parent.call, 'k', MAX, 4);
    const count = async () => (await taskNames(child.call).catch(() => [])).length;

    // The child dies while pages come down.
    await waitFor(async () => (await count()) >= 200, { timeoutMs: 20_000, what: 'the child syncing' });
    expect(stream.sent()).toBeLessThan(MAX);
    await kill9(child);
    child = await spawnCore(childDir, childCfg);
    await waitFor(async () => (await child.call('GET', '/hierarchy')).body.parent?.state === 'ok', { timeoutMs: 10_000, what: 'the child back' });

    // Up: agents enrolled on the child while the parent dies and comes back.
    const agentToken = (await child.call('POST', '/tokens', { for: 'agent', uses: 500 })).body.token as string;
    const agents: string[] = [];
    let enrolling = true;
    const enroller = (async () => {
      for (let i = 0; enrolling && i < 300; i++) {
        const r = await child.call('POST', '/enroll', { token: agentToken, name: `pc-${i}` }).catch(() => undefined);
        if (r?.status === 201) agents.push(r.body.id as string);
      }
    })();

    // The parent dies while pages go down and summaries come up.
    const before = await count();
    await waitFor(async () => (await count()) >= before + 200 && agents.length >= 20, { timeoutMs: 20_000, what: 'the link busy both ways' });
    expect(stream.sent()).toBeLessThan(MAX);
    await kill9(parent);
    parent = await spawnCore(parentDir, parentCfg);
    const atRestart = stream.acked.size;
    await waitFor(() => stream.acked.size >= atRestart + 300, { timeoutMs: 20_000, what: 'more changes after the parent came back' });
    await stream.stop();
    enrolling = false;
    await enroller;

    const expected = await taskNames(parent.call);
    for (const name of stream.acked) expect(expected).toContain(name);
    await waitFor(async () => JSON.stringify(await taskNames(child.call)) === JSON.stringify(expected), { timeoutMs: 20_000, what: "the child holding exactly the parent's tasks" });
    await waitFor(async () => JSON.stringify(await upAgents(parent.call, childId)) === JSON.stringify([...agents].sort()), { timeoutMs: 10_000, what: "the child's agents on the parent" });

    await stopCore(child);
    await stopCore(parent);
    expectSameWrites(await journalWrites(parentDir, ['task-defs']), await journalWrites(childDir, ['task-defs']), 'down');
    expectSameWrites(await journalWrites(childDir, ['hier-up']), await journalWrites(parentDir, ['hier-up']), 'up');
  });
});

describe('hierarchy faults: kill -9 of the child while it fetches package content', () => {
  it('the link keeps replicating while the content downloads; after the restart the fetch resumes where it stopped and the package ends ready', async () => {
    const parent = await startCore({ clock: realClock(), config: { hierarchy: { name: 'hq', listen: { host: '127.0.0.1', port: 0 }, ...LINK } } });
    const url = (await parent.call('GET', '/hierarchy')).body.listener as string;
    const relay = await startTcpRelay({ port: Number(new URL(url).port) });
    relays.push(relay);
    const childDir = await newDataDir();
    const childCfg = { hierarchy: { name: 'emea', ...LINK } };
    let child = await spawnCore(childDir, childCfg);
    const token = (await parent.call('POST', '/hierarchy/tokens', { body: {} })).body.token as string;
    expect((await child.call('POST', '/hierarchy/join', { url: `https://${relay.address}`, token })).status).toBe(200);

    const SIZE = 32 * 1024 * 1024;
    const content = randomBytes(SIZE);
    const sha256 = createHash('sha256').update(content).digest('hex');
    const pkg = await parent.call('POST', '/packages', { body: { name: 'big', version: '1', files: [{ path: 'big.bin', size: SIZE, sha256 }] } });
    expect((await parent.call('PUT', `/packages/${pkg.body.id}/files/big.bin`, { raw: content, headers: { 'content-type': 'application/octet-stream' } })).status).toBe(200);
    // 8 MiB/s on each connection through the relay: the content takes seconds; the link has its own connection.
    relay.throttle(8 * 1024 * 1024);
    expect((await parent.call('POST', `/packages/${pkg.body.id}/enable`, { body: {} })).status).toBe(200);
    const received = async (): Promise<number> => {
      const v = (await child.call('GET', `/packages/${pkg.body.id}`)).body;
      return v?.state === 'ready' ? SIZE : ((v?.missing?.[0]?.received as number | undefined) ?? 0);
    };
    await waitFor(async () => (await received()) > 0, { timeoutMs: 15_000, intervalMs: 50, what: 'the download started' });
    // A task defined now reaches the child while the content is still coming.
    expect((await parent.call('POST', '/tasks', { body: task('meanwhile') })).status).toBe(201);
    await waitFor(async () => (await taskNames(child.call)).includes('meanwhile'), { timeoutMs: 5_000, intervalMs: 50, what: 'the task on the child' });
    expect(await received()).toBeLessThan(SIZE);
    let atKill = 0;
    await waitFor(async () => (atKill = await received()) >= SIZE * 0.6, { timeoutMs: 30_000, intervalMs: 20, what: '60 % downloaded' });
    await kill9(child);
    relay.throttle(0);
    child = await spawnCore(childDir, childCfg);
    await waitFor(async () => (await child.call('GET', `/packages/${pkg.body.id}`)).body?.state === 'ready', { timeoutMs: 30_000, what: 'the package ready on the child' });
    // Resumed from the partial (Range), not fetched again from the start: the parent read the file at most once
    // before the kill (it reads ahead of the child by the socket buffers) and after it only what the child did not
    // hold; a fetch from zero would read all of it again (more than this bound once the child held over half).
    const served = (await parent.call('GET', '/hierarchy')).body.children[0].bytes.content as number;
    expect(served).toBeGreaterThanOrEqual(SIZE);
    expect(served).toBeLessThanOrEqual(2 * SIZE - atKill);
    const res = await fetch(`${child.url}/api/v1/packages/${pkg.body.id}/files/big.bin`, { headers: { authorization: `Bearer ${child.admin}` } });
    expect(createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex')).toBe(sha256);
    await stopCore(child);
  });
});

describe('hierarchy faults: the protocol at a reconnection', () => {
  it('the parent sends nothing down before the hello, then only entries after the cursor the hello gives', async () => {
    const parent = await startCore({ config: { hierarchy: { name: 'hq', listen: { host: '127.0.0.1', port: 0 }, ...FAST } } });
    const url = (await parent.call('GET', '/hierarchy')).body.listener as string;
    const rogue = await rogueChild(parent, url);
    try {
      const c = await connect(url, rogue);
      if (!('ws' in c)) throw new Error(`refused: ${c.refused}`);
      for (let i = 0; i < 3; i++) expect((await parent.call('POST', '/tasks', { body: task(`early-${i}`) })).status).toBe(201);
      // The parent's head, as its status shows it (lag of a child that acked nothing).
      const head = ((await parent.call('GET', '/hierarchy')).body.children as Array<{ id: string; lag: number }>).find((x) => x.id === rogue.id)!.lag;
      expect(head).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 300));
      expect(c.messages, 'messages before the hello').toEqual([]);
      c.ws.send(JSON.stringify({ t: 'hello', down: head, name: 'rogue' }));
      expect((await parent.call('POST', '/tasks', { body: task('late') })).status).toBe(201);
      await waitFor(() => c.messages.some((m) => m.t === 'down' && JSON.stringify(m).includes('late')), { timeoutMs: 5_000, what: 'the page with the new task' });
      const seqs = c.messages.filter((m) => m.t === 'down').flatMap((m) => (m.entries as Array<{ s: number }>).map((e) => e.s));
      expect(Math.min(...seqs)).toBeGreaterThan(head);
      c.ws.close();
    } finally {
      await removeDir(rogue.dir);
    }
  });

  it('the parent skips up entries it applied already (a page sent again after a reconnection overlaps)', async () => {
    const parent = await startCore({ config: { hierarchy: { name: 'hq', listen: { host: '127.0.0.1', port: 0 }, ...FAST } } });
    const url = (await parent.call('GET', '/hierarchy')).body.listener as string;
    const rogue = await rogueChild(parent, url);
    const agent = (s: number, id: string, name: string) => ({ s, o: [{ k: `!hier-up!${rogue.id}!agent!${id}`, v: JSON.stringify({ core: rogue.id, kind: 'agent', id, name, macs: [] }) }] });
    try {
      const c = await connect(url, rogue);
      if (!('ws' in c)) throw new Error(`refused: ${c.refused}`);
      c.ws.send(JSON.stringify({ t: 'hello', down: 0, name: 'rogue' }));
      await waitFor(() => c.messages.some((m) => m.t === 'welcome'), { timeoutMs: 3_000, what: 'welcome' });
      c.ws.send(JSON.stringify({ t: 'up', to: 2, entries: [agent(1, 'ag_1', 'one'), agent(2, 'ag_2', 'two')] }));
      await waitFor(() => c.messages.some((m) => m.t === 'ack' && m.up === 2), { timeoutMs: 3_000, what: 'ack 2' });
      c.ws.send(JSON.stringify({ t: 'up', to: 3, entries: [agent(2, 'ag_2', 'stale'), agent(3, 'ag_3', 'three')] }));
      await waitFor(() => c.messages.some((m) => m.t === 'ack' && m.up === 3), { timeoutMs: 3_000, what: 'ack 3' });
      const items = (await parent.call('GET', `/hierarchy/agents?core=${rogue.id}`)).body.items as Array<{ id: string; name: string }>;
      expect(items.map((a) => [a.id, a.name]).sort()).toEqual([
        ['ag_1', 'one'],
        ['ag_2', 'two'],
        ['ag_3', 'three'],
      ]);
      expect(((await parent.call('GET', '/hierarchy')).body.children as Array<{ id: string; skipped: number }>).find((x) => x.id === rogue.id)!.skipped).toBe(1);
      c.ws.close();
    } finally {
      await removeDir(rogue.dir);
    }
  });

  it("the child skips down entries at or below its cursor, never moves it back, and says so in its next hello", async () => {
    const fake = await fakeParent();
    try {
      const child = await startCore({ config: { hierarchy: { name: 'emea', ...FAST } } });
      const { link, hello } = await welcomed(fake, child);
      expect(hello).toMatchObject({ down: 0 });
      const def = (s: number, name: string, arg: string) => ({ s, o: [{ k: `!task-defs!${name}`, v: JSON.stringify({ ...task(name), args: [arg], timeoutMs: 60_000, createdAt: 1, updatedAt: 1 }) }] });
      link.send({ t: 'down', entries: [def(1, 'a', 'v1'), def(2, 'b', 'v1')], to: 2 });
      expect(await link.next('ack')).toMatchObject({ down: 2 });
      // Resent and overlapping pages: what was applied stays, what is new is taken.
      link.send({ t: 'down', entries: [def(2, 'b', 'stale'), def(3, 'c', 'v1')], to: 3 });
      expect(await link.next('ack')).toMatchObject({ down: 3 });
      link.send({ t: 'down', entries: [def(1, 'a', 'stale')], to: 1 });
      expect(await link.next('ack')).toMatchObject({ down: 3 });
      for (const name of ['a', 'b', 'c']) expect((await child.call('GET', `/tasks/${name}`)).body.args).toEqual(['v1']);
      expect((await child.call('GET', '/hierarchy')).body.parent).toMatchObject({ skipped: 2 });
      // The next link starts where the child is.
      link.ws.terminate();
      const again = await fake.link();
      expect(await again.next('hello')).toMatchObject({ down: 3 });
      again.ws.terminate();
    } finally {
      await fake.close();
    }
  });
});

/** Resolves to the close code of `ws` once it closes; rejects when it is still open after `ms`. */
function closedWithin(ws: WebSocket, ms: number, what: string): Promise<number> {
  return Promise.race([
    once(ws, 'close').then(([code]) => code as number),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} still open after ${ms} ms`)), ms).unref()),
  ]);
}

describe('hierarchy faults: pipelined pages', () => {
  it('the parent keeps at most `window` pages in flight, each right after the one before, and after a reconnection with pages in flight sends again from the cursor the hello gives', async () => {
    const parent = await startCore({ config: { hierarchy: { name: 'hq', listen: { host: '127.0.0.1', port: 0 }, ...FAST, batch: 2, window: 3 } } });
    const url = (await parent.call('GET', '/hierarchy')).body.listener as string;
    const names = Array.from({ length: 12 }, (_, i) => `t${i}`);
    for (const name of names) expect((await parent.call('POST', '/tasks', { body: task(name) })).status).toBe(201);
    const rogue = await rogueChild(parent, url);
    try {
      const pages = (messages: any[]) => messages.filter((m) => m.t === 'down') as Array<{ from: number; to: number; entries: Array<{ s: number; o: Array<{ k: string }> }> }>;
      const first = await connect(url, rogue);
      if (!('ws' in first)) throw new Error(`refused: ${first.refused}`);
      first.ws.send(JSON.stringify({ t: 'hello', down: 0, name: 'rogue' }));
      await waitFor(() => pages(first.messages).length >= 3, { timeoutMs: 5_000, what: 'three pages' });
      await new Promise((r) => setTimeout(r, 300));
      const sent = pages(first.messages);
      expect(sent, 'pages sent before any ack').toHaveLength(3);
      expect(sent.map((p) => p.from)).toEqual([0, sent[0]!.to, sent[1]!.to]);
      first.ws.send(JSON.stringify({ t: 'ack', down: sent[0]!.to }));
      await waitFor(() => pages(first.messages).length >= 4, { timeoutMs: 5_000, what: 'a fourth page after the first ack' });
      expect(pages(first.messages)[3]!.from).toBe(sent[2]!.to);
      // The link drops with three pages unacked; the next one says the child applied the first only.
      first.ws.close();
      const again = await connect(url, rogue);
      if (!('ws' in again)) throw new Error(`refused: ${again.refused}`);
      again.ws.send(JSON.stringify({ t: 'hello', down: sent[0]!.to, name: 'rogue' }));
      const got = new Set<string>(sent[0]!.entries.flatMap((e) => e.o.map((op) => op.k)));
      let from = sent[0]!.to;
      for (let i = 0; i < 50; i++) {
        const page = await waitFor(() => pages(again.messages).find((p) => p.from === from), { timeoutMs: 5_000, what: `the page after ${from}` });
        expect(Math.min(...page.entries.map((e) => e.s), Infinity)).toBeGreaterThan(from);
        for (const e of page.entries) for (const op of e.o) got.add(op.k);
        again.ws.send(JSON.stringify({ t: 'ack', down: page.to }));
        from = page.to;
        if (names.every((n) => got.has(`!task-defs!${n}`))) break;
      }
      expect(names.filter((n) => !got.has(`!task-defs!${n}`))).toEqual([]);
      again.ws.close();
    } finally {
      await removeDir(rogue.dir);
    }
  });

  it('the child keeps at most `window` up pages in flight, each right after the one before (pages with nothing to send up are not sent), and after a reconnection sends again from the welcome', async () => {
    const fake = await fakeParent();
    try {
      const child = await startCore({ config: { hierarchy: { name: 'emea', ...FAST, batch: 1, window: 2 } } });
      await join(child, fake.url, fake.token);
      const link = await fake.link();
      const ups: Array<{ from: number; to: number; entries: Array<{ s: number }> }> = [];
      link.ws.on('message', (d: Buffer) => {
        const m = JSON.parse(d.toString());
        if (m.t === 'up') ups.push(m);
      });
      await link.next('hello');
      link.send({ t: 'welcome', parent: fake.id, up: 0, editable: [] });
      // Each enrollment changes the summaries: a write of them (one entry) at the next tick.
      for (let i = 0; i < 3; i++) {
        await enrollAgent(child, `pc-${i}`);
        await new Promise((r) => setTimeout(r, 400));
      }
      await waitFor(() => ups.length >= 2, { timeoutMs: 5_000, what: 'two up pages' });
      await new Promise((r) => setTimeout(r, 300));
      expect(ups, 'up pages before any ack').toHaveLength(2);
      expect(ups[0]!.from).toBe(0);
      expect(ups[1]!.from).toBe(ups[0]!.to);
      link.send({ t: 'ack', up: ups[0]!.to });
      await waitFor(() => ups.length >= 3, { timeoutMs: 5_000, what: 'a third up page after the first ack' });
      expect(ups[2]!.from).toBe(ups[1]!.to);
      // The link drops with two pages unacked: the next welcome says the parent applied the first only.
      link.ws.terminate();
      const again = await fake.link();
      const resent: typeof ups = [];
      again.ws.on('message', (d: Buffer) => {
        const m = JSON.parse(d.toString());
        if (m.t === 'up') resent.push(m);
      });
      await again.next('hello');
      again.send({ t: 'welcome', parent: fake.id, up: ups[0]!.to, editable: [] });
      await waitFor(() => resent.length >= 1, { timeoutMs: 5_000, what: 'an up page on the new link' });
      expect(resent[0]!.from).toBe(ups[0]!.to);
      expect(resent[0]!.entries[0]!.s).toBe(ups[1]!.entries[0]!.s);
      again.ws.terminate();
    } finally {
      await fake.close();
    }
  });

  it("the parent sends no page of entries with nothing for the child, but moves the child's cursor past them with a page of none, at most once a second", async () => {
    const parent = await startCore({ config: { hierarchy: { name: 'hq', listen: { host: '127.0.0.1', port: 0 }, ...FAST } } });
    const url = (await parent.call('GET', '/hierarchy')).body.listener as string;
    const rogue = await rogueChild(parent, url);
    const head = async () => ((await parent.call('GET', '/hierarchy')).body.children as Array<{ id: string; lag: number }>).find((x) => x.id === rogue.id)!;
    try {
      const c = await connect(url, rogue);
      if (!('ws' in c)) throw new Error(`refused: ${c.refused}`);
      const start = (await head()).lag;
      c.ws.send(JSON.stringify({ t: 'hello', down: start, name: 'rogue' }));
      await waitFor(() => c.messages.some((m) => m.t === 'welcome'), { timeoutMs: 3_000, what: 'welcome' });
      // Agent tokens: writes of the parent that do not go down.
      for (let i = 0; i < 6; i++) await createToken(parent, 'agent');
      // The head now (a child that acked nothing lags by all of it).
      const target = (await head()).lag;
      expect(target).toBeGreaterThanOrEqual(start + 6);
      const down = () => c.messages.filter((m) => m.t === 'down') as Array<{ from: number; to: number; entries: unknown[] }>;
      await waitFor(() => down().some((p) => p.to >= target), { timeoutMs: 5_000, what: "a page moving the child's cursor to the head" });
      expect(down().every((p) => p.entries.length === 0)).toBe(true);
      expect(down().length, 'pages of none for six writes').toBeLessThanOrEqual(2);
      for (const [i, p] of down().entries()) expect(p.from).toBe(i === 0 ? start : down()[i - 1]!.to);
      c.ws.close();
    } finally {
      await removeDir(rogue.dir);
    }
  });

  it('a complete copy from the parent: parts, then the pages after it without waiting for its ack', async () => {
    const parent = await startCore({ config: { hierarchy: { name: 'hq', listen: { host: '127.0.0.1', port: 0 }, ...FAST, batch: 5 } } });
    const url = (await parent.call('GET', '/hierarchy')).body.listener as string;
    const names = Array.from({ length: 12 }, (_, i) => `t${i}`);
    for (const name of names) expect((await parent.call('POST', '/tasks', { body: task(name) })).status).toBe(201);
    const rogue = await rogueChild(parent, url);
    try {
      const c = await connect(url, rogue);
      if (!('ws' in c)) throw new Error(`refused: ${c.refused}`);
      c.ws.send(JSON.stringify({ t: 'hello', down: 0, full: true, name: 'rogue' }));
      const down = () => c.messages.filter((m) => m.t === 'down') as Array<{ from?: number; to: number; snapshot: boolean; done: boolean; entries: Array<{ o: Array<{ k: string }> }> }>;
      await waitFor(() => down().some((p) => p.snapshot && p.done), { timeoutMs: 5_000, what: 'the last part of the copy' });
      const parts = down();
      expect(parts.length).toBeGreaterThan(2);
      expect(parts.every((p) => p.snapshot && p.to === parts[0]!.to)).toBe(true);
      const keys = new Set(parts.flatMap((p) => p.entries.flatMap((e) => e.o.map((op) => op.k))));
      expect(names.filter((n) => !keys.has(`!task-defs!${n}`))).toEqual([]);
      expect((await parent.call('POST', '/tasks', { body: task('after') })).status).toBe(201);
      const next = await waitFor(() => down().find((p) => !p.snapshot), { timeoutMs: 5_000, what: 'the page after the copy' });
      expect(next.from).toBe(parts[0]!.to);
      expect(JSON.stringify(next.entries)).toContain('!task-defs!after');
      c.ws.close();
    } finally {
      await removeDir(rogue.dir);
    }
  });

  it('the parent applies up pages sent back to back, and refuses one after a gap: nothing of it is written and the link is closed', async () => {
    const parent = await startCore({ config: { hierarchy: { name: 'hq', listen: { host: '127.0.0.1', port: 0 }, ...FAST } } });
    const url = (await parent.call('GET', '/hierarchy')).body.listener as string;
    const rogue = await rogueChild(parent, url);
    const agent = (s: number, id: string) => ({ s, o: [{ k: `!hier-up!${rogue.id}!agent!${id}`, v: JSON.stringify({ core: rogue.id, kind: 'agent', id, name: id, macs: [] }) }] });
    const ids = async () => ((await parent.call('GET', `/hierarchy/agents?core=${rogue.id}`)).body.items as Array<{ id: string }>).map((a) => a.id).sort();
    try {
      const c = await connect(url, rogue);
      if (!('ws' in c)) throw new Error(`refused: ${c.refused}`);
      c.ws.send(JSON.stringify({ t: 'hello', down: 0, name: 'rogue' }));
      await waitFor(() => c.messages.some((m) => m.t === 'welcome'), { timeoutMs: 3_000, what: 'welcome' });
      c.ws.send(JSON.stringify({ t: 'up', from: 0, to: 1, entries: [agent(1, 'ag_1')] }));
      c.ws.send(JSON.stringify({ t: 'up', from: 1, to: 3, entries: [agent(3, 'ag_3')] }));
      await waitFor(() => c.messages.some((m) => m.t === 'ack' && m.up === 3), { timeoutMs: 3_000, what: 'ack 3' });
      expect(c.messages.filter((m) => m.t === 'ack').map((m) => m.up)).toEqual([1, 3]);
      // Seqs 4 and 5 never came: a page after 5 is not applied.
      const closed = closedWithin(c.ws, 5_000, 'the link of a page after a gap');
      c.ws.send(JSON.stringify({ t: 'up', from: 5, to: 6, entries: [agent(6, 'ag_6')] }));
      expect(await closed).toBe(1008);
      expect(await ids()).toEqual(['ag_1', 'ag_3']);
      const view = ((await parent.call('GET', '/hierarchy')).body.children as Array<{ id: string; upApplied: number; lastError: string }>).find((x) => x.id === rogue.id)!;
      expect(view.upApplied).toBe(3);
      expect(view.lastError).toMatch(/gap/);
    } finally {
      await removeDir(rogue.dir);
    }
  });

  it("an item of the parent changed again, or deleted and made again within one page, stays the parent's (read-only on the child)", async () => {
    const fake = await fakeParent();
    try {
      const child = await startCore({ config: { hierarchy: { name: 'emea', ...FAST } } });
      const { link } = await welcomed(fake, child);
      const def = (s: number, name: string, arg: string) => ({ s, o: [{ k: `!task-defs!${name}`, v: JSON.stringify({ ...task(name), args: [arg], timeoutMs: 60_000, createdAt: 1, updatedAt: 1 }) }] });
      link.send({ t: 'down', entries: [def(1, 'a', 'v1'), def(2, 'b', 'v1')], from: 0, to: 2 });
      expect(await link.next('ack')).toMatchObject({ down: 2 });
      link.send({ t: 'down', entries: [def(3, 'a', 'v2'), { s: 4, o: [{ k: '!task-defs!b' }] }, def(5, 'b', 'v2')], from: 2, to: 5 });
      expect(await link.next('ack')).toMatchObject({ down: 5 });
      for (const name of ['a', 'b']) {
        expect((await child.call('GET', `/tasks/${name}`)).body.args).toEqual(['v2']);
        const r = await child.call('PUT', `/tasks/${name}`, { body: task(name) });
        expect(r.status, name).toBe(409);
        expect(r.body.error.code).toBe('CORE_HIERARCHY_READ_ONLY');
      }
      link.ws.terminate();
    } finally {
      await fake.close();
    }
  });

  it("the child takes a complete copy in parts with a page right behind it: the parent's items it lacks go, its own stay", async () => {
    const fake = await fakeParent();
    try {
      const child = await startCore({ config: { hierarchy: { name: 'emea', ...FAST } } });
      expect((await child.call('POST', '/tasks', { body: task('mine') })).status).toBe(201);
      const { link } = await welcomed(fake, child);
      const op = (name: string) => ({ k: `!task-defs!${name}`, v: JSON.stringify({ ...task(name), timeoutMs: 60_000, createdAt: 1, updatedAt: 1 }) });
      link.send({ t: 'down', entries: [{ s: 1, o: [op('a')] }, { s: 2, o: [op('b')] }], from: 0, to: 2 });
      expect(await link.next('ack')).toMatchObject({ down: 2 });
      // The parent lost b (a copy as of seq 40: a and c), then c2 comes at 41, all sent back to back.
      link.send({ t: 'down', entries: [{ s: 40, o: [op('a')] }], to: 40, snapshot: true, done: false });
      link.send({ t: 'down', entries: [{ s: 40, o: [op('c')] }], to: 40, snapshot: true, done: true });
      link.send({ t: 'down', entries: [{ s: 41, o: [op('c2')] }], from: 40, to: 41 });
      expect(await link.next('ack')).toMatchObject({ down: 40 });
      expect(await link.next('ack')).toMatchObject({ down: 41 });
      expect(await taskNames(child.call)).toEqual(['a', 'c', 'c2', 'mine']);
      link.ws.terminate();
      expect(await (await fake.link()).next('hello')).toMatchObject({ down: 41 });
    } finally {
      await fake.close();
    }
  });

  it('the child applies down pages sent back to back, and refuses one after a gap: nothing of it is applied and the next hello gives the cursor as written', async () => {
    const fake = await fakeParent();
    try {
      const child = await startCore({ config: { hierarchy: { name: 'emea', ...FAST } } });
      const { link, hello } = await welcomed(fake, child);
      expect(hello).toMatchObject({ down: 0 });
      const def = (s: number, name: string) => ({ s, o: [{ k: `!task-defs!${name}`, v: JSON.stringify({ ...task(name), timeoutMs: 60_000, createdAt: 1, updatedAt: 1 }) }] });
      link.send({ t: 'down', entries: [def(1, 'a')], from: 0, to: 1 });
      link.send({ t: 'down', entries: [def(3, 'b')], from: 1, to: 3 });
      expect(await link.next('ack')).toMatchObject({ down: 1 });
      expect(await link.next('ack')).toMatchObject({ down: 3 });
      const closed = closedWithin(link.ws, 5_000, 'the link of a page after a gap');
      link.send({ t: 'down', entries: [def(6, 'c')], from: 5, to: 6 });
      await closed;
      const again = await fake.link();
      expect(await again.next('hello')).toMatchObject({ down: 3 });
      expect(await taskNames(child.call)).toEqual(['a', 'b']);
      expect((await child.call('GET', '/hierarchy')).body.parent.lastError).toMatch(/gap/);
      again.ws.terminate();
    } finally {
      await fake.close();
    }
  });
});

/**
 * A parent core played by the test: its own CA and a link certificate naming its core id,
 * `GET /ca` and `POST /join` answered, and the link WebSocket handed to the test, which
 * speaks the protocol itself.
 */
/** Joins `child` to the fake parent, takes its link, reads its hello and welcomes it from cursor 0. */
async function welcomed(fake: Awaited<ReturnType<typeof fakeParent>>, child: TestCore): Promise<{ link: FakeLink; hello: unknown }> {
  await join(child, fake.url, fake.token);
  const link = await fake.link();
  const hello = await link.next('hello');
  link.send({ t: 'welcome', parent: fake.id, up: 0, editable: [] });
  return { link, hello };
}

async function fakeParent(): Promise<{ id: string; url: string; token: string; link(): Promise<FakeLink>; close(): Promise<void> }> {
  const dir = await tempDir('outpost-fake-parent-');
  const { authority } = await Authority.open(dir, 86_400_000);
  const cert = await issueLinkCert(authority, ['127.0.0.1']);
  const links: WebSocket[] = [];
  let waiting: ((link: FakeLink) => void) | undefined;
  const pending: FakeLink[] = [];
  const wss = new WebSocketServer({ noServer: true });
  const server: Server = createServer({ cert: cert.certPem + authority.certPem, key: cert.keyPem, requestCert: true, rejectUnauthorized: false }, (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(req.url === '/ca' ? { id: authority.coreId, name: 'fake', caPem: authority.certPem } : { parent: authority.coreId, name: 'fake' }));
    });
  });
  server.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => {
      links.push(ws);
      // Listening from the first byte: the child says hello at once.
      const link = fakeLink(ws);
      if (waiting) waiting(link);
      else pending.push(link);
      waiting = undefined;
    }),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    id: authority.coreId,
    url: `https://127.0.0.1:${port}`,
    token: `hjt_fake1234.${'s'.repeat(24)}.${certificateFingerprint(authority.certPem)}`,
    link: async () => {
      return pending.shift() ?? (await Promise.race([new Promise<FakeLink>((r) => (waiting = r)), new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no link in 10 s')), 10_000))]));
    },
    close: async () => {
      for (const ws of links) ws.terminate();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await removeDir(dir);
    },
  };
}

interface FakeLink {
  ws: WebSocket;
  send(m: unknown): void;
  /** The next message of type `t` (earlier ones of other types are skipped), within 5 s. */
  next(t: string): Promise<any>;
}

function fakeLink(ws: WebSocket): FakeLink {
  const inbox: any[] = [];
  ws.on('message', (d: Buffer) => inbox.push(JSON.parse(d.toString())));
  return {
    ws,
    send: (m) => ws.send(JSON.stringify(m)),
    next: async (t) => {
      const m = await waitFor(
        () => {
          while (inbox.length && inbox[0].t !== t) inbox.shift();
          return inbox.shift();
        },
        { timeoutMs: 5_000, what: `a '${t}' from the child` },
      );
      return m;
    },
  };
}
