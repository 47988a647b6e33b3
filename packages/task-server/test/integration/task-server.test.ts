import { createSocket } from 'node:dgram';
import { DatagramType, datagramKey, encodeDatagram, openDatagram, ReplayGuard, TickleFlags } from '@outpost/common';
import { waitFor } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { defineJob, event, fakeAgent, startEnv, type Env, type FakeAgent } from '../harness.js';
import { AGENT_EVENTS_LIMIT } from '../../src/fast-routes.js';

let env: Env | undefined;
const agents: FakeAgent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.close();
  await env?.close();
  env = undefined;
});

type Run = { id: string; job: string; steps: unknown[]; cancelled: boolean };

describe('task server', () => {
  it('fetches work on a core tickle, tickles the agent over UDP, serves the work and forwards its events', async () => {
    env = await startEnv();
    await defineJob(env);
    const a = await fakeAgent(env, 'pc-1');
    agents.push(a);
    // The agent's first fetch registers where it listens for tickles.
    expect((await a.call<{ runs: Run[]; pollAfterMs: number }>('GET', `/agent/work?port=${a.port}`)).body).toMatchObject({ runs: [] });
    const run = await env.admin<{ id: string }>('POST', '/jobs/job1/runs', { agents: [a.id] });
    await waitFor(() => a.tickles.length > 0, { what: 'a UDP tickle' });
    const opened = openDatagram(a.tickles[0]!, (s) => (s === env!.ts.id ? a.key : undefined), new ReplayGuard());
    expect(opened.ok && opened.value.type === DatagramType.TICKLE && opened.value.payload.toString()).toBe(a.id);

    const work = await a.call<{ runs: Run[] }>('GET', '/agent/work?via=udp');
    expect(work.body.runs).toMatchObject([{ id: run.body.id, job: 'job1', cancelled: false }]);
    const events = [event(run.body.id, a.id, 0, 'running'), event(run.body.id, a.id, 0, 'succeeded', { exitCode: 0, output: 'hi\n' }), event(run.body.id, a.id, -1, 'succeeded')];
    expect((await a.call('POST', '/agent/events', { events })).body).toEqual({ accepted: 3, stored: 3 });
    // Redelivery (the agent missed our answer) is recognised, not forwarded twice.
    expect((await a.call('POST', '/agent/events', { events })).body).toEqual({ accepted: 3, stored: 0 });
    const show = await waitFor(async () => {
      const r = await env!.admin<{ counts: { succeeded: number }; via: Record<string, number>; hops: Record<string, { count: number }> }>('GET', `/runs/${run.body.id}`);
      // The tickle's own event may reach the core after the agent's final one: late events still count.
      return r.body.counts.succeeded === 1 && r.body.hops.tickled!.count === 1 && r.body;
    });
    expect(show.via).toEqual({ udp: 1 });
    for (const hop of ['dispatched', 'tickled', 'fetched', 'started', 'ended', 'recorded']) expect(show.hops[hop]!.count, hop).toBe(1);
    expect((await a.call<{ runs: Run[] }>('GET', '/agent/work')).body.runs).toEqual([]);
  });

  it('refuses bad credentials, unknown agents and events about other agents, with codes', async () => {
    env = await startEnv();
    await defineJob(env);
    const [a, b] = [await fakeAgent(env, 'pc-1'), await fakeAgent(env, 'pc-2')];
    agents.push(a, b);
    expect((await a.call('GET', '/agent/work', undefined, `${a.id}.wrong`)).body).toMatchObject({ error: { code: 'TASK_BAD_CREDENTIAL' } });
    expect((await a.call('GET', '/agent/work', undefined, 'ag_nobody.xyz')).body).toMatchObject({ error: { code: 'TASK_UNKNOWN_AGENT' } });
    expect((await a.call('GET', '/agent/work', undefined, 'garbage')).status).toBe(401);
    const run = await env.admin<{ id: string }>('POST', '/jobs/job1/runs', { all: true });
    await waitFor(async () => (await a.call<{ runs: Run[] }>('GET', '/agent/work')).body.runs.length === 1);
    expect((await a.call('POST', '/agent/events', { events: [event(run.body.id, b.id, -1, 'succeeded')] })).body).toMatchObject({ error: { code: 'TASK_NOT_YOUR_EVENT' } });
    expect((await a.call('POST', '/agent/events', { events: [event('run_x', a.id, -1, 'succeeded')] })).body).toMatchObject({ error: { code: 'TASK_UNKNOWN_RUN' } });
    // Hop marks are the task server's own (they carry no agent MAC): an agent cannot post them.
    expect((await a.call('POST', '/agent/events', { events: [event(run.body.id, a.id, -1, 'tickled')] })).body).toMatchObject({ error: { code: 'TASK_NOT_YOUR_EVENT' } });
    // The status path's body rules (answered before koa): JSON only, within the limit, parseable.
    const post = async (body: string, type = 'application/json', extra: Record<string, string> = {}) => {
      const r = await fetch(`${env!.ts.url}/api/v1/agent/events`, { method: 'POST', headers: { authorization: `Bearer ${a.bearer}`, 'content-type': type, ...extra }, body });
      return { status: r.status, body: (await r.json()) as { error: { code: string } } };
    };
    expect(await post('{}', 'text/plain')).toMatchObject({ status: 415, body: { error: { code: 'COMMON_UNSUPPORTED_MEDIA_TYPE' } } });
    expect(await post('{"events": [')).toMatchObject({ status: 400, body: { error: { code: 'COMMON_BAD_JSON' } } });
    expect(await post('{"events": 1}')).toMatchObject({ status: 400, body: { error: { code: 'COMMON_VALIDATION' } } });
    expect(await post(`{"events": [], "pad": "${'x'.repeat(AGENT_EVENTS_LIMIT)}"}`)).toMatchObject({ status: 413, body: { error: { code: 'COMMON_BODY_TOO_LARGE' } } });
  });

  it('drops and counts forged, replayed, oversized and garbage core tickles', async () => {
    env = await startEnv();
    const [host, port] = env.ts.tickleAddress.split(':') as [string, string];
    const s = createSocket('udp4');
    const send = (b: Buffer): Promise<void> => new Promise((r) => s.send(b, Number(port), host, () => r()));
    const key = datagramKey('not-the-key');
    const stamp = { timestamp: Date.now(), seq: 1 };
    await send(encodeDatagram({ type: DatagramType.TICKLE, flags: TickleFlags.WORK, ...stamp, sender: 'core', payload: Buffer.alloc(0) }, key));
    await send(Buffer.from('hello'));
    await send(Buffer.alloc(2_000, 1));
    // A real one, then its replay.
    env.core.tickle([env.ts.id], TickleFlags.WORK);
    await waitFor(() => ((env!.ts.stats().coreTickles as { accepted: number }).accepted >= 1));
    const stats = env.ts.stats().coreTickles as { received: number; accepted: number; dropped: Record<string, number> };
    expect(stats.dropped).toMatchObject({ 'bad-mac': 1, 'too-short': 1, 'too-long': 1 });
    s.close();
  });

  it('pushes wake-ups over a WebSocket, and the agent fetches with via=ws', async () => {
    env = await startEnv();
    await defineJob(env);
    const a = await fakeAgent(env, 'pc-ws');
    agents.push(a);
    await a.call('GET', '/agent/work');
    const frames: string[] = [];
    const ws = new WebSocket(`${env.ts.url.replace('http', 'ws')}/api/v1/agent/ws`, { headers: { authorization: `Bearer ${a.bearer}` } });
    ws.on('message', (d) => frames.push(String(d)));
    await new Promise((r) => ws.once('open', r));
    const bad = new WebSocket(`${env.ts.url.replace('http', 'ws')}/api/v1/agent/ws`, { headers: { authorization: 'Bearer nobody.x' } });
    const refused = await new Promise<string>((r) => bad.once('unexpected-response', (_req, res) => r(String(res.statusCode))));
    expect(refused).toBe('401');
    await waitFor(() => frames.some((f) => f.includes('hello')));
    const run = await env.admin<{ id: string }>('POST', '/jobs/job1/runs', { agents: [a.id] });
    await waitFor(() => frames.some((f) => f === '{"t":"work"}'), { what: 'a work frame' });
    expect(a.tickles).toHaveLength(0);
    await a.call('GET', '/agent/work?via=ws');
    await a.call('POST', '/agent/events', { events: [event(run.body.id, a.id, -1, 'failed', { error: 'test' })] });
    const show = await waitFor(async () => {
      const r = await env!.admin<{ counts: { failed: number }; via: Record<string, number> }>('GET', `/runs/${run.body.id}`);
      return r.body.counts.failed === 1 && r.body;
    });
    expect(show.via).toEqual({ ws: 1 });
    ws.close();
  });
});
