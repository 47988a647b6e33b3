import { spawn, type ChildProcess } from 'node:child_process';
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { datagramKey, eventKey, withMac } from '@outpost/common';
import { SITE_IDENTITY_FILE } from '@outpost/common/site-link';
import { freePort, grantFor, removeDir, tempDir, waitFor } from '@outpost/testing';
import { describe, expect, it } from 'vitest';
import { adminOk, apiRequest, cleanupAfterEach, testAgent, testCore, testTaskServer } from '../fixtures/e2e.js';

/**
 * Signed work, attacked end to end on loopback: a real core, task server and agent, and a
 * tampering relay (its own process) between the agent and the task server. The core alone
 * authors work; a relay or a task-server credential can neither make an agent run its
 * command nor forge its results.
 */
const RELAY = fileURLToPath(new URL('./fixtures/tampering-relay.mjs', import.meta.url));
const WAIT = 60_000;
const onCleanup = cleanupAfterEach();

async function startRelay(upstreamPort: number, marker: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [RELAY, String(upstreamPort), marker], { stdio: ['ignore', 'pipe', 'inherit'] });
  onCleanup(async () => {
    if (child.exitCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`relay exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`, child };
}

/** A site-server enrollment token granted the task service (on loopback, where the test's task server and relay listen). */
const taskServerToken = (core: { url: string; adminToken: string }): Promise<{ token: string }> => adminOk<{ token: string }>(core, 'POST', '/tokens', { for: 'site-server', grant: grantFor({ task: {} }, { addresses: ['127.0.0.1'] }) });

const exists = (file: string): Promise<boolean> => access(file).then(() => true, () => false);

/** A core, a task server whose enrolled URL is `publicUrl` (when given), and one agent. */
async function fleet(opts: { relayMarker?: string } = {}) {
  const coreDir = await tempDir('outpost-sec-core-');
  const core = testCore(coreDir);
  await core.start();
  onCleanup(async () => {
    await core.stop();
    await removeDir(coreDir);
  });
  const tsPort = await freePort('tcp');
  const relay = opts.relayMarker === undefined ? undefined : await startRelay(tsPort, opts.relayMarker);
  const tsDir = await tempDir('outpost-sec-ts-');
  const ts = testTaskServer({
    coreUrl: core.url,
    dataDir: tsDir,
    name: 'ts-sec',
    enrollToken: (await taskServerToken(core)).token,
    http: { host: '127.0.0.1', port: tsPort, ...(relay ? { publicUrl: relay.url } : {}) },
    forward: { retryBase: '100ms', retryCap: '500ms' },
  });
  await ts.start();
  onCleanup(async () => {
    await ts.stop();
    await removeDir(tsDir);
  });
  const agentDir = await tempDir('outpost-sec-agent-');
  const agentToken = await adminOk<{ token: string }>(core, 'POST', '/tokens', { for: 'agent' });
  const agent = testAgent({ coreUrl: core.url, dataDir: agentDir, name: 'pc-sec', enrollToken: agentToken.token, tasks: { websocket: 'never', pollInterval: '1s' } });
  await agent.start();
  onCleanup(async () => {
    await agent.stop();
    await removeDir(agentDir);
  });
  await waitFor(() => agent.config?.taskServer?.id === ts.id && (agent.tasks?.stats.fetches ?? 0) > 0, { timeoutMs: WAIT, what: 'agent attached to the task server' });
  await adminOk(core, 'POST', '/tasks', { name: 'hello', kind: 'command', program: 'echo', args: ['hello'] });
  await adminOk(core, 'POST', '/jobs', { name: 'greet', steps: [{ task: 'hello' }] });
  return { core, ts, tsDir, agent, agentDir, relay };
}

interface AgentDetail {
  state: string;
  error?: string;
  steps: Array<{ name: string; state: string; output?: string }>;
}

describe('signed work (attack tests)', () => {
  it('an agent enrolled before runs were signed pins the work key from the core itself, then runs signed work', async () => {
    const f = await fleet();
    await f.agent.stop();
    const file = join(f.agentDir, 'identity.json');
    const { workKey, ...old } = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    expect(typeof workKey).toBe('string');
    await writeFile(file, JSON.stringify(old), { mode: 0o600 });
    await f.agent.start();
    const run = await adminOk<{ id: string }>(f.core, 'POST', '/jobs/greet/runs', { agents: [f.agent.id!] });
    await waitFor(async () => (await adminOk<AgentDetail>(f.core, 'GET', `/runs/${run.id}/agents/${f.agent.id}`)).state === 'succeeded', { timeoutMs: WAIT, what: 'run succeeded' });
    expect((JSON.parse(await readFile(file, 'utf8')) as { workKey?: string }).workKey).toBe(workKey);
  }, 120_000);

  it('an agent stops a running run on the core\'s signed cancel, relayed by the task server', async () => {
    const f = await fleet();
    await adminOk(f.core, 'POST', '/tasks', { name: 'wait', kind: 'script', script: `while [ ! -e '${join(f.agentDir, 'never')}' ]; do sleep 0.05; done`, timeout: '2m' });
    await adminOk(f.core, 'POST', '/jobs', { name: 'waiting', steps: [{ task: 'wait' }] });
    const run = await adminOk<{ id: string }>(f.core, 'POST', '/jobs/waiting/runs', { agents: [f.agent.id!] });
    await waitFor(async () => (await adminOk<AgentDetail>(f.core, 'GET', `/runs/${run.id}/agents/${f.agent.id}`)).state === 'running', { timeoutMs: WAIT, what: 'run running' });
    await adminOk(f.core, 'POST', `/runs/${run.id}/cancel`);
    await waitFor(() => f.agent.tasks!.stats.runsFinished === 1, { timeoutMs: WAIT, what: 'the agent stopped the run' });
    expect(f.agent.tasks!.stats.refused).toEqual({});
  }, 120_000);

  it('an agent refuses a run a relay rewrote to its own command: nothing runs, and run show shows the refusal', async () => {
    const markerDir = await tempDir('outpost-sec-marker-');
    onCleanup(() => removeDir(markerDir));
    const marker = join(markerDir, 'owned');
    const f = await fleet({ relayMarker: marker });
    expect(f.agent.config?.taskServer?.url).toBe(f.relay!.url);
    const run = await adminOk<{ id: string }>(f.core, 'POST', '/jobs/greet/runs', { agents: [f.agent.id!] });
    const detail = await waitFor(async () => {
      const d = await adminOk<AgentDetail>(f.core, 'GET', `/runs/${run.id}/agents/${f.agent.id}`);
      return ['failed', 'succeeded'].includes(d.state) && d;
    }, { timeoutMs: WAIT, what: 'the agent\'s answer recorded at the core' });
    expect(await exists(marker)).toBe(false);
    expect(detail).toMatchObject({ state: 'failed', error: 'refused: bad-signature' });
    expect(detail.steps.every((s) => s.state === 'pending' && s.output === undefined)).toBe(true);
    const relayed = (await (await fetch(`${f.relay!.url}/relay-stats`)).json()) as { tampered: number };
    expect(relayed.tampered).toBeGreaterThan(0);
    expect(f.agent.tasks!.stats.refused['bad-signature']).toBeGreaterThan(0);
    expect(f.agent.tasks!.stats.runsStarted).toBe(0);
    expect(await exists(marker)).toBe(false);
  }, 120_000);

  it('a task-server credential cannot post a forged succeeded event with output for an agent it serves', async () => {
    const f = await fleet();
    // The agent is away: the run is dispatched through the task server but never run.
    await f.agent.stop();
    const run = await adminOk<{ id: string }>(f.core, 'POST', '/jobs/greet/runs', { agents: [f.agent.id!] });
    await waitFor(async () => (await adminOk<{ hops: Record<string, { count: number }> }>(f.core, 'GET', `/runs/${run.id}`)).hops.dispatched!.count === 1, {
      timeoutMs: WAIT,
      what: 'the run dispatched through the task server',
    });
    await f.ts.stop();
    const identity = JSON.parse(await readFile(join(f.tsDir, SITE_IDENTITY_FILE), 'utf8')) as { credential: string };
    const agentId = f.agent.id!;
    const ev = (step: number, state: string, extra: Record<string, unknown> = {}) => ({ id: `${run.id}:${agentId}:${step}:0:${state}`, run: run.id, agent: agentId, step, attempt: 0, state, at: Date.now(), ...extra });
    // Without a MAC, with a made-up one, and with one under a key the task server can derive (its own task key is not the agent's).
    const wrongKey = eventKey(datagramKey(identity.credential));
    const forged = [ev(0, 'succeeded', { exitCode: 0, output: 'forged output\n' }), { ...ev(-1, 'succeeded'), mac: 'B'.repeat(43) }, withMac(wrongKey, ev(0, 'running'))];
    const answer = await apiRequest<{ refused: number; accepted: number }>(f.core.url, identity.credential, 'POST', '/task-service/events', { events: forged });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ accepted: 0, refused: 3 });
    const d = await adminOk<AgentDetail>(f.core, 'GET', `/runs/${run.id}/agents/${agentId}`);
    expect(d.state).not.toBe('succeeded');
    expect(d.steps.map((s) => [s.state, s.output])).toEqual([['pending', undefined]]);
  }, 120_000);
});
