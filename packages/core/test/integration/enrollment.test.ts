import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, createToken, enrollAgent, startCore } from './harness.js';

afterEach(cleanup);

const agentBody = (token: string, name: string) => ({ token: null, body: { token, name, macs: [], ips: ['10.9.0.1/24'] } });

describe('enrollment', () => {
  it('lets a token with N uses enroll exactly N times, then answers CORE_ENROLL_TOKEN_USED_UP', async () => {
    const tc = await startCore();
    const token = await createToken(tc, 'agent', { uses: 3 });
    for (let i = 0; i < 3; i++) expect((await tc.call('POST', '/enroll', agentBody(token, `pc-${i}`))).status).toBe(201);
    const r = await tc.call('POST', '/enroll', agentBody(token, 'pc-3'));
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('CORE_ENROLL_TOKEN_USED_UP');
    const tokens = await tc.call('GET', '/tokens');
    expect(tokens.body.items[0]).toMatchObject({ uses: 3, usesLeft: 0 });
    expect((await tc.call('GET', '/agents')).body.items).toHaveLength(3);
  });

  it('refuses a token past its expiry (by the core clock) with CORE_ENROLL_TOKEN_EXPIRED', async () => {
    const tc = await startCore();
    const token = await createToken(tc, 'agent', { uses: 5, expires: '1h' });
    tc.clock.advance(59 * 60_000);
    expect((await tc.call('POST', '/enroll', agentBody(token, 'early'))).status).toBe(201);
    tc.clock.advance(60_000);
    const r = await tc.call('POST', '/enroll', agentBody(token, 'late'));
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('CORE_ENROLL_TOKEN_EXPIRED');
  });

  it('refuses a wrong secret, an unknown id and a malformed token with CORE_ENROLL_TOKEN_INVALID', async () => {
    const tc = await startCore();
    const token = await createToken(tc, 'agent');
    const id = token.slice(0, token.indexOf('.'));
    for (const bad of [`${id}.wrong-secret`, `et_nope.${token.slice(id.length + 1)}`, 'no-dot-at-all', `${id}.`]) {
      const r = await tc.call('POST', '/enroll', agentBody(bad, 'pc'));
      expect(r.status, bad).toBe(401);
      expect(r.body.error.code).toBe('CORE_ENROLL_TOKEN_INVALID');
    }
    // The failures did not spend the token.
    expect((await tc.call('POST', '/enroll', agentBody(token, 'pc'))).status).toBe(201);
  });

  it('refuses a body of the wrong kind with CORE_ENROLL_KIND_MISMATCH and does not spend the token', async () => {
    const tc = await startCore();
    const agentToken = await createToken(tc, 'agent');
    const ssToken = await createToken(tc, 'site-server', { grant: { services: { task: true } } });
    const asServer = await tc.call('POST', '/enroll', { token: null, body: { token: agentToken, name: 'ts', services: { task: { url: 'http://ts:1' } } } });
    expect(asServer.status).toBe(400);
    expect(asServer.body.error.code).toBe('CORE_ENROLL_KIND_MISMATCH');
    const asAgent = await tc.call('POST', '/enroll', agentBody(ssToken, 'pc'));
    expect(asAgent.status).toBe(400);
    expect(asAgent.body.error.code).toBe('CORE_ENROLL_KIND_MISMATCH');
    expect((await tc.call('POST', '/enroll', agentBody(agentToken, 'pc'))).status).toBe(201);
  });

  it('gives exactly 10 of 50 concurrent enrollments on a 10-use token a credential', async () => {
    const tc = await startCore();
    const token = await createToken(tc, 'agent', { uses: 10 });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => tc.call('POST', '/enroll', agentBody(token, `pc-${i}`))));
    const ok = results.filter((r) => r.status === 201);
    expect(ok).toHaveLength(10);
    for (const r of results.filter((x) => x.status !== 201)) expect(r.body.error.code).toBe('CORE_ENROLL_TOKEN_USED_UP');
    expect(new Set(ok.map((r) => r.body.id)).size).toBe(10);
    expect((await tc.call('GET', '/agents')).body.items).toHaveLength(10);
    expect((await tc.call('GET', '/tokens')).body.items[0].usesLeft).toBe(0);
  });

  it('persists the spent uses of concurrent enrollments: after a restart the token is still used up', async () => {
    const first = await startCore();
    const token = await createToken(first, 'agent', { uses: 10 });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => first.call('POST', '/enroll', agentBody(token, `pc-${i}`))));
    expect(results.every((r) => r.status === 201)).toBe(true);
    await first.stop();
    const second = await startCore({ dir: first.dir });
    expect((await second.call('GET', '/tokens')).body.items[0].usesLeft).toBe(0);
    const r = await second.call('POST', '/enroll', agentBody(token, 'one-too-many'));
    expect(r.body.error?.code).toBe('CORE_ENROLL_TOKEN_USED_UP');
  });

  it('returns a credential that works as a bearer for the enrolled agent', async () => {
    const tc = await startCore();
    const a = await enrollAgent(tc, 'pc-1', { macs: ['52:54:00:12:34:56'], ips: ['10.1.2.3/24'], os: 'linux' });
    expect(a.credential.startsWith(`${a.id}.`)).toBe(true);
    const me = await tc.call('GET', `/agents/${a.id}`, { token: a.credential });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: a.id, name: 'pc-1', macs: ['52:54:00:12:34:56'], ips: ['10.1.2.3/24'], os: 'linux' });
    const cfg = await tc.call('GET', `/agents/${a.id}/config`, { token: a.credential });
    expect(cfg.status).toBe(200);
    expect(cfg.body.serial).toEqual(expect.any(String));
  });

  it('never stores an enrolled secret (or the enrollment token secret) in plaintext', async () => {
    const tc = await startCore();
    const token = await createToken(tc, 'agent');
    const a = await enrollAgent(tc, 'pc-1', {}, token);
    await tc.stop();
    const needles = [a.secret, token.slice(token.indexOf('.') + 1)];
    const files = await readdir(tc.dir, { recursive: true });
    let scanned = 0;
    for (const f of files) {
      const p = join(tc.dir, f);
      if (!(await stat(p)).isFile()) continue;
      const content = await readFile(p);
      scanned++;
      for (const n of needles) expect(content.includes(n), `${f} holds a secret`).toBe(false);
    }
    expect(scanned).toBeGreaterThan(2);
  });

  it('lists tokens without their secret and deletes them', async () => {
    const tc = await startCore();
    const created = await tc.call('POST', '/tokens', { body: { for: 'site-server', uses: 2, note: 'branch', grant: { services: { task: true } } } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ for: 'site-server', uses: 2, usesLeft: 2, note: 'branch', grant: { services: { task: true } } });
    const list = await tc.call('GET', '/tokens');
    expect(list.body.items).toHaveLength(1);
    expect(list.body.items[0].token).toBeUndefined();
    expect(JSON.stringify(list.body)).not.toContain(created.body.token.split('.')[1]);
    expect((await tc.call('DELETE', `/tokens/${created.body.id}`)).status).toBe(204);
    const again = await tc.call('DELETE', `/tokens/${created.body.id}`);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('CORE_TOKEN_NOT_FOUND');
    const use = await tc.call('POST', '/enroll', { token: null, body: { token: created.body.token, name: 'x', services: {} } });
    expect(use.body.error.code).toBe('CORE_ENROLL_TOKEN_INVALID');
  });
});
