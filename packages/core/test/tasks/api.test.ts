import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { decodeDatagram, TickleFlags } from '@outpost/common';
import { grantFor, waitFor } from '@outpost/testing';
import { enrollFleet, macAll, startCore, type Harness } from './harness.js';

type Json = Record<string, unknown>;
let h: Harness;
beforeEach(async () => {
  h = await startCore();
});
afterEach(async () => {
  await h.close();
});

const ev = (run: string, agent: string, step: number, state: string, at: number, extra: Json = {}) => ({
  id: `${run}:${agent}:${step}:0:${state}`,
  run,
  agent,
  step,
  attempt: 0,
  state,
  at,
  ...extra,
});

async function defineTwoStepJob(): Promise<void> {
  expect((await h.admin('POST', '/tasks', { name: 'check', kind: 'command', program: 'true', timeout: '30s' })).status).toBe(201);
  expect((await h.admin('POST', '/tasks', { name: 'install', kind: 'script', script: 'echo hi' })).status).toBe(201);
  expect((await h.admin('POST', '/jobs', { name: 'inner', steps: [{ task: 'install' }] })).status).toBe(201);
  expect((await h.admin('POST', '/jobs', { name: 'deploy', steps: [{ task: 'check' }, { job: 'inner', onFailure: 'continue' }] })).status).toBe(201);
}

describe('tasks and jobs', () => {
  it('validates, stores, clones and refuses cycles and dangling references', async () => {
    await defineTwoStepJob();
    expect((await h.admin('POST', '/tasks', { name: 'x', kind: 'command' })).body).toMatchObject({ error: { code: 'COMMON_VALIDATION' } });
    expect((await h.admin('POST', '/tasks', { name: 'check', kind: 'command', program: 'x' })).status).toBe(409);
    expect((await h.admin('POST', '/jobs', { name: 'bad', steps: [{ task: 'nope' }] })).body).toMatchObject({ error: { code: 'CORE_TASK_NOT_FOUND' } });
    const cyc = await h.admin('PUT', '/jobs/inner', { name: 'inner', steps: [{ job: 'deploy' }] });
    expect(cyc.body).toMatchObject({ error: { code: 'CORE_TASK_JOB_CYCLE' } });
    expect((await h.admin('DELETE', '/tasks/check')).body).toMatchObject({ error: { code: 'CORE_TASK_IN_USE' } });
    expect((await h.admin('POST', '/jobs/deploy/clone', { name: 'deploy2' })).status).toBe(201);
    const job = await h.admin<{ flattened: Array<{ name: string; task: Json; onFailure: string }> }>('GET', '/jobs/deploy2');
    expect(job.body.flattened.map((s) => s.name)).toEqual(['check', 'install']);
    expect(job.body.flattened[0]!.task).toEqual({ kind: 'command', program: 'true', timeoutMs: 30_000 });
    expect((await h.admin<{ items: unknown[] }>('GET', '/tasks')).body.items).toHaveLength(2);
  });
});

describe('runs', () => {
  it('serves pending work and keys to the task server, records events idempotently, summarises', async () => {
    await defineTwoStepJob();
    const { ts, agents } = await enrollFleet(h, 3);
    const run = await h.admin<{ id: string; agents: number }>('POST', '/jobs/deploy/runs', { all: true });
    expect(run.status).toBe(201);
    expect(run.body.agents).toBe(3);
    const id = run.body.id;

    const keys = await h.as<{ items: Array<{ id: string; key: string }> }>(ts.bearer, 'GET', '/task-service/agents?limit=2');
    expect(keys.body.items).toHaveLength(2);
    const k = agents.find((a) => a.id === keys.body.items[0]!.id)!;
    expect(keys.body.items[0]!.key).toBe(k.taskKey.toString('base64'));
    expect((await h.as(agents[0]!.bearer, 'GET', '/task-service/pending')).status).toBe(403);

    const p1 = await h.as<{ seq: number; runs: Array<{ id: string; agents: string[]; steps: unknown[] }>; next?: string }>(ts.bearer, 'GET', '/task-service/pending?limit=2');
    expect(p1.body.runs[0]!.agents).toHaveLength(2);
    expect(p1.body.next).toBeDefined();
    const p2 = await h.as<{ runs: Array<{ agents: string[] }>; next?: string }>(ts.bearer, 'GET', `/task-service/pending?limit=2&cursor=${p1.body.next}`);
    expect(p2.body.runs[0]!.agents).toHaveLength(1);
    expect(p2.body.next).toBeUndefined();
    const none = await h.as<{ runs: unknown[] }>(ts.bearer, 'GET', `/task-service/pending?since=${p1.body.seq}`);
    expect(none.body.runs).toHaveLength(0);

    const [a, b, c] = agents.map((x) => x.id) as [string, string, string];
    const t = Date.now();
    const batch = [
      ev(id, a, -1, 'tickled', t, { via: 'udp' }),
      ev(id, a, -1, 'fetched', t + 1),
      ev(id, a, 0, 'running', t + 2),
      ev(id, a, 0, 'succeeded', t + 3, { exitCode: 0 }),
      ev(id, a, 1, 'running', t + 4),
      ev(id, a, 1, 'succeeded', t + 5, { exitCode: 0, output: 'hi\n' }),
      ev(id, a, -1, 'succeeded', t + 6),
      ev(id, b, 0, 'failed', t + 3, { exitCode: 2, error: 'exit' }),
      ev(id, b, -1, 'failed', t + 6, { error: 'step 1 failed' }),
    ];
    const signed = macAll(agents, batch);
    expect((await h.as(ts.bearer, 'POST', '/task-service/events', { events: signed })).body).toEqual({ accepted: 9, duplicates: 0, unknown: 0, refused: 0 });
    expect((await h.as(ts.bearer, 'POST', '/task-service/events', { events: signed })).body).toEqual({ accepted: 9, duplicates: 9, unknown: 0, refused: 0 });
    const unknown = await h.as(ts.bearer, 'POST', '/task-service/events', { events: [ev('run_nope', a, -1, 'fetched', t)] });
    expect(unknown.body).toMatchObject({ unknown: 1 });

    const show = await h.admin<Json>('GET', `/runs/${id}`);
    expect(show.body).toMatchObject({
      state: 'active',
      counts: { succeeded: 1, failed: 1, queued: 1 },
      failures: [{ error: "step 1 'check': exit 2", count: 1 }],
      via: { udp: 1 },
      notReached: { agents: [{ agent: c }] },
    });
    expect((show.body.hops as Record<string, { count: number }>).recorded!.count).toBe(2);
    const detail = await h.admin<{ steps: Array<Json> }>('GET', `/runs/${id}/agents/${a}`);
    expect(detail.body.steps[1]).toMatchObject({ name: 'install', state: 'succeeded', output: 'hi\n', truncated: false });

    expect((await h.admin('POST', `/runs/${id}/cancel`)).body).toMatchObject({ state: 'cancelled', counts: { cancelled: 1 } });
    expect((await h.admin('POST', `/runs/${id}/cancel`)).body).toMatchObject({ error: { code: 'CORE_TASK_RUN_FINISHED' } });
    const after = await h.as<{ runs: Array<{ id: string; cancelled: boolean }> }>(ts.bearer, 'GET', `/task-service/pending?since=${p1.body.seq}`);
    expect(after.body.runs).toMatchObject([{ id, cancelled: true }]);
  });

  it('expires agents not reached, with the reason', async () => {
    await defineTwoStepJob();
    const { agents } = await enrollFleet(h, 2);
    const run = await h.admin<{ id: string }>('POST', '/jobs/deploy/runs', { agents: [agents[0]!.id], expires: '150ms' });
    const show = await waitFor(async () => {
      const r = await h.admin<{ state: string; notReached: { reasons: Record<string, number> } }>('GET', `/runs/${run.body.id}`);
      return r.body.state === 'expired' && r.body;
    });
    expect(show.notReached.reasons).toEqual({ 'task-server-has-not-fetched': 1 });
  });

  it('skips agents that already ran a run-once key, and refuses unknown agents', async () => {
    await defineTwoStepJob();
    const { agents } = await enrollFleet(h, 2);
    const r1 = await h.admin<{ agents: number }>('POST', '/jobs/deploy/runs', { agents: [agents[0]!.id], once: 'k1' });
    expect(r1.body.agents).toBe(1);
    const r2 = await h.admin<{ agents: number; skipped: number }>('POST', '/jobs/deploy/runs', { all: true, once: 'k1' });
    expect(r2.body).toMatchObject({ agents: 1, skipped: 1 });
    expect((await h.admin('POST', '/jobs/deploy/runs', { all: true, once: 'k1' })).body).toMatchObject({ error: { code: 'CORE_TASK_NO_TARGETS' } });
    expect((await h.admin('POST', '/jobs/deploy/runs', { agents: ['ag_nope'] })).body).toMatchObject({ error: { code: 'CORE_TASK_UNKNOWN_AGENTS' } });
  });
});

describe('task server changes', () => {
  it('wakes the task server that agents move to with CONFIG|WORK, so it re-reads their work', async () => {
    await defineTwoStepJob();
    await enrollFleet(h, 3);
    const sock = createSocket('udp4');
    const got: Buffer[] = [];
    sock.on('message', (m) => got.push(m));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const t = await h.core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ task: { url: 'http://127.0.0.1:2' } }, { tickleAddress: `127.0.0.1:${sock.address().port}` }) });
    await fetch(`${h.core.url}/api/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: t.token, name: 'ts2', tickleAddress: `127.0.0.1:${sock.address().port}`, services: { task: { url: 'http://127.0.0.1:2' } } }),
    });
    await waitFor(() => got.some((m) => {
      const d = decodeDatagram(m);
      return d.ok && d.value.flags === (TickleFlags.CONFIG | TickleFlags.WORK);
    }), { what: 'a CONFIG|WORK tickle' });
    sock.close();
  });
});
