// Hierarchy faults with real processes and sockets: a link cut by a black hole (a relay that
// drops traffic), kill -9 of either core mid-sync and of a child fetching package content.
// The link protocol at its edges (reconnections, pipelined pages) is in hierarchy-protocol.test.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startTcpRelay, waitFor, type TcpRelay } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, createToken, enrollAgent, newDataDir, startCore, type TestCore } from './harness.js';
import { join, journalWrites, parentAndChild, realClock, task, taskNames, type Call } from './hierarchy-helpers.js';

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
