import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger, validateConfig } from '@outpost/common';
import { waitFor } from '@outpost/testing';
import { coreConfigSchema, createCore } from '../../src/index.js';
import { enrollFleet, startCore, type Harness } from './harness.js';

let h: Harness | undefined;
let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  await h?.close();
  h = undefined;
  cleanup = undefined;
});

interface Show {
  state: string;
  server?: boolean;
  counts: Record<string, number>;
  via: Record<string, number>;
  hops: Record<string, { count: number }>;
  failures: Array<{ error: string; count: number }>;
}
interface Detail {
  state: string;
  via?: string;
  steps: Array<{ name: string; state: string; attempt?: number; exitCode?: number; error?: string; output?: string; truncated?: boolean }>;
}

describe('server tasks (run by the core)', () => {
  it('runs the steps once per target agent in the core, with the job logic, timeout, output cap and agent context, recorded like agent steps', async () => {
    h = await startCore({ serverOutputCap: 1_000 });
    const { ts, agents } = await enrollFleet(h, 2);
    const log = join(h.dir, 'notified');
    const post = async (path: string, body: unknown): Promise<void> => expect((await h!.admin('POST', path, body)).status).toBe(201);
    await post('/tasks', { name: 'notify', kind: 'server', script: `echo "$OUTPOST_AGENT_NAME $OUTPOST_RUN_ID" >> ${log}; echo notified $OUTPOST_AGENT_ID` });
    await post('/tasks', { name: 'flaky', kind: 'server', program: 'sh', args: ['-c', 'exit 3'] });
    await post('/tasks', { name: 'flood', kind: 'server', program: 'sh', args: ['-c', 'head -c 5000 /dev/zero | tr "\\0" y'] });
    await post('/tasks', { name: 'hang', kind: 'server', script: 'sleep 30 & sleep 30', timeout: '300ms' });
    await post('/jobs', { name: 'central', steps: [{ task: 'notify' }, { task: 'flaky', onFailure: 'retry', retries: 1 }, { task: 'flood' }] });

    const run = await h.admin<{ id: string; agents: number }>('POST', '/jobs/central/runs', { all: true });
    expect(run.body.agents).toBe(2);
    const show = await waitFor(async () => {
      const r = (await h!.admin<Show>('GET', `/runs/${run.body.id}`)).body;
      return r.state !== 'active' && r;
    }, { timeoutMs: 20_000, what: 'server run finished' });
    expect(show).toMatchObject({ server: true, counts: { failed: 2 }, via: { core: 2 } });
    expect(show.failures).toEqual([{ error: "step 2 'flaky': exit 3", count: 2 }]);
    expect(show.hops.recorded!.count).toBe(2);
    const d = (await h.admin<Detail>('GET', `/runs/${run.body.id}/agents/${agents[0]!.id}`)).body;
    expect(d.via).toBe('core');
    expect(d.steps.map((s) => [s.name, s.state, s.attempt, s.exitCode])).toEqual([
      ['notify', 'succeeded', 0, 0],
      ['flaky', 'failed', 1, 3],
      ['flood', 'skipped', 0, undefined],
    ]);
    expect(d.steps[0]!.output).toBe(`notified ${agents[0]!.id}\n`);
    const lines = (await readFile(log, 'utf8')).trim().split('\n').sort();
    expect(lines).toEqual([`pc-0 ${run.body.id}`, `pc-1 ${run.body.id}`]);

    // Timeout kills the step; continue goes on; the cap cuts output. Task servers never see server runs.
    await post('/jobs', { name: 'capped', steps: [{ task: 'hang', onFailure: 'continue' }, { task: 'flood' }] });
    const r2 = await h.admin<{ id: string }>('POST', '/jobs/capped/runs', { agents: [agents[1]!.id] });
    const pending = await h.as<{ runs: unknown[] }>(ts.bearer, 'GET', '/task-service/pending?since=0');
    expect(pending.body.runs).toEqual([]);
    const s2 = await waitFor(async () => {
      const r = (await h!.admin<Show>('GET', `/runs/${r2.body.id}`)).body;
      return r.state !== 'active' && r;
    }, { timeoutMs: 20_000, what: 'capped run finished' });
    expect(s2.counts.failed).toBe(1);
    const d2 = (await h.admin<Detail>('GET', `/runs/${r2.body.id}/agents/${agents[1]!.id}`)).body;
    expect(d2.steps[0]).toMatchObject({ state: 'failed', error: 'timeout' });
    expect(d2.steps[1]).toMatchObject({ state: 'succeeded', truncated: true });
    expect(d2.steps[1]!.output).toHaveLength(1_000);
  });

  it('refuses a job that mixes server and agent tasks, and cancels a running server step', async () => {
    h = await startCore();
    const { agents } = await enrollFleet(h, 1);
    await h.admin('POST', '/tasks', { name: 'local', kind: 'command', program: 'true' });
    await h.admin('POST', '/tasks', { name: 'central', kind: 'server', program: 'sleep', args: ['30'] });
    expect((await h.admin('POST', '/tasks', { name: 'both', kind: 'server', program: 'true', script: 'true' })).body).toMatchObject({ error: { code: 'COMMON_VALIDATION' } });
    expect((await h.admin('POST', '/jobs', { name: 'mixed', steps: [{ task: 'local' }, { task: 'central' }] })).body).toMatchObject({ error: { code: 'CORE_TASK_MIXED_JOB' } });
    expect((await h.admin('POST', '/jobs', { name: 'slow', steps: [{ task: 'central' }] })).status).toBe(201);
    const run = await h.admin<{ id: string }>('POST', '/jobs/slow/runs', { agents: [agents[0]!.id] });
    await waitFor(async () => (await h!.admin<Show>('GET', `/runs/${run.body.id}`)).body.counts.running === 1, { what: 'server step running' });
    const t0 = Date.now();
    expect((await h.admin('POST', `/runs/${run.body.id}/cancel`)).status).toBe(200);
    await waitFor(() => ((h!.core.stats().tasks as { server: { backlog: number } }).server.backlog === 0 ? true : undefined), { what: 'server step killed' });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect((await h.admin<Show>('GET', `/runs/${run.body.id}`)).body.counts.cancelled).toBe(1);
  });

  it('after a core restart, records the step that was running as interrupted (not run again) and goes on with the job', async () => {
    h = await startCore();
    const { agents } = await enrollFleet(h, 1);
    const count = join(h.dir, 'ran');
    await h.admin('POST', '/tasks', { name: 'once', kind: 'server', script: `echo x >> ${count}; while [ ! -e ${join(h.dir, 'never')} ]; do sleep 0.05; done`, timeout: '2m' });
    await h.admin('POST', '/tasks', { name: 'after', kind: 'server', program: 'echo', args: ['after'] });
    await h.admin('POST', '/jobs', { name: 'two', steps: [{ task: 'once', onFailure: 'continue' }, { task: 'after' }] });
    const run = await h.admin<{ id: string }>('POST', '/jobs/two/runs', { agents: [agents[0]!.id] });
    await waitFor(() => readFile(count, 'utf8').then((t) => t === 'x\n'), { what: 'first step running' });
    await h.core.stop();
    const core = createCore(validateConfig(coreConfigSchema, { dataDir: h.dir, http: { port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, tasks: { tickInterval: 50 } }, { file: 'test' }), { logger: silentLogger() });
    await core.start();
    cleanup = () => core.stop();
    const get = async <T>(path: string): Promise<T> => (await (await fetch(`${core.url}/api/v1${path}`, { headers: { authorization: `Bearer ${core.adminToken}` } })).json()) as T;
    const show = await waitFor(async () => {
      const r = await get<Show>(`/runs/${run.body.id}`);
      return r.state !== 'active' && r;
    }, { timeoutMs: 20_000, what: 'run finished after the restart' });
    expect(show.counts.failed).toBe(1);
    const d = await get<Detail>(`/runs/${run.body.id}/agents/${agents[0]!.id}`);
    expect(d.steps.map((x) => [x.state, x.error])).toEqual([
      ['failed', 'interrupted'],
      ['succeeded', undefined],
    ]);
    expect(await readFile(count, 'utf8')).toBe('x\n');
    await writeFile(join(h.dir, 'never'), '');
  });
});
