import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, enrollAgent, newDataDir, heartbeat, sendTo, startCore, udpSocket, type TestCore } from './harness.js';

afterEach(cleanup);

interface Entry {
  seq: number;
  at: string;
  actor: { kind: string; admin?: string; via?: string; credential?: string; id?: string };
  from: { address: string; requestId: string };
  action: string;
  method: string;
  route: string;
  object?: string;
  request?: Record<string, unknown>;
  before?: Record<string, unknown>;
  after?: Record<string, unknown>;
  outcome: { status: number; code?: string; result: string };
  prev: string;
  hash: string;
}

async function audit(tc: TestCore, query = ''): Promise<Entry[]> {
  const r = await tc.call<{ items: Entry[] }>('GET', `/audit${query}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.items;
}

async function addAdmin(tc: TestCore, name: string, roles: string[], extra: Record<string, unknown> = {}): Promise<{ token?: string }> {
  const r = await tc.call('POST', '/admins', { body: { name, roles, ...extra } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return { token: r.body.token?.token as string | undefined };
}

describe('audit log', () => {
  it('records a change with actor, address, request id, route, object, request, before and after', async () => {
    const tc = await startCore();
    await addAdmin(tc, 'bob', ['viewer']);
    const r = await tc.call('PATCH', '/admins/bob', { body: { roles: ['operator'] }, headers: { 'x-request-id': 'req-audit-1' } });
    expect(r.status).toBe(200);
    const [e] = await audit(tc, '?action=admins.update');
    expect(e).toMatchObject({
      actor: { kind: 'admin', admin: 'admin', via: 'bootstrap', credential: 'admin-token' },
      from: { address: '127.0.0.1', requestId: 'req-audit-1' },
      action: 'admins.update',
      method: 'PATCH',
      route: '/api/v1/admins/:name',
      object: 'admin:bob',
      request: { roles: ['operator'] },
      before: { name: 'bob', roles: ['viewer'] },
      after: { name: 'bob', roles: ['operator'] },
      outcome: { status: 200, result: 'ok' },
    });
    expect(Date.parse(e!.at)).toBeGreaterThan(0);
    const add = (await audit(tc, '?action=admins.create'))[0]!;
    expect(add).toMatchObject({ object: 'admin:bob', outcome: { status: 201, result: 'ok' }, route: '/api/v1/admins' });
    expect(e!.prev).toBe(add.hash);
    // A change through another module's route, without a handler note: the route's own object.
    expect((await tc.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16'] } })).status).toBe(201);
    expect((await tc.call('DELETE', '/sites/hq')).status).toBe(204);
    const [del, create] = await audit(tc, '?action=sites.');
    expect(del).toMatchObject({ action: 'sites.delete', route: '/api/v1/sites/:name', object: 'site:hq', before: { name: 'hq' }, outcome: { status: 204 } });
    expect(create).toMatchObject({ action: 'sites.create', request: { name: 'hq', subnets: ['10.1.0.0/16'] }, outcome: { status: 201 } });
    // A change that failed is recorded too, with its code.
    expect((await tc.call('POST', '/sites', { body: { name: 'x', subnets: ['nope'] } })).status).toBe(400);
    expect((await audit(tc, '?action=sites.create&result=failed'))[0]).toMatchObject({ outcome: { status: 400, result: 'failed', code: expect.stringMatching(/^COMMON_/) } });
  });

  it('records refused requests: a 403 of an administrator, 401s without or with a bad credential; not reads nor machine traffic', async () => {
    const tc = await startCore();
    const { token } = await addAdmin(tc, 'alice', ['viewer']);
    const before = (await tc.call('GET', '/audit/verify')).body.entries as number;
    const refused = await tc.call('POST', '/sites', { token, body: { name: 'x', subnets: ['10.9.0.0/16'] } });
    expect(refused.status).toBe(403);
    expect((await tc.call('GET', '/sites', { token })).status).toBe(200);
    expect((await tc.call('GET', '/sites', { token: null })).status).toBe(401);
    expect((await tc.call('DELETE', '/sites/hq', { token: 'at_nope.secret' })).status).toBe(401);
    const agent = await enrollAgent(tc, 'pc-1');
    expect((await tc.call('POST', `/agents/${agent.id}/heartbeat`, { token: agent.credential, body: {} })).status).toBeLessThan(300);
    const s = await udpSocket();
    await sendTo(s, tc, heartbeat(tc, agent));
    const items = await audit(tc, '?result=refused');
    expect(items.map((e) => `${e.method} ${e.route} ${e.outcome.status} ${e.actor.kind}:${e.actor.admin ?? ''}`)).toEqual([
      'DELETE /api/v1/sites/:name 401 anonymous:',
      'GET /api/v1/sites 401 anonymous:',
      'POST /api/v1/sites 403 admin:alice',
    ]);
    const tokenId = token!.slice(0, token!.indexOf('.'));
    expect(items[2]).toMatchObject({ action: 'sites.create', actor: { via: 'token', credential: tokenId }, outcome: { code: 'CORE_FORBIDDEN', result: 'refused' } });
    expect(items[1]!.outcome.code).toBe('COMMON_UNAUTHORIZED');
    // The three refusals, the enrollment token and nothing else: no read, no enrollment, no heartbeat.
    const all = await audit(tc, '?limit=1000');
    expect(all.length - before).toBe(4);
    expect(all.filter((e) => e.actor.kind !== 'admin' && e.actor.kind !== 'anonymous')).toEqual([]);
  });

  it('writes a burst of identical refusals once and sums the rest up when the minute is over', async () => {
    const tc = await startCore();
    const agent = await enrollAgent(tc, 'pc-1', { ips: ['10.1.0.5'] });
    const stale = `${agent.id}.not-its-secret-any-more`;
    for (let i = 0; i < 20; i++) expect((await tc.call('POST', `/agents/${agent.id}/heartbeat`, { token: stale, body: {} })).status).toBe(401);
    expect((await audit(tc, '?result=refused')).map((e) => e.action)).toEqual(['agents.heartbeat']);
    tc.clock.advance(61_000);
    await tc.call('POST', `/agents/${agent.id}/heartbeat`, { token: stale, body: {} });
    const [again, summary, first] = await audit(tc, '?result=refused');
    expect(summary).toMatchObject({ action: 'audit.repeated', route: '/api/v1/agents/:id/heartbeat', outcome: { status: 401 }, after: { action: 'agents.heartbeat', repeated: 19, from: first!.at } });
    expect(again!.action).toBe('agents.heartbeat');
    expect((await tc.call('GET', '/audit/verify')).body.ok).toBe(true);
  });

  it('never records a secret: passwords, API tokens, the owner token, session cookies', async () => {
    const exportFile = join(await newDataDir(), 'audit.jsonl');
    const tc = await startCore({ config: { audit: { export: { file: exportFile } } } });
    const password = 'Correct-Horse-Battery-9';
    const password2 = 'Another-Staple-Orbit-42';
    await addAdmin(tc, 'carol', ['admin'], { password });
    const issued = await tc.call('POST', '/admins/carol/tokens', { body: { name: 'ci' } });
    expect(issued.status).toBe(201);
    const apiToken = issued.body.token as string;
    const signIn = await tc.call('POST', '/session', { token: null, body: { name: 'carol', password } });
    expect(signIn.status).toBe(200);
    const cookie = /outpost_session=([^;]+)/.exec(signIn.headers.get('set-cookie') ?? '')![1]!;
    expect((await tc.call('POST', '/session', { token: null, body: { name: 'carol', password: `${password}x` } })).status).toBe(401);
    expect((await tc.call('POST', '/session', { token: null, body: { token: apiToken } })).status).toBe(200);
    expect((await tc.call('PUT', '/admins/carol/password', { body: { password: password2 } })).status).toBe(204);
    expect((await tc.call('POST', '/sites', { token: apiToken, body: { name: 'hq', subnets: ['10.1.0.0/16'] } })).status).toBe(201);
    expect((await tc.call('DELETE', '/session', { token: null, headers: { cookie: `outpost_session=${cookie}` } })).status).toBe(401);

    const entries = await audit(tc, '?limit=1000');
    const failed = entries.find((e) => e.action === 'session.create' && e.outcome.result === 'refused');
    expect(failed).toMatchObject({ actor: { kind: 'anonymous', admin: 'carol' }, outcome: { status: 401, code: 'CORE_SIGN_IN_FAILED' }, request: { name: 'carol', password: '[redacted]' } });
    const signedIn = entries.filter((e) => e.action === 'session.create' && e.outcome.result === 'ok');
    expect(signedIn.map((e) => e.actor)).toEqual([expect.objectContaining({ admin: 'carol', via: 'session' }), expect.objectContaining({ admin: 'carol', via: 'session' })]);

    await waitFor(() => (tc.core.stats().audit as { exported: { file: number } }).exported.file >= entries.length, { what: 'the export file' });
    const everything = [JSON.stringify(entries), JSON.stringify((await tc.call('GET', '/audit/verify')).body), await readFile(exportFile, 'utf8')].join('\n');
    for (const secret of [password, password2, apiToken, apiToken.split('.')[1]!, tc.admin, tc.admin.split('.')[1]!, cookie]) {
      expect(everything.includes(secret), `a secret appears in the audit output: ${secret.slice(0, 6)}...`).toBe(false);
    }
    expect(everything).toContain('[redacted]');
  });
});

