import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, enrollAgent, enrollSiteServer, startCore, type TestCore } from './harness.js';

afterEach(cleanup);

type Item = { id: string; name: string; url?: string; reason: string; state: string };
const select = async (tc: TestCore, agentId: string, service = 'task', token?: string): Promise<Item[]> => {
  const r = await tc.call('GET', `/agents/${agentId}/site-servers?service=${service}`, token ? { token } : {});
  expect(r.status).toBe(200);
  return r.body.items as Item[];
};
const agent = async (tc: TestCore, id: string) => (await tc.call('GET', `/agents/${id}`)).body;
const loadOf = async (tc: TestCore, id: string): Promise<number> => (await tc.call('GET', `/site-servers/${id}`)).body.load.agents;

describe('site-server selection', () => {
  it("returns the site servers of the agent's site (reason 'site'), else those on its subnet ('subnet'), else all ('any')", async () => {
    const tc = await startCore();
    await tc.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16'] } });
    const hqServer = await enrollSiteServer(tc, 'hq-ts', { address: '10.1.0.5/16' });
    const lanServer = await enrollSiteServer(tc, 'lan-ts', { address: '192.168.7.2/24' });

    const inHq = await enrollAgent(tc, 'hq-pc', { ips: ['10.1.4.4/16'] });
    const onLan = await enrollAgent(tc, 'lan-pc', { ips: ['192.168.7.9/24'] });
    const elsewhere = await enrollAgent(tc, 'far-pc', { ips: ['172.16.0.9/24'] });

    const hq = await select(tc, inHq.id, 'task', inHq.credential);
    expect(hq.map((i) => [i.id, i.reason])).toEqual([[hqServer.id, 'site']]);
    expect(hq[0]!.url).toBe('http://hq-ts.test:8080');
    expect((await select(tc, onLan.id)).map((i) => [i.id, i.reason])).toEqual([[lanServer.id, 'subnet']]);
    const any = await select(tc, elsewhere.id);
    expect(any.map((i) => i.reason)).toEqual(['any', 'any']);
    expect(any.map((i) => i.id).sort()).toEqual([hqServer.id, lanServer.id].sort());
  });

  it('returns only servers running the asked service, and 400 for an unknown service', async () => {
    const tc = await startCore();
    const pkg = await enrollSiteServer(tc, 'pkg', { services: { package: { constrained: false, url: 'http://pkg.test:8081' } } });
    await enrollSiteServer(tc, 'ts');
    const a = await enrollAgent(tc, 'pc');
    expect((await select(tc, a.id, 'package')).map((i) => [i.id, i.url])).toEqual([[pkg.id, 'http://pkg.test:8081']]);
    expect(await select(tc, a.id, 'netboot')).toEqual([]);
    const bad = await tc.call('GET', `/agents/${a.id}/site-servers?service=coffee`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('COMMON_VALIDATION');
  });

  it('serves a site through an explicit assignment (PATCH /site-servers/:id {sites})', async () => {
    const tc = await startCore();
    await tc.call('POST', '/sites', { body: { name: 'branch', subnets: ['10.2.0.0/16'] } });
    const remote = await enrollSiteServer(tc, 'remote', { address: '172.20.0.1/24' });
    const other = await enrollSiteServer(tc, 'other', { address: '172.21.0.1/24' });
    const a = await enrollAgent(tc, 'pc', { ips: ['10.2.3.4/16'] });
    expect((await select(tc, a.id)).map((i) => i.reason)).toEqual(['any', 'any']);
    const patched = await tc.call('PATCH', `/site-servers/${remote.id}`, { body: { sites: ['branch'] } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ sites: ['branch'], effectiveSites: ['branch'] });
    expect((await select(tc, a.id)).map((i) => [i.id, i.reason])).toEqual([[remote.id, 'site']]);
    await tc.core.registry.settled();
    expect((await agent(tc, a.id)).taskServer).toBe(remote.id);
    expect(await loadOf(tc, other.id)).toBe(0);
  });

  it('gives each agent the least loaded task server of its site', async () => {
    const tc = await startCore();
    await tc.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16'] } });
    const s1 = await enrollSiteServer(tc, 'ts1', { address: '10.1.0.1/16' });
    const s2 = await enrollSiteServer(tc, 'ts2', { address: '10.1.0.2/16' });
    await tc.core.registry.settled();
    for (let i = 0; i < 6; i++) await enrollAgent(tc, `pc-${i}`, { ips: [`10.1.1.${i + 10}/16`] });
    expect([await loadOf(tc, s1.id), await loadOf(tc, s2.id)]).toEqual([3, 3]);
  });

  it('spreads agents that enroll concurrently over the task servers', async () => {
    const tc = await startCore();
    const s1 = await enrollSiteServer(tc, 'ts1');
    const s2 = await enrollSiteServer(tc, 'ts2');
    await tc.core.registry.settled();
    const token = (await tc.call('POST', '/tokens', { body: { for: 'agent', uses: 20 } })).body.token;
    await Promise.all(Array.from({ length: 20 }, (_, i) => enrollAgent(tc, `pc-${i}`, {}, token)));
    // Before any re-balance: assignment at enrollment already spreads them.
    expect([await loadOf(tc, s1.id), await loadOf(tc, s2.id)]).toEqual([10, 10]);
    const agents = (await tc.call('GET', '/agents')).body.items as { taskServer: string }[];
    expect(agents.filter((a) => a.taskServer === s1.id)).toHaveLength(10);
  });

  it("re-balances when a second task server joins the site, and a moved agent's config serial changes", async () => {
    const tc = await startCore();
    await tc.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16'] } });
    const s1 = await enrollSiteServer(tc, 'ts1', { address: '10.1.0.1/16' });
    const agents = [];
    for (let i = 0; i < 6; i++) agents.push(await enrollAgent(tc, `pc-${i}`, { ips: [`10.1.1.${i + 10}/16`] }));
    await tc.core.registry.settled();
    const before = new Map<string, { taskServer: string; configSerial: string }>();
    for (const a of agents) before.set(a.id, await agent(tc, a.id));
    expect([...before.values()].every((a) => a.taskServer === s1.id)).toBe(true);

    const s2 = await enrollSiteServer(tc, 'ts2', { address: '10.1.0.2/16' });
    await tc.core.registry.settled();
    expect([await loadOf(tc, s1.id), await loadOf(tc, s2.id)]).toEqual([3, 3]);
    let moved = 0;
    for (const a of agents) {
      const now = await agent(tc, a.id);
      const was = before.get(a.id)!;
      if (now.taskServer !== was.taskServer) {
        moved++;
        expect(now.configSerial).not.toBe(was.configSerial);
        const cfg = (await tc.call('GET', `/agents/${a.id}/config`, { token: a.credential })).body;
        expect(cfg.taskServer).toMatchObject({ id: s2.id, url: 'http://ts2.test:8080' });
        expect(cfg.serial).toBe(now.configSerial);
      } else {
        expect(now.configSerial).toBe(was.configSerial);
      }
    }
    expect(moved).toBe(3);
  });

  it('does not give a task server agents of another site', async () => {
    const tc = await startCore();
    await tc.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16'] } });
    await tc.call('POST', '/sites', { body: { name: 'branch', subnets: ['10.2.0.0/16'] } });
    const hq = await enrollSiteServer(tc, 'hq-ts', { address: '10.1.0.1/16' });
    for (let i = 0; i < 4; i++) await enrollAgent(tc, `pc-${i}`, { ips: [`10.1.1.${i + 10}/16`] });
    const branch = await enrollSiteServer(tc, 'branch-ts', { address: '10.2.0.1/16' });
    await tc.core.registry.settled();
    expect([await loadOf(tc, hq.id), await loadOf(tc, branch.id)]).toEqual([4, 0]);
  });

  it('moves the agents of a deleted task server to the remaining one', async () => {
    const tc = await startCore();
    const s1 = await enrollSiteServer(tc, 'ts1');
    const s2 = await enrollSiteServer(tc, 'ts2');
    await tc.core.registry.settled();
    for (let i = 0; i < 6; i++) await enrollAgent(tc, `pc-${i}`);
    expect(await loadOf(tc, s2.id)).toBe(3);
    expect((await tc.call('DELETE', `/site-servers/${s1.id}`)).status).toBe(204);
    expect((await tc.call('GET', `/site-servers/${s1.id}`)).body.error.code).toBe('CORE_SITE_SERVER_NOT_FOUND');
    await tc.core.registry.settled();
    expect(await loadOf(tc, s2.id)).toBe(6);
    const agents = (await tc.call('GET', '/agents')).body.items as { taskServer: string }[];
    expect(agents.every((a) => a.taskServer === s2.id)).toBe(true);
  });

  it('moves the agents of a task server that goes offline, and takes them back only to balance when it returns', async () => {
    const heartbeatInterval = 60_000;
    const tc = await startCore({ config: { siteServers: { heartbeatInterval: '1m', offlineAfterMissed: 3 } } });
    const s1 = await enrollSiteServer(tc, 'ts1');
    const s2 = await enrollSiteServer(tc, 'ts2');
    await tc.core.registry.settled();
    const agents = [];
    for (let i = 0; i < 6; i++) agents.push(await enrollAgent(tc, `pc-${i}`));
    // s2 keeps heartbeating, s1 falls silent past 3 intervals.
    tc.clock.advance(2 * heartbeatInterval);
    expect((await tc.call('POST', `/site-servers/${s2.id}/heartbeat`, { token: s2.credential, body: {} })).status).toBe(200);
    tc.clock.advance(1.5 * heartbeatInterval);
    tc.core.registry.checkSiteServerStates();
    await tc.core.registry.settled();
    expect((await tc.call('GET', `/site-servers/${s1.id}`)).body.state).toBe('offline');
    expect((await tc.call('GET', `/site-servers/${s2.id}`)).body.state).toBe('online');
    expect(await loadOf(tc, s2.id)).toBe(6);
    const sel = await select(tc, agents[0]!.id);
    expect(sel.map((i) => [i.id, i.state])).toEqual([
      [s2.id, 'online'],
      [s1.id, 'offline'],
    ]);
    // s1 comes back: the load is shared again.
    expect((await tc.call('POST', `/site-servers/${s1.id}/heartbeat`, { token: s1.credential, body: {} })).status).toBe(200);
    await tc.core.registry.settled();
    expect([await loadOf(tc, s1.id), await loadOf(tc, s2.id)]).toEqual([3, 3]);
  });

  it('gives a site server its config, whose serial changes exactly when its settings change', async () => {
    const tc = await startCore();
    await tc.call('POST', '/sites', { body: { name: 'hq', subnets: [] } });
    const ss = await enrollSiteServer(tc, 'ts');
    const cfg1 = (await tc.call('GET', `/site-servers/${ss.id}/config`, { token: ss.credential })).body;
    expect(cfg1).toMatchObject({ id: ss.id, name: 'ts', sites: [], services: { task: { url: 'http://ts.test:8080' } } });
    const hb = await tc.call('POST', `/site-servers/${ss.id}/heartbeat`, { token: ss.credential, body: {} });
    expect(hb.body.configSerial).toBe(cfg1.serial);
    expect((await tc.call('GET', `/site-servers/${ss.id}/config`, { token: ss.credential })).body.serial).toBe(cfg1.serial);
    await tc.call('PATCH', `/site-servers/${ss.id}`, { body: { sites: ['hq'] } });
    const cfg2 = (await tc.call('GET', `/site-servers/${ss.id}/config`, { token: ss.credential })).body;
    expect(cfg2.sites).toEqual(['hq']);
    expect(cfg2.serial).not.toBe(cfg1.serial);
    const hb2 = await tc.call('POST', `/site-servers/${ss.id}/heartbeat`, {
      token: ss.credential,
      body: { services: { task: { url: 'http://ts.test:9090' } } },
    });
    expect(hb2.body.configSerial).not.toBe(cfg2.serial);
  });
});
