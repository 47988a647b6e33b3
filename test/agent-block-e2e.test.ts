// End to end: an admin blocks one agent and deletes (retires) another, and the task
// server — not only the core and the gateways — stops serving them: it drops their
// task keys, closes the blocked agent's WebSocket and refuses their fetches and status
// reports with the per-task-server key they still hold. A real core, a real task server
// (in-process, and with a worker process) and real agents, on loopback.
import { readFile } from 'node:fs/promises';
import type { OutpostAgent } from '@outpost/agent';
import { agentTaskKey, datagramKey, parseCredential, taskBearerSecret } from '@outpost/common';
import type { Core } from '@outpost/core';
import type { TaskServer } from '@outpost/task-server';
import { grantFor, removeDir, tempDir, waitFor } from '@outpost/testing';
import { describe, expect, it } from 'vitest';
import { adminApi, apiFetch, cleanupAfterEach, testAgent, testCore, testTaskServer } from './fixtures/e2e.js';

const WAIT = 60_000;
const onCleanup = cleanupAfterEach();

interface Setup {
  core: Core;
  ts: TaskServer;
  agents: OutpostAgent[];
}

async function setup(workers: number): Promise<Setup> {
  const coreDir = await tempDir('outpost-block-core-');
  const core = testCore(coreDir);
  await core.start();
  onCleanup(async () => {
    await core.stop();
    await removeDir(coreDir);
  });
  const tsDir = await tempDir('outpost-block-ts-');
  const ssToken = await core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ task: {} }) });
  const ts = testTaskServer({ coreUrl: core.url, dataDir: tsDir, name: 'ts-block', enrollToken: ssToken.token, workers });
  await ts.start();
  onCleanup(async () => {
    await ts.stop();
    await removeDir(tsDir);
  });
  const token = await core.createEnrollmentToken({ for: 'agent', uses: 2 });
  const agents: OutpostAgent[] = [];
  for (const name of ['pc-blocked', 'pc-retired']) {
    const dir = await tempDir('outpost-block-agent-');
    const agent = testAgent({ coreUrl: core.url, dataDir: dir, name, enrollToken: token.token, tasks: { websocket: 'always', reconnectSpread: '100ms' } });
    await agent.start();
    agents.push(agent);
    onCleanup(async () => {
      await agent.stop();
      await removeDir(dir);
    });
  }
  return { core, ts, agents };
}

/** What the agent presents to its task server: `<id>.<secret derived from its core credential>`. */
async function taskBearer(agent: OutpostAgent, tsId: string): Promise<string> {
  const identity = JSON.parse(await readFile(agent.identityFile, 'utf8')) as { id: string; credential: string };
  return `${identity.id}.${taskBearerSecret(agentTaskKey(datagramKey(parseCredential(identity.credential)!.secret), tsId))}`;
}

/** The status the task server answers a call with the agent's `bearer` (the body read and dropped). */
async function call(ts: TaskServer, method: string, path: string, bearer: string, body?: unknown): Promise<number> {
  const r = await apiFetch(ts.url, bearer, method, path, body);
  await r.arrayBuffer();
  return r.status;
}

/** Agents with an open WebSocket at the task server (in-process hub, or the workers'). */
const wsAgents = (ts: TaskServer): number => {
  const s = ts.stats() as { ws?: { connected: number }; workers?: { wsAgents: number } };
  return s.workers?.wsAgents ?? s.ws?.connected ?? 0;
};

describe.each([
  ['in one process', 0],
  ['with a worker process', 1],
])('a blocked or retired agent at its task server (%s)', (_label, workers) => {
  it('closes its WebSocket and refuses its fetches and status reports; unblocking lets it back', { timeout: 120_000 }, async () => {
    const { core, ts, agents } = await setup(workers);
    const [blocked, retired] = agents as [OutpostAgent, OutpostAgent];
    await waitFor(() => agents.every((a) => a.config?.taskServer?.id === ts.id) && wsAgents(ts) === 2, { timeoutMs: WAIT, what: 'both agents hold a WebSocket to the task server' });
    const bearers = [await taskBearer(blocked, ts.id), await taskBearer(retired, ts.id)] as const;
    for (const b of bearers) expect(await call(ts, 'GET', '/agent/work', b)).toBe(200);

    // Block one (outpost agent revoke), delete the other.
    expect((await adminApi(core, 'POST', `/ca/principals/${blocked.id}/block`, { reason: 'e2e' })).status).toBe(200);
    expect((await adminApi(core, 'DELETE', `/agents/${retired.id}`)).status).toBe(204);

    // The task server is told at once (CONFIG tickle), forgets both keys and closes the sockets.
    await waitFor(async () => (await call(ts, 'GET', '/agent/work', bearers[0])) === 401 && (await call(ts, 'GET', '/agent/work', bearers[1])) === 401, { timeoutMs: WAIT, what: 'fetches refused' });
    await waitFor(() => wsAgents(ts) === 0, { timeoutMs: WAIT, what: 'WebSockets closed' });
    const event = { id: 'x', run: 'r', agent: blocked.id, step: 0, attempt: 0, state: 'started', at: Date.now() };
    expect(await call(ts, 'POST', '/agent/events', bearers[0], { events: [event] })).toBe(401);
    expect(await call(ts, 'POST', '/agent/events', bearers[1], { events: [{ ...event, agent: retired.id }] })).toBe(401);

    // Unblocking gives it its key back at the task server.
    expect((await adminApi(core, 'DELETE', `/ca/principals/${blocked.id}/block`)).status).toBe(204);
    await waitFor(async () => (await call(ts, 'GET', '/agent/work', bearers[0])) === 200, { timeoutMs: WAIT, what: 'the unblocked agent is served again' });
    expect(await call(ts, 'GET', '/agent/work', bearers[1])).toBe(401);
  });
});
