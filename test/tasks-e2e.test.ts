import { createSocket } from 'node:dgram';
import { readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import type { OutpostAgent } from '@outpost/agent';
import { DatagramType, encodeDatagram, TickleFlags } from '@outpost/common';
import type { TaskServer } from '@outpost/task-server';
import { freePort, grantFor, removeDir, tempDir, waitFor } from '@outpost/testing';
import { describe, expect, it } from 'vitest';
import { kill9, startCoreProc, type CoreProc } from './fixtures/core-proc.js';
import { adminOk, cleanupAfterEach, testAgent, testTaskServer } from './fixtures/e2e.js';

/**
 * End to end: a core (in a child process, so it can be killed with -9), a task server
 * and real agents that run real processes, on loopback.
 */

const onCleanup = cleanupAfterEach();

/**
 * Robust under load (a shared 2-core machine running other suites): every wait is on a
 * condition, bounded generously (`WAIT`); steps that must still be running when the test
 * acts wait on a gate file, not a sleep; and a "within N seconds" claim is scaled by how
 * loaded the machine is (1x when it is not), so it still fails when the path is slow on
 * an idle machine.
 */
const WAIT = 60_000;
const TEST_TIMEOUT = 180_000;
const withinMs = (ms: number): number => Math.round(ms * Math.max(1, loadavg()[0]! / cpus().length));
/** A script that blocks until `file` exists (bounded by the task's own timeout). */
const gate = (file: string): string => `while [ ! -e '${file}' ]; do sleep 0.05; done`;



interface Fleet {
  core: CoreProc;
  coreDir: string;
  ports: { http: number; udp: number };
  ts: TaskServer;
  agents: OutpostAgent[];
  agentDirs: string[];
}

async function fleet(n: number, opts: { tickleDropRate?: number; websocket?: 'auto' | 'always' | 'never'; pollInterval?: string } = {}): Promise<Fleet> {
  const coreDir = await tempDir('outpost-e2e-core-');
  const ports = { http: await freePort('tcp'), udp: await freePort('udp') };
  const f: Fleet = { core: await startCoreProc(coreDir, ports.http, ports.udp), coreDir, ports, agents: [], agentDirs: [] } as unknown as Fleet;
  onCleanup(async () => {
    await kill9(f.core);
    await removeDir(coreDir);
  });
  const tsDir = await tempDir('outpost-e2e-ts-');
  const ssToken = await adminOk<{ token: string }>(f.core, 'POST', '/tokens', { for: 'site-server', grant: grantFor({ task: {} }) });
  f.ts = testTaskServer({
    coreUrl: f.core.url,
    dataDir: tsDir,
    name: 'ts-e2e',
    enrollToken: ssToken.token,
    agents: { tickleDropRate: opts.tickleDropRate ?? 0, pollInterval: opts.pollInterval ?? '30m', retickleAfter: '1s' },
    forward: { retryBase: '100ms', retryCap: '500ms' },
  });
  await f.ts.start();
  onCleanup(async () => {
    await f.ts.stop();
    await removeDir(tsDir);
  });
  const agentToken = await adminOk<{ token: string }>(f.core, 'POST', '/tokens', { for: 'agent', uses: n + 1 });
  for (let i = 0; i < n; i++) {
    const dir = await tempDir('outpost-e2e-agent-');
    f.agentDirs.push(dir);
    const agent = testAgent({
      coreUrl: f.core.url,
      dataDir: dir,
      name: `pc-${i}`,
      enrollToken: agentToken.token,
      tasks: { websocket: opts.websocket ?? 'auto', reconnectSpread: '300ms' },
    });
    await agent.start();
    f.agents.push(agent);
    onCleanup(async () => {
      await agent.stop();
      await removeDir(dir);
    });
  }
  // Every agent knows its task server and the task server knows where it listens.
  await waitFor(() => f.agents.every((a) => a.config?.taskServer?.id === f.ts.id && (a.tasks?.stats.fetches ?? 0) > 0), { timeoutMs: WAIT, what: 'agents attached to the task server' });
  return f;
}

interface RunShow {
  state: string;
  counts: Record<string, number>;
  hops: Record<string, { count: number; p50: number; max: number }>;
  via: Record<string, number>;
  failures: Array<{ error: string; count: number }>;
}
interface AgentDetail {
  state: string;
  hops: Record<string, string | undefined>;
  steps: Array<{ name: string; state: string; attempt?: number; exitCode?: number; error?: string; output?: string; truncated?: boolean; startedAt?: string; finishedAt?: string }>;
}

async function defineJobs(core: CoreProc): Promise<void> {
  await adminOk(core, 'POST', '/tasks', { name: 'check', kind: 'script', script: 'test -n "$0"; echo checked', timeout: '10s' });
  await adminOk(core, 'POST', '/tasks', { name: 'fail', kind: 'command', program: 'sh', args: ['-c', 'echo nope; exit 3'] });
  await adminOk(core, 'POST', '/tasks', { name: 'install', kind: 'command', program: 'echo', args: ['installed'] });
  await adminOk(core, 'POST', '/jobs', { name: 'deploy', steps: [{ task: 'check' }, { task: 'install' }] });
  await adminOk(core, 'POST', '/jobs', { name: 'guarded', steps: [{ task: 'fail' }, { task: 'install' }] });
}

const finished = (core: CoreProc, id: string, timeoutMs = WAIT): Promise<RunShow> =>
  waitFor(
    async () => {
      const r = await adminOk<RunShow>(core, 'GET', `/runs/${id}`);
      return r.state !== 'active' && r.hops.tickled!.count + r.hops.fetched!.count > 0 && r;
    },
    { timeoutMs, what: `run ${id} finished` },
  );

describe('tasks end to end', () => {
  it('runs a two-step job on a few agents within seconds, the second step only after the first exits 0, with every hop timed', async () => {
    const f = await fleet(3);
    await defineJobs(f.core);
    const t0 = Date.now();
    const run = await adminOk<{ id: string; agents: number }>(f.core, 'POST', '/jobs/deploy/runs', { all: true });
    expect(run.agents).toBe(3);
    const show = await waitFor(async () => {
      const r = await adminOk<RunShow>(f.core, 'GET', `/runs/${run.id}`);
      return r.counts.succeeded === 3 && r.hops.tickled!.count === 3 && r;
    }, { timeoutMs: WAIT, what: 'the run succeeded on 3 agents' });
    expect(Date.now() - t0).toBeLessThan(withinMs(5_000));
    for (const hop of ['dispatched', 'tickled', 'fetched', 'started', 'ended', 'recorded']) expect(show.hops[hop]!.count, hop).toBe(3);
    expect(show.via).toEqual({ udp: 3 });
    const agentId = f.agents[0]!.id!;
    const detail = await adminOk<AgentDetail>(f.core, 'GET', `/runs/${run.id}/agents/${agentId}`);
    expect(detail.steps.map((s) => [s.name, s.state, s.exitCode])).toEqual([
      ['check', 'succeeded', 0],
      ['install', 'succeeded', 0],
    ]);
    expect(detail.steps[1]!.output).toBe('installed\n');
    expect(Object.values(detail.hops).every((t) => typeof t === 'string')).toBe(true);

    const guarded = await adminOk<{ id: string }>(f.core, 'POST', '/jobs/guarded/runs', { agents: [agentId] });
    const g = await finished(f.core, guarded.id);
    expect(g.counts.failed).toBe(1);
    expect(g.failures).toEqual([{ error: "step 1 'fail': exit 3", count: 1 }]);
    const gd = await adminOk<AgentDetail>(f.core, 'GET', `/runs/${guarded.id}/agents/${agentId}`);
    expect(gd.steps.map((s) => s.state)).toEqual(['failed', 'skipped']);
  }, TEST_TIMEOUT);

  it('keeps accepting statuses while the core is killed -9 mid-run, and delivers them all once it is back, none twice', async () => {
    const f = await fleet(3);
    // The first step runs until the test opens its gate: after the core is killed.
    const open = `${f.agentDirs[0]!}/gate-open`;
    await adminOk(f.core, 'POST', '/tasks', { name: 'slow', kind: 'script', script: gate(open), timeout: '2m' });
    await adminOk(f.core, 'POST', '/tasks', { name: 'after', kind: 'command', program: 'echo', args: ['done'] });
    await adminOk(f.core, 'POST', '/jobs', { name: 'slow-job', steps: [{ task: 'slow' }, { task: 'after' }] });
    const run = await adminOk<{ id: string }>(f.core, 'POST', '/jobs/slow-job/runs', { all: true });
    type OutboxStats = { received: number; pending: number; failures: number };
    // Every agent is held at its gate and the task server has nothing in flight: the kill
    // cannot land between the core's write and its answer (that batch would be sent again).
    await waitFor(async () => (await adminOk<RunShow>(f.core, 'GET', `/runs/${run.id}`)).counts.running === 3 && (f.ts.stats().outbox as OutboxStats).pending === 0, {
      timeoutMs: WAIT,
      what: 'all agents running, every status so far delivered',
    });
    await kill9(f.core);
    await writeFile(open, '');
    // The steps end while the core is down: the task server stores every status.
    await waitFor(() => {
      const o = f.ts.stats().outbox as OutboxStats;
      return o.pending >= 3 * 4 && o.failures > 0;
    }, { timeoutMs: WAIT, what: 'statuses held by the task server' });
    f.core = await startCoreProc(f.coreDir, f.ports.http, f.ports.udp);
    const show = await waitFor(async () => {
      const r = await adminOk<RunShow>(f.core, 'GET', `/runs/${run.id}`);
      return r.counts.succeeded === 3 && r;
    }, { timeoutMs: WAIT, what: 'all statuses delivered after the restart' });
    expect(show.counts).toMatchObject({ succeeded: 3, failed: 0, running: 0 });
    // The core applies a batch before the task server hears its answer: the outbox empties just after.
    await waitFor(() => (f.ts.stats().outbox as OutboxStats).pending === 0, { timeoutMs: WAIT, what: 'outbox emptied' });
    const stats = await adminOk<{ tasks: { duplicates: number; applied: number } }>(f.core, 'GET', '/stats');
    expect(stats.tasks.duplicates).toBe(0);
    for (const a of f.agents) {
      const d = await adminOk<AgentDetail>(f.core, 'GET', `/runs/${run.id}/agents/${a.id}`);
      expect(d.steps.map((s) => [s.state, s.attempt])).toEqual([
        ['succeeded', 0],
        ['succeeded', 0],
      ]);
    }
  }, TEST_TIMEOUT);

  it('delivers work when every UDP tickle is lost: by poll, then over the WebSocket the agents open', async () => {
    const f = await fleet(2, { tickleDropRate: 1, websocket: 'auto', pollInterval: '2s' });
    await defineJobs(f.core);
    const r1 = await adminOk<{ id: string }>(f.core, 'POST', '/jobs/deploy/runs', { all: true });
    const s1 = await waitFor(async () => {
      const r = await adminOk<RunShow>(f.core, 'GET', `/runs/${r1.id}`);
      return r.counts.succeeded === 2 && r;
    }, { timeoutMs: WAIT, what: 'run 1 delivered by poll' });
    expect(s1.via).toEqual({ poll: 2 });
    expect((f.ts.stats().tickles as { dropped: number }).dropped).toBeGreaterThan(0);
    await waitFor(() => f.agents.every((a) => a.tasks?.stats.ws.connected), { timeoutMs: WAIT, what: 'agents on WebSockets' });
    const r2 = await adminOk<{ id: string }>(f.core, 'POST', '/jobs/deploy/runs', { all: true });
    const s2 = await waitFor(async () => {
      const r = await adminOk<RunShow>(f.core, 'GET', `/runs/${r2.id}`);
      return r.counts.succeeded === 2 && r;
    }, { timeoutMs: WAIT, what: 'run 2 delivered over WebSockets' });
    expect(s2.via).toEqual({ ws: 2 });
  }, TEST_TIMEOUT);

  it('kills a hanging step at its timeout, caps an output flood at 64 KiB, and drops forged agent tickles', async () => {
    const f = await fleet(1);
    await adminOk(f.core, 'POST', '/tasks', { name: 'hang', kind: 'script', script: 'sleep 60 & sleep 60', timeout: '500ms' });
    await adminOk(f.core, 'POST', '/tasks', { name: 'flood', kind: 'script', script: 'head -c 1000000 /dev/zero | tr "\\0" y' });
    await adminOk(f.core, 'POST', '/jobs', { name: 'bad', steps: [{ task: 'hang', onFailure: 'continue' }, { task: 'flood' }] });
    const agent = f.agents[0]!;
    const port = agent.tasks!.ticklePort;
    const s = createSocket('udp4');
    const forged = encodeDatagram({ type: DatagramType.TICKLE, flags: TickleFlags.WORK, timestamp: Date.now(), seq: 0, sender: f.ts.id, payload: Buffer.from(agent.id!) }, Buffer.alloc(32, 7));
    for (const b of [forged, Buffer.alloc(3_000, 1), Buffer.from('junk')]) await new Promise<void>((r) => s.send(b, port, '127.0.0.1', () => r()));
    s.close();
    const run = await adminOk<{ id: string }>(f.core, 'POST', '/jobs/bad/runs', { all: true });
    const show = await finished(f.core, run.id);
    expect(show.failures).toEqual([{ error: "step 1 'hang': timeout", count: 1 }]);
    const d = await adminOk<AgentDetail>(f.core, 'GET', `/runs/${run.id}/agents/${agent.id}`);
    expect(d.steps[0]).toMatchObject({ state: 'failed', error: 'timeout' });
    // Killed at its 500 ms timeout, not after its 60 s sleep (the agent's own step times).
    const hung = Date.parse(d.steps[0]!.finishedAt!) - Date.parse(d.steps[0]!.startedAt!);
    expect(hung).toBeGreaterThanOrEqual(500);
    expect(hung).toBeLessThan(withinMs(5_000));
    expect(d.steps[1]).toMatchObject({ state: 'succeeded', truncated: true });
    expect(Buffer.byteLength(d.steps[1]!.output ?? '')).toBe(65_536);
    expect(agent.tasks!.stats.tickles.dropped).toMatchObject({ 'bad-mac': 1, 'too-long': 1, 'too-short': 1 });
  }, TEST_TIMEOUT);

  it('does not run a finished step again when the agent restarts mid-job', async () => {
    const f = await fleet(1);
    const dir = f.agentDirs[0]!;
    const marker = `${dir}/ran-first`;
    await adminOk(f.core, 'POST', '/tasks', { name: 'first', kind: 'script', script: `echo once >> ${marker}` });
    // Blocks until the agent is stopped (its gate never opens); the task timeout bounds it.
    await adminOk(f.core, 'POST', '/tasks', { name: 'second', kind: 'script', script: gate(`${dir}/never`), timeout: '2m' });
    await adminOk(f.core, 'POST', '/tasks', { name: 'third', kind: 'command', program: 'echo', args: ['3'] });
    await adminOk(f.core, 'POST', '/jobs', { name: 'three', steps: [{ task: 'first' }, { task: 'second', onFailure: 'continue' }, { task: 'third' }] });
    const agent = f.agents[0]!;
    const run = await adminOk<{ id: string }>(f.core, 'POST', '/jobs/three/runs', { all: true });
    await waitFor(async () => (await adminOk<AgentDetail>(f.core, 'GET', `/runs/${run.id}/agents/${agent.id}`)).steps[1]!.state === 'running', { timeoutMs: WAIT, what: 'second step running' });
    await agent.stop();
    await agent.start();
    const show = await finished(f.core, run.id);
    expect(show.counts.failed).toBe(1);
    const d = await adminOk<AgentDetail>(f.core, 'GET', `/runs/${run.id}/agents/${agent.id}`);
    expect(d.steps.map((s) => [s.state, s.error])).toEqual([
      ['succeeded', undefined],
      ['failed', 'interrupted'],
      ['succeeded', undefined],
    ]);
    expect(await readFile(marker, 'utf8')).toBe('once\n');
  }, TEST_TIMEOUT);
});
