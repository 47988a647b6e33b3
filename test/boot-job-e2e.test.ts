// A predefined computer's job runs on it after it boots: a core (in process), a task
// server, the netboot service (proxyDHCP and HTTP boot on loopback) and a real agent. The
// machine's iPXE gets its script URL (with its one-use boot token) in netboot's DHCP
// answer and fetches the script (the core records the boot and a pending run of the
// computer's job); the first agent to enroll from that machine's MAC after the boot is
// bound to the computer, and the core starts the job on it, which the agent runs to the
// end. No root, no network namespaces.
import { join } from 'node:path';
import type { OutpostAgent } from '@outpost/agent';
import { main } from '@outpost/appliance';
import { silentLogger } from '@outpost/common';
import type { Core } from '@outpost/core';
import { createNetboot, type Netboot } from '@outpost/netboot';
import type { TaskServer } from '@outpost/task-server';
import { grantFor, openUdpProbe, removeDir, tempDir, waitFor, type UdpProbe } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordingIo } from '../appliance/test/io.js';
import { adminApi, testAgent, testCore, testTaskServer } from './fixtures/e2e.js';
import { ipxeScriptUrl, loopbackDhcp } from './fixtures/netboot-dhcp.js';

const WAIT = 60_000;
const MAC = '52:54:00:6a:0b:01';
let dir: string;
let core: Core;
let ts: TaskServer;
let nb: Netboot;
let probe: UdpProbe;
const agents: OutpostAgent[] = [];

/** `outpost computers` as an admin sees it: the row of `mac`. */
async function computersRow(mac: string): Promise<string> {
  const io = recordingIo(dir, { OUTPOST_URL: core.url, OUTPOST_TOKEN: core.adminToken });
  expect(await main(['computers'], io)).toBe(0);
  return io.stdout.find((l) => l.includes(mac)) ?? '';
}

interface ComputerView {
  kind: string;
  agentId?: string;
  pendingJob?: { job: string; boot: string };
  lastJob?: { job: string; run?: string; agent?: string; error?: string };
}

/** The computer once its pending job was handled (started, or why not). */
const jobHandled = (mac: string): Promise<ComputerView> =>
  waitFor(
    async () => {
      const v = (await adminApi<ComputerView>(core, 'GET', `/boot/computers/${mac}`)).body;
      return v.lastJob !== undefined && v;
    },
    { timeoutMs: WAIT, what: `the pending job of ${mac} handled` },
  );

/** Enrollments the boot module did not bind to a computer (core stats). */
const bindingsRefused = async (): Promise<number> => (await adminApi<{ boot?: { bindingsRefused?: number } }>(core, 'GET', '/stats')).body.boot?.bindingsRefused ?? 0;

async function startAgent(name: string, macs: string[]): Promise<OutpostAgent> {
  const token = (await core.createEnrollmentToken({ for: 'agent' })).token;
  const agent = testAgent(
    { coreUrl: core.url, dataDir: join(dir, name), name, enrollToken: token },
    // The machine's NICs as the agent reports them at enrollment (loopback has no MAC).
    () => ({ macs, ips: ['127.0.0.1/8'] }),
  );
  agents.push(agent);
  await agent.start();
  return agent;
}

beforeAll(async () => {
  dir = await tempDir('outpost-boot-job-e2e-');
  core = testCore(join(dir, 'core'));
  await core.start();
  ts = testTaskServer({ coreUrl: core.url, dataDir: join(dir, 'ts'), name: 'ts-boot', enrollToken: (await core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ task: {} }) })).token });
  await ts.start();
  probe = await openUdpProbe();
  nb = createNetboot(
    {
      coreUrl: core.url,
      dataDir: join(dir, 'netboot'),
      enrollToken: (await core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ netboot: {} }) })).token,
      ...loopbackDhcp(probe),
      tftp: { enabled: false },
      http: { host: '127.0.0.1', port: 0 },
      reportInterval: '100ms',
    },
    { logger: silentLogger() },
  );
  await nb.start();
  expect((await adminApi(core, 'POST', '/tasks', { name: 'post-install', kind: 'command', program: 'echo', args: ['installed after boot'] })).status).toBe(201);
  expect((await adminApi(core, 'POST', '/jobs', { name: 'first-boot', steps: [{ task: 'post-install' }] })).status).toBe(201);
  expect((await adminApi(core, 'POST', '/boot/images', { name: 'winpe', package: 'winpe-pkg', script: 'boot.ipxe' })).status).toBe(201);
}, WAIT);

afterAll(async () => {
  for (const a of agents) await a.stop().catch(() => undefined);
  await nb?.stop().catch(() => undefined);
  await probe?.close();
  await ts?.stop().catch(() => undefined);
  await core?.stop().catch(() => undefined);
  await removeDir(dir);
}, WAIT);

describe('a predefined computer boots and its job runs', () => {
  it('the boot leaves the job pending; the first agent to enroll from the MAC after the boot is bound, gets the run, once, and runs it', async () => {
    const added = await adminApi(core, 'POST', '/boot/computers', { macs: [MAC], image: 'winpe', job: 'first-boot', name: 'pc-boot-job' });
    expect(added.status).toBe(201);
    expect(added.body.warnings).toBeUndefined(); // the job exists
    // Before it boots nothing is pending: registering the computer starts nothing.
    expect((await adminApi<ComputerView>(core, 'GET', `/boot/computers/${MAC}`)).body.pendingJob).toBeUndefined();

    // The machine's iPXE gets its script URL in netboot's DHCP answer and fetches it.
    const script = await fetch(await ipxeScriptUrl(nb, probe, MAC));
    expect(script.status).toBe(200);
    expect(await script.text()).toContain('set outpost-job first-boot');
    const pending = (await adminApi<ComputerView>(core, 'GET', `/boot/computers/${MAC}`)).body;
    expect(pending).toMatchObject({ kind: 'predefined', pendingJob: { job: 'first-boot' } });
    expect((await adminApi<{ items: unknown[] }>(core, 'GET', '/runs')).body.items).toHaveLength(0);
    expect(await computersRow(MAC)).toMatch(/first-boot\s+waits for agent/);

    // An agent on another machine does not take it.
    const other = await startAgent('elsewhere', ['52:54:00:6a:0b:99']);
    await waitFor(() => other.config?.taskServer !== undefined, { timeoutMs: WAIT, what: 'the other agent attached' });
    expect((await adminApi<ComputerView>(core, 'GET', `/boot/computers/${MAC}`)).body.pendingJob).toMatchObject({ job: 'first-boot' });

    // The installed OS's agent enrolls with the machine's MAC: the run starts on it.
    const agent = await startAgent('pc-boot-job', [MAC]);
    const c = await jobHandled(MAC);
    expect(c).toMatchObject({ kind: 'managed', agentId: agent.id, lastJob: { job: 'first-boot', agent: agent.id } });
    expect(c.lastJob?.error).toBeUndefined();
    expect(c.pendingJob).toBeUndefined();
    const runId = c.lastJob!.run!;
    expect(await computersRow(MAC)).toMatch(new RegExp(`first-boot\\s+run ${runId}`));
    const run = await waitFor(
      async () => {
        const r = (await adminApi<{ state: string; counts: Record<string, number> }>(core, 'GET', `/runs/${runId}`)).body;
        return r.state !== 'active' && r;
      },
      { timeoutMs: WAIT, what: `run ${runId} finished` },
    );
    expect(run).toMatchObject({ state: 'finished', counts: { succeeded: 1 } });
    const detail = (await adminApi<{ steps: Array<{ name: string; state: string; output?: string }> }>(core, 'GET', `/runs/${runId}/agents/${agent.id}`)).body;
    expect(detail.steps).toEqual([expect.objectContaining({ name: 'post-install', state: 'succeeded', output: 'installed after boot\n' })]);
    // The boot's timeline names the run.
    const boots = (await adminApi<{ items: Array<{ id: string; run?: string; job?: string }> }>(core, 'GET', `/boot/boots?mac=${MAC}`)).body.items;
    expect(boots[0]).toMatchObject({ job: 'first-boot', run: runId });

    // Another enrollment from the MAC without a new boot takes nothing: the boot bound one agent.
    const refusedBefore = await bindingsRefused();
    await startAgent('pc-boot-job-again', [MAC]);
    await waitFor(async () => (await bindingsRefused()) > refusedBefore, { timeoutMs: WAIT, what: 'the second enrollment seen' });
    expect((await adminApi<ComputerView>(core, 'GET', `/boot/computers/${MAC}`)).body.agentId).toBe(agent.id);
    expect((await adminApi<{ items: unknown[] }>(core, 'GET', '/runs')).body.items).toHaveLength(1);
  }, 120_000);

  it('a job that does not exist is reported on the computer, not started', async () => {
    const mac = '52:54:00:6a:0b:02';
    const added = await adminApi<{ warnings?: string[] }>(core, 'POST', '/boot/computers', { macs: [mac], image: 'winpe', job: 'no-such-job' });
    expect(added.status).toBe(201);
    expect(added.body.warnings).toEqual([expect.stringContaining("no job named 'no-such-job'")]);
    expect((await fetch(await ipxeScriptUrl(nb, probe, mac))).status).toBe(200);
    const agent = await startAgent('pc-no-job', [mac]);
    const c = await jobHandled(mac);
    expect(c).toMatchObject({ kind: 'managed', agentId: agent.id, lastJob: { job: 'no-such-job' } });
    expect(c.lastJob?.error).toContain("no job named 'no-such-job'");
    expect(c.lastJob?.run).toBeUndefined();
    expect(await computersRow(mac)).toMatch(/no-such-job\s+not started: no job named 'no-such-job'/);
  }, 120_000);
});
