import { createKeyAndCsr, openDatabase, sublevel } from '@outpost/common';
import { X509Certificate } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, createToken, enrollAgent, enrollSiteServer, startCore } from './harness.js';

afterEach(cleanup);

const ssBody = (token: string, extra: Record<string, unknown> = {}) => ({ token: null, body: { token, name: 'ss', services: { task: { url: 'http://127.0.0.1:8080' } }, ...extra } });

describe('site-server grants', () => {
  it('requires a grant on a site-server token and refuses one on an agent token', async () => {
    const tc = await startCore();
    const none = await tc.call('POST', '/tokens', { body: { for: 'site-server' } });
    expect(none.status).toBe(400);
    expect(none.body.error.code).toBe('CORE_GRANT_REQUIRED');
    const agent = await tc.call('POST', '/tokens', { body: { for: 'agent', grant: { services: { task: true } } } });
    expect(agent.status).toBe(400);
    expect(agent.body.error.code).toBe('CORE_GRANT_NOT_ALLOWED');
    const bad = await tc.call('POST', '/tokens', { body: { for: 'site-server', grant: { services: { task: true }, addresses: ['ts.example'] } } });
    expect(bad.status).toBe(400);
    const ok = await tc.call('POST', '/tokens', { body: { for: 'site-server', grant: { services: { task: true }, addresses: ['::FFFF:10.1.0.5'], names: ['TS.Example.'] } } });
    expect(ok.status).toBe(201);
    expect((await tc.call('GET', '/tokens')).body.items[0].grant).toEqual({ services: { task: true }, addresses: ['10.1.0.5'], names: ['ts.example'] });
  });

  it('refuses an enrollment beyond the grant with CORE_GRANT_EXCEEDED naming each refused part, without spending the token', async () => {
    const tc = await startCore();
    const token = await createToken(tc, 'site-server', { grant: { services: { package: { constrained: true } }, names: ['pkg.example'] } });
    const attempts = [
      { services: { task: { url: 'http://pkg.example:1' } } },
      { services: { package: { constrained: false, url: 'http://pkg.example:1' } } },
      { services: { package: { constrained: true, url: 'http://other.example:1' } } },
      { services: { package: { constrained: true, url: 'http://pkg.example:1' } }, tickleAddress: '10.9.9.9:5000' },
    ];
    for (const a of attempts) {
      const r = await tc.call('POST', '/enroll', { token: null, body: { token, name: 'pkg', ...a } });
      expect(r.status, JSON.stringify(a)).toBe(403);
      expect(r.body.error.code).toBe('CORE_GRANT_EXCEEDED');
      expect(r.body.error.details.refused.length).toBeGreaterThan(0);
    }
    expect((await tc.call('GET', '/tokens')).body.items[0].usesLeft).toBe(1);
    const ok = await tc.call('POST', '/enroll', { token: null, body: { token, name: 'pkg', address: '10.1.0.5/16', services: { package: { constrained: true, url: 'http://PKG.example:1' } } } });
    expect(ok.status).toBe(201);
    const ss = (await tc.call('GET', `/site-servers/${ok.body.id}`)).body;
    // No address in the grant: the one it enrolled from, trusted on first use. The stated address is only shown.
    expect(ss.grant).toEqual({ services: { package: { constrained: true } }, addresses: ['127.0.0.1'], names: ['pkg.example'], approvedBy: 'enrollment', sites: [] });
    expect(ss.reportedAddress).toBe('10.1.0.5/16');
  });

  it('never approves a gateway\'s address for a site server that enrolls through it (trust on first use needs the real source)', async () => {
    const tc = await startCore();
    const gwToken = await createToken(tc, 'site-server', { grant: { services: { gateway: true }, addresses: ['127.0.0.1'] } });
    expect((await tc.call('POST', '/enroll', { token: null, body: { token: gwToken, name: 'gw', services: { gateway: { url: 'https://127.0.0.1:8443' } } } })).status).toBe(201);
    // The core sees 127.0.0.1, the gateway's approved address: as a tunnelled enrollment would look.
    const token = await createToken(tc, 'site-server', { grant: { services: { netboot: true } } });
    const r = await tc.call('POST', '/enroll', { token: null, body: { token, name: 'nb', services: { netboot: {} } } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const ss = (await tc.call('GET', `/site-servers/${r.body.id}`)).body;
    expect(ss.grant.addresses).toEqual([]);
    // A URL on the gateway's host is then not approved either: the admin names addresses in the token.
    const pkgToken = await createToken(tc, 'site-server', { grant: { services: { package: { constrained: true } } } });
    const pkg = await tc.call('POST', '/enroll', { token: null, body: { token: pkgToken, name: 'pkg', services: { package: { constrained: true, url: 'http://127.0.0.1:8081' } } } });
    expect(pkg.status).toBe(403);
    expect(pkg.body.error.code).toBe('CORE_GRANT_EXCEEDED');
    expect(pkg.body.error.message).toMatch(/a gateway's address.*--address/);
  });

  it('puts a site server in sites by its approved addresses and the grant, never by the address it states', async () => {
    const tc = await startCore();
    await tc.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16'] } });
    await tc.call('POST', '/sites', { body: { name: 'branch', subnets: ['10.2.0.0/16'] } });
    const stated = await tc.call('POST', '/enroll', ssBody(await createToken(tc, 'site-server', { grant: { services: { task: true } } }), { address: '10.1.0.5/16' }));
    expect((await tc.call('GET', `/site-servers/${stated.body.id}`)).body.effectiveSites).toEqual([]);
    const granted = await tc.call('POST', '/enroll', ssBody(await createToken(tc, 'site-server', { grant: { services: { task: true }, addresses: ['10.1.0.6', '127.0.0.1'], sites: ['branch'] } }), { name: 'ss2' }));
    const view = (await tc.call('GET', `/site-servers/${granted.body.id}`)).body;
    expect(view.effectiveSites).toEqual(['branch', 'hq']);
    expect(view.grant.approvedBy).toBe('grant');
  });

  it('refuses a CSR naming what the grant does not approve at enrollment (token not spent) and issues only approved names', async () => {
    const tc = await startCore();
    const token = await createToken(tc, 'site-server', { grant: { services: { gateway: true }, names: ['gw.example'], addresses: ['127.0.0.1'] } });
    const body = { token, name: 'gw', services: { gateway: { url: 'https://gw.example:8443' } } };
    const refused = await tc.call('POST', '/enroll', { token: null, body: { ...body, csr: createKeyAndCsr('gw', ['gw.example', 'core.example']).csrPem } });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('CORE_CA_NAME_NOT_APPROVED');
    expect(refused.body.error.details.refused).toEqual(['core.example']);
    const ok = await tc.call('POST', '/enroll', { token: null, body: { ...body, csr: createKeyAndCsr('gw', ['GW.example', '127.0.0.1']).csrPem } });
    expect(ok.status).toBe(201);
    const san = new X509Certificate(ok.body.certificate).subjectAltName!;
    expect(san).toContain('DNS:gw.example');
    expect(san).toContain('IP Address:127.0.0.1');
    expect(san).not.toContain('core.example');
  });

  it('lets a heartbeat restate a granted URL on another port, and refuses any claim beyond the grant whole', async () => {
    const tc = await startCore();
    const ss = await enrollSiteServer(tc, 'ts', { tickleAddress: '127.0.0.1:4000' });
    const beat = (body: unknown) => tc.call('POST', `/site-servers/${ss.id}/heartbeat`, { token: ss.credential, body });
    expect((await beat({ services: { task: { url: 'http://ts.test:9090' } }, tickleAddress: '127.0.0.1:4001' })).status).toBe(200);
    let view = (await tc.call('GET', `/site-servers/${ss.id}`)).body;
    expect(view.services.task.url).toBe('http://ts.test:9090');
    expect(view.tickleAddress).toBe('127.0.0.1:4001');
    // One bad part refuses the whole heartbeat: the good URL in it is not applied either.
    const r = await beat({ services: { task: { url: 'http://ts.test:9191' }, netboot: {} } });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('CORE_CLAIM_REFUSED');
    expect((await beat({ tickleAddress: '10.0.0.1:4000' })).body.error.code).toBe('CORE_CLAIM_REFUSED');
    view = (await tc.call('GET', `/site-servers/${ss.id}`)).body;
    expect(view.services).toEqual({ task: { url: 'http://ts.test:9090' } });
    expect(view.tickleAddress).toBe('127.0.0.1:4001');
    expect((await tc.call('GET', '/stats')).body.siteServers.claimsRefused).toBe(2);
  });

  it('takes health and load from a heartbeat as a report (shown to admins, never a claim), bounded', async () => {
    const tc = await startCore();
    const ss = await enrollSiteServer(tc, 'ts');
    const beat = (body: unknown) => tc.call('POST', `/site-servers/${ss.id}/heartbeat`, { token: ss.credential, body });
    expect((await tc.call('GET', `/site-servers/${ss.id}`)).body.health).toBeUndefined();
    expect((await beat({ health: { status: 'degraded', problems: ['disk nearly full'], load: { agents: 12, downloads: 3 } } })).status).toBe(200);
    const view = (await tc.call('GET', `/site-servers/${ss.id}`)).body;
    expect(view.health).toMatchObject({ status: 'degraded', problems: ['disk nearly full'], load: { agents: 12, downloads: 3 } });
    expect(Date.parse(view.health.at)).toBeGreaterThan(0);
    expect(view.services).toEqual({ task: { url: 'http://ts.test:8080' } });
    // The console's overview raises it as a warning (not the offline error).
    const alarms = (await tc.call('GET', '/console/snapshot')).body.alarms as Array<{ severity: string; text: string }>;
    expect(alarms).toContainEqual(expect.objectContaining({ severity: 'warning', text: 'site server ts is degraded: disk nearly full' }));
    const tooMany = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, i]));
    for (const health of [{ status: 'fine' }, { status: 'ok', load: { x: -1 } }, { status: 'ok', load: tooMany }, { status: 'ok', problems: ['x'.repeat(201)] }, { status: 'ok', services: {} }]) {
      const r = await beat({ health });
      expect(r.status, JSON.stringify(health)).toBe(400);
    }
    // The refused reports changed nothing.
    expect((await tc.call('GET', `/site-servers/${ss.id}`)).body.health).toMatchObject({ status: 'degraded', load: { agents: 12, downloads: 3 } });
  });

  it('lets a heartbeat restate the address it enrolled with (as older site servers do), and refuses another', async () => {
    const tc = await startCore();
    await tc.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16'] } });
    const ss = await enrollSiteServer(tc, 'ts', { address: '10.1.0.5/16' });
    const beat = (body: unknown) => tc.call('POST', `/site-servers/${ss.id}/heartbeat`, { token: ss.credential, body });
    expect((await beat({ address: '10.1.0.5/16' })).status).toBe(200);
    const moved = await beat({ address: '10.1.0.9/16' });
    expect(moved.status).toBe(403);
    expect(moved.body.error.code).toBe('CORE_CLAIM_REFUSED');
    const view = (await tc.call('GET', `/site-servers/${ss.id}`)).body;
    expect(view.reportedAddress).toBe('10.1.0.5/16');
    expect((await tc.call('GET', '/stats')).body.siteServers.claimsRefused).toBe(1);
  });

  it('drops what falls outside a grant an admin narrows: the task service goes, and its agents move', async () => {
    const tc = await startCore();
    const a = await enrollSiteServer(tc, 'ts-a');
    const b = await enrollSiteServer(tc, 'ts-b');
    const agents = await Promise.all([1, 2, 3, 4].map((n) => enrollAgent(tc, `pc-${n}`, { ips: [`10.9.0.${n}/24`] })));
    await tc.core.registry.settled();
    const narrowed = await tc.call('PATCH', `/site-servers/${a.id}`, { body: { grant: { services: { netboot: true } } } });
    expect(narrowed.status).toBe(200);
    expect(narrowed.body.services).toEqual({});
    expect(narrowed.body.grant.services).toEqual({ netboot: true });
    await tc.core.registry.settled();
    for (const ag of agents) expect((await tc.call('GET', `/agents/${ag.id}`)).body.taskServer).toBe(b.id);
    const tasks = await tc.call('GET', '/task-service/agents', { token: a.credential });
    expect(tasks.status).toBe(403);
    // An admin's services must be within the grant too.
    const beyond = await tc.call('PATCH', `/site-servers/${a.id}`, { body: { services: { task: { url: 'http://ts-a.test:8080' } } } });
    expect(beyond.status).toBe(403);
    expect(beyond.body.error.code).toBe('CORE_GRANT_EXCEEDED');
    const addr = await tc.call('PATCH', `/site-servers/${b.id}`, { body: { grant: { names: [], addresses: ['10.9.0.200'] } } });
    // Its URL host is no longer approved: the service goes until it restates one on an approved host.
    expect(addr.body.services).toEqual({});
    expect(addr.body.grant).toMatchObject({ addresses: ['10.9.0.200'], names: [], approvedBy: 'admin' });
  });

  it('grants a record written before grants what it ran, once, at start', async () => {
    const first = await startCore();
    const ss = await enrollSiteServer(first, 'old', { address: '10.1.0.5/16', tickleAddress: '127.0.0.1:4000' });
    const dir = first.dir;
    await first.core.stop();
    const db = await openDatabase(dir);
    const rows = sublevel<Record<string, unknown>>(db, 'site-servers');
    const rec = await rows.get(ss.id);
    const { grant: _g, reportedAddress: _r, ...legacy } = rec!;
    await rows.put(ss.id, { ...legacy, address: '10.1.0.5/16' });
    await db.close();
    const again = await startCore({ dir });
    const view = (await again.call('GET', `/site-servers/${ss.id}`)).body;
    expect(view.grant).toEqual({ services: { task: true }, addresses: ['127.0.0.1', '10.1.0.5'], names: ['old.test'], approvedBy: 'enrollment', sites: [] });
    expect(view.reportedAddress).toBe('10.1.0.5/16');
  });
});
