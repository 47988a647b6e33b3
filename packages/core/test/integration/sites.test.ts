import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, enrollAgent, enrollSiteServer, startCore } from './harness.js';

afterEach(cleanup);

describe('sites', () => {
  it('creates, reads, lists, updates and deletes a site', async () => {
    const tc = await startCore();
    const created = await tc.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16', '2001:db8::/48'], description: 'head office' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'hq', subnets: ['10.1.0.0/16', '2001:db8::/48'], description: 'head office', siteServers: [], agents: 0 });
    expect((await tc.call('GET', '/sites/hq')).body.subnets).toEqual(['10.1.0.0/16', '2001:db8::/48']);
    const patched = await tc.call('PATCH', '/sites/hq', { body: { subnets: ['10.2.0.0/16'] } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ subnets: ['10.2.0.0/16'], description: 'head office' });
    await tc.call('POST', '/sites', { body: { name: 'branch', subnets: [] } });
    expect((await tc.call('GET', '/sites')).body.items.map((s: { name: string }) => s.name)).toEqual(['branch', 'hq']);
    expect((await tc.call('DELETE', '/sites/hq')).status).toBe(204);
    const gone = await tc.call('GET', '/sites/hq');
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('CORE_SITE_NOT_FOUND');
    expect((await tc.call('DELETE', '/sites/hq')).body.error.code).toBe('CORE_SITE_NOT_FOUND');
    expect((await tc.call('PATCH', '/sites/hq', { body: {} })).body.error.code).toBe('CORE_SITE_NOT_FOUND');
  });

  it("counts a site's agents as agents come, move, go and as the site's subnets change", async () => {
    const tc = await startCore();
    await tc.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16'] } });
    await tc.call('POST', '/sites', { body: { name: 'branch', subnets: ['10.2.0.0/16'] } });
    const count = async (site: string): Promise<number> => (await tc.call('GET', `/sites/${site}`)).body.agents;
    const a = await enrollAgent(tc, 'a', { ips: ['10.1.0.5/16'] });
    const b = await enrollAgent(tc, 'b', { ips: ['10.1.0.6/16'] });
    await enrollAgent(tc, 'c', { ips: ['10.2.0.7/16'] });
    expect([await count('hq'), await count('branch')]).toEqual([2, 1]);
    await tc.call('POST', `/agents/${b.id}/heartbeat`, { token: b.credential, body: { ips: ['10.2.0.8/16'] } });
    expect([await count('hq'), await count('branch')]).toEqual([1, 2]);
    expect((await tc.call('DELETE', `/agents/${a.id}`)).status).toBe(204);
    expect([await count('hq'), await count('branch')]).toEqual([0, 2]);
    await tc.call('PATCH', '/sites/hq', { body: { subnets: ['10.0.0.0/8'] } });
    await tc.call('PATCH', '/sites/branch', { body: { subnets: [] } });
    expect([await count('hq'), await count('branch')]).toEqual([2, 0]);
    expect((await tc.call('GET', '/sites')).body.items.map((s: { agents: number }) => s.agents)).toEqual([0, 2]);
  });

  it('refuses a second site of the same name with 409 CORE_SITE_EXISTS', async () => {
    const tc = await startCore();
    await tc.call('POST', '/sites', { body: { name: 'hq', subnets: [] } });
    const r = await tc.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.0.0.0/8'] } });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('CORE_SITE_EXISTS');
  });

  it('refuses an invalid CIDR with 400 COMMON_BAD_CIDR, on create and on update', async () => {
    const tc = await startCore();
    for (const bad of ['10.1.2.3/16', '10.1.0.0/33', 'nope', '10.1.0.0', '2001:db8::1/32']) {
      const r = await tc.call('POST', '/sites', { body: { name: 'x', subnets: [bad] } });
      expect(r.status, bad).toBe(400);
      expect(r.body.error.code).toBe('COMMON_BAD_CIDR');
    }
    await tc.call('POST', '/sites', { body: { name: 'ok', subnets: ['10.0.0.0/8'] } });
    expect((await tc.call('PATCH', '/sites/ok', { body: { subnets: ['10.0.0.1/8'] } })).body.error.code).toBe('COMMON_BAD_CIDR');
    expect((await tc.call('GET', '/sites/ok')).body.subnets).toEqual(['10.0.0.0/8']);
  });

  it('refuses the exact subnet in two sites (409 CORE_SUBNET_TAKEN), also written differently or listed twice', async () => {
    const tc = await startCore();
    await tc.call('POST', '/sites', { body: { name: 'a', subnets: ['10.1.0.0/16', '2001:db8::/48'] } });
    for (const s of ['10.1.0.0/16', '2001:0db8:0000::/48']) {
      const r = await tc.call('POST', '/sites', { body: { name: 'b', subnets: [s] } });
      expect(r.status, s).toBe(409);
      expect(r.body.error.code).toBe('CORE_SUBNET_TAKEN');
    }
    const twice = await tc.call('POST', '/sites', { body: { name: 'c', subnets: ['10.9.0.0/16', '10.9.0.0/16'] } });
    expect(twice.body.error.code).toBe('CORE_SUBNET_TAKEN');
    await tc.call('POST', '/sites', { body: { name: 'd', subnets: ['10.2.0.0/16'] } });
    expect((await tc.call('PATCH', '/sites/d', { body: { subnets: ['10.1.0.0/16'] } })).body.error.code).toBe('CORE_SUBNET_TAKEN');
    // A site may keep its own subnet on update.
    expect((await tc.call('PATCH', '/sites/a', { body: { subnets: ['10.1.0.0/16'] } })).status).toBe(200);
  });

  it('never lets two concurrent requests put the same subnet (or name) in two sites', async () => {
    const tc = await startCore();
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => tc.call('POST', '/sites', { body: { name: `s${i}`, subnets: ['10.50.0.0/16'] } })),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    const same = await Promise.all(Array.from({ length: 8 }, (_, i) => tc.call('POST', '/sites', { body: { name: 'dup', subnets: [`10.${60 + i}.0.0/16`] } })));
    expect(same.filter((r) => r.status === 201)).toHaveLength(1);
    const sites = (await tc.call('GET', '/sites')).body.items as { subnets: string[] }[];
    expect(sites.filter((s) => s.subnets.includes('10.50.0.0/16'))).toHaveLength(1);
    expect(sites).toHaveLength(2);
  });

  it('allows overlapping prefixes, and the most specific one decides an agent’s site', async () => {
    const tc = await startCore();
    expect((await tc.call('POST', '/sites', { body: { name: 'campus', subnets: ['10.0.0.0/8', '2001:db8::/32'] } })).status).toBe(201);
    expect((await tc.call('POST', '/sites', { body: { name: 'lab', subnets: ['10.1.2.0/24', '2001:db8:1::/48'] } })).status).toBe(201);
    const inLab = await enrollAgent(tc, 'lab-pc', { ips: ['10.1.2.3/24'] });
    const inLab6 = await enrollAgent(tc, 'lab-pc6', { ips: ['2001:db8:1::7/64'] });
    const onCampus = await enrollAgent(tc, 'campus-pc', { ips: ['10.7.0.1/16'] });
    const nowhere = await enrollAgent(tc, 'home-pc', { ips: ['192.168.1.2/24'] });
    const sites = async (id: string) => (await tc.call('GET', `/agents/${id}`)).body.sites;
    expect(await sites(inLab.id)).toEqual(['lab']);
    expect(await sites(inLab6.id)).toEqual(['lab']);
    expect(await sites(onCampus.id)).toEqual(['campus']);
    expect(await sites(nowhere.id)).toEqual([]);
    expect((await tc.call('GET', '/sites/lab')).body.agents).toBe(2);
    // Removing the specific subnet puts the lab machine back on the campus.
    await tc.call('PATCH', '/sites/lab', { body: { subnets: [] } });
    expect(await sites(inLab.id)).toEqual(['campus']);
  });

  it("removes a deleted site from the site servers' explicit lists", async () => {
    const tc = await startCore();
    await tc.call('POST', '/sites', { body: { name: 'a', subnets: [] } });
    await tc.call('POST', '/sites', { body: { name: 'b', subnets: [] } });
    const ss = await enrollSiteServer(tc, 'ts');
    expect((await tc.call('PATCH', `/site-servers/${ss.id}`, { body: { sites: ['a', 'b'] } })).body.sites).toEqual(['a', 'b']);
    expect((await tc.call('GET', '/sites/a')).body.siteServers).toEqual([ss.id]);
    await tc.call('DELETE', '/sites/a');
    const view = (await tc.call('GET', `/site-servers/${ss.id}`)).body;
    expect(view.sites).toEqual(['b']);
    expect(view.effectiveSites).toEqual(['b']);
    // Re-creating the name does not bring the old assignment back.
    await tc.call('POST', '/sites', { body: { name: 'a', subnets: [] } });
    expect((await tc.call('GET', `/site-servers/${ss.id}`)).body.sites).toEqual(['b']);
  });

  it('refuses to assign a site server to a site that does not exist', async () => {
    const tc = await startCore();
    const ss = await enrollSiteServer(tc, 'ts');
    const r = await tc.call('PATCH', `/site-servers/${ss.id}`, { body: { sites: ['nope'] } });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('CORE_SITE_NOT_FOUND');
  });

  it('assigns a site server to a site through its address', async () => {
    const tc = await startCore();
    await tc.call('POST', '/sites', { body: { name: 'branch', subnets: ['10.5.0.0/16'] } });
    const ss = await enrollSiteServer(tc, 'ts', { address: '10.5.0.10/16' });
    const view = (await tc.call('GET', `/site-servers/${ss.id}`)).body;
    expect(view.sites).toEqual([]);
    expect(view.effectiveSites).toEqual(['branch']);
    expect((await tc.call('GET', '/sites/branch')).body.siteServers).toEqual([ss.id]);
  });
});
