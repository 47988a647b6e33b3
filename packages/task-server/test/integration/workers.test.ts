import { waitFor } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createTaskServer } from '@outpost/task-server';
import { defineJob, event, fakeAgent, startEnv, type Env, type FakeAgent } from '../harness.js';

let env: Env | undefined;
const agents: FakeAgent[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  for (const a of agents.splice(0)) await a.close();
  await env?.close();
  env = undefined;
});

type Run = { id: string };

describe('task server with workers (node:cluster)', () => {
  it('serves work, takes status events and pushes wake-ups over WebSockets held by its worker processes', async () => {
    env = await startEnv({ workers: 2 }, createTaskServer);
    await defineJob(env);
    const [a, b] = [await fakeAgent(env, 'pc-1'), await fakeAgent(env, 'pc-2')];
    agents.push(a, b);
    // a hears UDP tickles (from the primary); b holds a WebSocket in one of the workers.
    expect((await a.call('GET', `/agent/work?port=${a.port}`)).status).toBe(200);
    const frames: string[] = [];
    const ws = new WebSocket(`${env.ts.url.replace(/^http/, 'ws')}/api/v1/agent/ws`, { headers: { authorization: `Bearer ${b.bearer}` } });
    sockets.push(ws);
    ws.on('message', (d) => frames.push(String(d)));
    await waitFor(() => frames.some((f) => f.includes('"hello"')), { what: 'WebSocket hello' });
    await waitFor(() => ((env!.ts.stats().workers as { wsAgents: number }).wsAgents === 1 ? true : undefined), { what: 'the primary knows the socket' });
    expect((await a.call('GET', '/agent/work', undefined, `${a.id}.wrong`)).body).toMatchObject({ error: { code: 'TASK_BAD_CREDENTIAL' } });

    const run = await env.admin<{ id: string }>('POST', '/jobs/job1/runs', { all: true });
    await waitFor(() => a.tickles.length > 0 && frames.includes('{"t":"work"}'), { timeoutMs: 15_000, what: 'a UDP tickle and a WebSocket push' });
    for (const [x, via] of [[a, 'udp'], [b, 'ws']] as const) {
      const w = await x.call<{ runs: Run[] }>('GET', `/agent/work?via=${via}`);
      expect(w.body.runs.map((r) => r.id)).toEqual([run.body.id]);
      const events = [event(run.body.id, x.id, 0, 'running'), event(run.body.id, x.id, 0, 'succeeded', { exitCode: 0 }), event(run.body.id, x.id, -1, 'succeeded')];
      expect((await x.call('POST', '/agent/events', { events })).body).toEqual({ accepted: 3, stored: 3 });
    }
    const show = await waitFor(async () => {
      const r = (await env!.admin<{ counts: { succeeded: number }; via: Record<string, number> }>('GET', `/runs/${run.body.id}`)).body;
      return r.counts.succeeded === 2 && r;
    }, { timeoutMs: 15_000, what: 'both recorded at the core' });
    expect(show.via).toEqual({ udp: 1, ws: 1 });
    const health = (await (await fetch(`${env.ts.url}/api/v1/health`)).json()) as { worker: number; agents: number };
    expect(health).toMatchObject({ agents: 2 });
    expect(typeof health.worker).toBe('number');
  });
});
