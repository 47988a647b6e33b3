// Which agent runs on a computer: an admin's binding, or a boot the netboot service
// observed (a consumed decision) followed by the first agent to enroll from one of the
// computer's MACs. What an agent reports about itself (its MACs) binds nothing.
import { waitFor } from '@outpost/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanup, enrollAgent, startCore, type TestCore } from '../integration/harness.js';

const PC = '52:54:00:b1:00:01';
let tc: TestCore;

interface Computer {
  id: string;
  kind: string;
  agentId?: string;
  once?: { image: string };
  pendingJob?: { job: string };
  lastJob?: { job: string; run?: string; agent?: string };
  observedBootAt?: number;
}
const computer = async (ref: string): Promise<Computer> => (await tc.call<Computer>('GET', `/boot/computers/${ref}`)).body;
/** What the netboot service asks when it serves a boot it answered (its boot token was right). */
const observedBoot = async (mac: string) => expect((await tc.call('POST', '/boot/decide', { body: { mac, consume: true } })).status).toBe(200);
/** Waits until the boot module has handled the enrollments made so far (its work runs one at a time). */
const settled = async () => expect((await tc.call('POST', '/boot/decide', { body: { mac: '52:54:00:ff:ff:ff' } })).status).toBe(200);

beforeEach(async () => {
  tc = await startCore({ config: { boot: { jobWait: '1h' } } });
  expect((await tc.call('POST', '/boot/images', { body: { name: 'linux', package: 'linux-pkg', kernel: 'vmlinuz' } })).status).toBe(201);
  expect((await tc.call('POST', '/tasks', { body: { name: 'post-install', kind: 'command', program: 'echo', args: ['ok'] } })).status).toBe(201);
  expect((await tc.call('POST', '/jobs', { body: { name: 'first-boot', steps: [{ task: 'post-install' }] } })).status).toBe(201);
  expect((await tc.call('POST', '/boot/computers', { body: { macs: [PC], image: 'linux', job: 'first-boot' } })).status).toBe(201);
});
afterEach(cleanup);

describe('binding a computer to its agent', () => {
  it('an agent enrolling with the MAC of a computer whose boot was not observed is not bound', async () => {
    const a = await enrollAgent(tc, 'claims-pc', { macs: [PC] });
    await settled();
    const c = await computer(PC);
    expect(c.kind).toBe('predefined');
    expect(c.agentId).toBeUndefined();
    expect((await tc.call('POST', '/boot/automation', { token: a.credential, body: { image: 'linux' } })).body).toMatchObject({ error: { code: 'CORE_BOOT_NOT_BOUND' } });
  });

  it('the first agent to enroll after an observed boot is bound and gets the job; the next one is not', async () => {
    await observedBoot(PC);
    expect((await computer(PC)).pendingJob).toMatchObject({ job: 'first-boot' });
    tc.clock.advance(60_000);
    const a = await enrollAgent(tc, 'pc', { macs: [PC] });
    const c = await waitFor(async () => {
      const x = await computer(PC);
      return x.agentId !== undefined && x;
    }, { timeoutMs: 5_000, what: 'the binding' });
    expect(c).toMatchObject({ kind: 'managed', agentId: a.id, lastJob: { job: 'first-boot', agent: a.id } });
    expect(c.lastJob?.run).toMatch(/./);
    expect(c.observedBootAt).toBeUndefined();
    // The boot is used up: another enrollment from the MAC does not take the computer.
    tc.clock.advance(1_000);
    await enrollAgent(tc, 'pc-again', { macs: [PC] });
    await settled();
    expect((await computer(PC)).agentId).toBe(a.id);
    expect((await tc.call<{ items: unknown[] }>('GET', '/runs')).body.items).toHaveLength(1);
  });

  it('a boot older than jobWait binds nothing', async () => {
    await observedBoot(PC);
    tc.clock.advance(2 * 3_600_000);
    await enrollAgent(tc, 'late', { macs: [PC] });
    await settled();
    expect((await computer(PC)).agentId).toBeUndefined();
  });

  it('a computer whose agent still talks after the boot is not rebound; once that agent is silent since a boot, the next enrollment is', async () => {
    const oldAgent = await enrollAgent(tc, 'old', { macs: [PC] });
    const old = oldAgent.id;
    expect((await tc.call('PUT', `/boot/computers/${PC}/agent`, { body: { agent: old } })).status).toBe(200);
    tc.clock.advance(1_000);
    await observedBoot(PC);
    tc.clock.advance(1_000);
    // The old agent is still heard from after the boot: it is not the machine that booted.
    expect((await tc.call('GET', `/agents/${old}`, { token: oldAgent.credential })).status).toBe(200);
    await enrollAgent(tc, 'intruder', { macs: [PC] });
    await settled();
    expect((await computer(PC)).agentId).toBe(old);
    // A new boot; the old agent stays silent (the machine is being reinstalled).
    tc.clock.advance(1_000);
    await observedBoot(PC);
    tc.clock.advance(1_000);
    const fresh = await enrollAgent(tc, 'reinstalled', { macs: [PC] });
    await settled();
    expect((await computer(PC)).agentId).toBe(fresh.id);
  });

  it('an admin binds and unbinds an agent; binding it elsewhere unbinds it from the first computer', async () => {
    const a = await enrollAgent(tc, 'a', { macs: ['52:54:00:b1:00:99'] });
    const bound = await tc.call<Computer>('PUT', `/boot/computers/${PC}/agent`, { body: { agent: a.id } });
    expect(bound.body).toMatchObject({ kind: 'managed', agentId: a.id });
    expect((await tc.call('POST', '/boot/computers', { body: { macs: ['52:54:00:b1:00:02'], image: 'linux' } })).status).toBe(201);
    await tc.call('PUT', '/boot/computers/52:54:00:b1:00:02/agent', { body: { agent: a.id } });
    expect(await computer(PC)).toMatchObject({ kind: 'predefined' });
    expect((await computer(PC)).agentId).toBeUndefined();
    expect((await tc.call('PUT', '/boot/computers/52:54:00:b1:00:02/agent', { body: { agent: null } })).body).toMatchObject({ kind: 'predefined' });
    expect((await tc.call('PUT', `/boot/computers/${PC}/agent`, { body: { agent: 'ag_nope' } })).body).toMatchObject({ error: { code: 'CORE_AGENT_NOT_FOUND' } });
    expect((await tc.call('PUT', `/boot/computers/${PC}/agent`, { body: { agent: a.id }, token: a.credential })).status).toBe(403);
  });
});

describe('reboot to automation by an agent', () => {
  it('acts on the computer bound to the agent only; an unbound agent gets 409 CORE_BOOT_NOT_BOUND, whatever MACs it reports', async () => {
    const a = await enrollAgent(tc, 'a', { macs: ['52:54:00:b1:00:10'] });
    expect((await tc.call('PATCH', `/agents/${a.id}`, { token: a.credential, body: { macs: [PC] } })).status).toBe(200);
    const before = await computer(PC);
    const refused = await tc.call('POST', '/boot/automation', { token: a.credential, body: { image: 'linux', job: 'first-boot' } });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ error: { code: 'CORE_BOOT_NOT_BOUND' } });
    // Naming another computer or MAC is not the agent's to do.
    expect((await tc.call('POST', '/boot/automation', { token: a.credential, body: { mac: PC, image: 'linux' } })).status).toBe(403);
    expect((await tc.call('POST', '/boot/automation', { token: a.credential, body: { computer: before.id, image: 'linux' } })).status).toBe(403);
    // The admin's agent form follows the binding too.
    expect((await tc.call('POST', '/boot/automation', { body: { agent: a.id, image: 'linux' } })).body).toMatchObject({ error: { code: 'CORE_BOOT_NOT_BOUND' } });
    expect(await computer(PC)).toEqual(before);
    expect((await tc.call<{ items: unknown[] }>('GET', '/boot/computers')).body.items).toHaveLength(1);

    expect((await tc.call('POST', '/boot/computers', { body: { macs: ['52:54:00:b1:00:10'], image: 'linux' } })).status).toBe(201);
    await tc.call('PUT', '/boot/computers/52:54:00:b1:00:10/agent', { body: { agent: a.id } });
    const ok = await tc.call<Computer>('POST', '/boot/automation', { token: a.credential, body: { image: 'linux' } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ agentId: a.id, once: { image: 'linux' } });
    expect(await computer(PC)).toEqual(before);
  });
});

describe('maxDiscovered', () => {
  it('records at most maxDiscovered unknown MACs from decisions and events; known MACs still get their timeline', async () => {
    await tc.stop();
    tc = await startCore({ config: { boot: { maxDiscovered: 3 } } });
    const mac = (i: number) => `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`;
    for (let i = 0; i < 5; i++) {
      const d = await tc.call('POST', '/boot/decide', { body: { mac: mac(i), consume: true } });
      expect(d.body).toMatchObject({ kind: 'unknown' });
    }
    const at = tc.clock.now();
    const events = await tc.call('POST', '/boot/events', { body: { items: [...Array.from({ length: 5 }, (_, i) => ({ mac: mac(10 + i), at, type: 'discover' })), { mac: mac(0), at, type: 'offer' }] } });
    expect(events.body).toEqual({ accepted: 1 });
    const computers = (await tc.call<{ items: Array<{ macs: string[] }> }>('GET', '/boot/computers')).body.items;
    expect(computers.map((c) => c.macs[0]).sort()).toEqual([mac(0), mac(1), mac(2)]);
    const boots = (await tc.call<{ items: Array<{ mac: string; events: unknown[] }> }>('GET', '/boot/boots?limit=100')).body.items;
    expect(new Set(boots.map((b) => b.mac))).toEqual(new Set([mac(0), mac(1), mac(2)]));
    expect(boots.find((b) => b.mac === mac(0))!.events).toHaveLength(1);
    const stats = (await tc.call<{ modules?: Record<string, Record<string, number>> }>('GET', '/stats')).body;
    expect(JSON.stringify(stats)).toContain('"discoveredRefused":7') // 2 decisions and 5 events;
    expect(JSON.stringify(stats)).toContain('"eventsRefused":5');
  });
});

