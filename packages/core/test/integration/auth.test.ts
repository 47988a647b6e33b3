import { stat } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, enrollAgent, enrollSiteServer, startCore } from './harness.js';

afterEach(cleanup);

describe('credentials', () => {
  it('creates the admin token file with mode 0600 and reuses it on restart', async () => {
    const first = await startCore();
    const file = first.core.adminTokenFile;
    expect(file.startsWith(first.dir)).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(first.admin).toMatch(/^admin\..{16,}/);
    await first.stop();
    const second = await startCore({ dir: first.dir });
    expect(second.admin).toBe(first.admin);
    expect((await second.call('GET', '/sites')).status).toBe(200);
  });

  it('answers 401 COMMON_UNAUTHORIZED to a missing, malformed or wrong bearer', async () => {
    const tc = await startCore();
    const a = await enrollAgent(tc, 'pc');
    const wrongs: (string | null)[] = [null, 'garbage', `${tc.admin}x`, 'admin.short', `${a.id}.not-the-secret`, 'ag_unknown.secret'];
    for (const token of wrongs) {
      const r = await tc.call('GET', '/sites', { token });
      expect(r.status, String(token)).toBe(401);
      expect(r.body.error.code).toBe('COMMON_UNAUTHORIZED');
    }
    const basic = await tc.call('GET', '/sites', { token: null, headers: { authorization: 'Basic YWRtaW46eA==' } });
    expect(basic.status).toBe(401);
  });

  it('serves health without a credential', async () => {
    const tc = await startCore();
    const r = await tc.call('GET', '/health', { token: null });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('ok');
  });

  it('refuses an agent or site-server credential on admin routes with 403 CORE_FORBIDDEN', async () => {
    const tc = await startCore();
    const a = await enrollAgent(tc, 'pc');
    const ss = await enrollSiteServer(tc, 'ts');
    for (const cred of [a.credential, ss.credential]) {
      for (const [method, path] of [['GET', '/sites'], ['GET', '/agents'], ['GET', '/tokens'], ['GET', '/stats'], ['GET', '/site-servers'], ['DELETE', `/agents/${a.id}`]] as const) {
        const r = await tc.call(method, path, { token: cred });
        expect(r.status, `${method} ${path}`).toBe(403);
        expect(r.body.error.code).toBe('CORE_FORBIDDEN');
      }
      const tok = await tc.call('POST', '/tokens', { token: cred, body: { for: 'agent' } });
      expect(tok.status).toBe(403);
    }
  });

  it("refuses an agent reading or changing another agent's record with 403", async () => {
    const tc = await startCore();
    const a = await enrollAgent(tc, 'pc-a');
    const b = await enrollAgent(tc, 'pc-b');
    for (const path of [`/agents/${b.id}`, `/agents/${b.id}/config`, `/agents/${b.id}/site-servers?service=task`]) {
      const r = await tc.call('GET', path, { token: a.credential });
      expect(r.status, path).toBe(403);
      expect(r.body.error.code).toBe('CORE_FORBIDDEN');
    }
    expect((await tc.call('PATCH', `/agents/${b.id}`, { token: a.credential, body: { name: 'stolen' } })).status).toBe(403);
    expect((await tc.call('POST', `/agents/${b.id}/heartbeat`, { token: a.credential, body: {} })).status).toBe(403);
    expect((await tc.call('GET', `/agents/${b.id}`)).body.name).toBe('pc-b');
  });

  it("refuses a site server reading another site server's config, and an agent using site-server routes", async () => {
    const tc = await startCore();
    const s1 = await enrollSiteServer(tc, 's1');
    const s2 = await enrollSiteServer(tc, 's2');
    const a = await enrollAgent(tc, 'pc');
    expect((await tc.call('GET', `/site-servers/${s2.id}/config`, { token: s1.credential })).status).toBe(403);
    expect((await tc.call('GET', `/site-servers/${s1.id}/config`, { token: s1.credential })).status).toBe(200);
    expect((await tc.call('POST', `/site-servers/${s1.id}/heartbeat`, { token: a.credential, body: {} })).status).toBe(403);
    expect((await tc.call('POST', `/agents/${a.id}/heartbeat`, { token: s1.credential, body: {} })).status).toBe(403);
  });

  it('stops accepting the credential of a deleted agent', async () => {
    const tc = await startCore();
    const a = await enrollAgent(tc, 'pc');
    expect((await tc.call('DELETE', `/agents/${a.id}`)).status).toBe(204);
    expect((await tc.call('GET', `/agents/${a.id}`, { token: a.credential })).status).toBe(401);
  });
});
