import { waitFor } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, startCore, type TestCore } from './harness.js';

afterEach(cleanup);

interface Entry {
  seq: number;
  at: string;
  action: string;
  actor: { admin?: string };
  outcome: { result: string };
  object?: string;
}

const page = async (tc: TestCore, q: string): Promise<{ items: Entry[]; next?: number }> => {
  const r = await tc.call('GET', `/audit${q}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
};

describe('audit query and stream', () => {
  it('filters by admin, action prefix, result and time, and pages newest first with before/next', async () => {
    const tc = await startCore();
    const alice = (await tc.call('POST', '/admins', { body: { name: 'alice', roles: ['viewer'] } })).body.token.token as string;
    for (let i = 0; i < 25; i++) expect((await tc.call('POST', '/sites', { body: { name: `s${i}`, subnets: [`10.${i}.0.0/16`] } })).status).toBe(201);
    tc.clock.advance(60_000);
    const mid = new Date(tc.clock.now()).toISOString();
    tc.clock.advance(60_000);
    for (let i = 0; i < 3; i++) expect((await tc.call('DELETE', `/sites/s${i}`, { token: alice })).status).toBe(403);

    const first = await page(tc, '?action=sites.create&limit=10');
    expect(first.items.map((e) => e.object ?? '')).toHaveLength(10);
    expect(first.items.map((e) => e.seq)).toEqual([...first.items.map((e) => e.seq)].sort((a, b) => b - a));
    expect(first.next).toBe(first.items.at(-1)!.seq);
    const second = await page(tc, `?action=sites.create&limit=10&before=${first.next}`);
    const third = await page(tc, `?action=sites.create&limit=10&before=${second.next}`);
    const seen = [...first.items, ...second.items, ...third.items];
    expect(seen).toHaveLength(25);
    expect(new Set(seen.map((e) => e.seq)).size).toBe(25);
    expect(third.next).toBeUndefined();

    expect((await page(tc, '?admin=alice')).items.map((e) => e.action)).toEqual(['sites.delete', 'sites.delete', 'sites.delete']);
    expect((await page(tc, '?result=refused')).items).toHaveLength(3);
    expect((await page(tc, '?result=ok&action=sites.')).items).toHaveLength(25);
    expect((await page(tc, `?since=${mid}`)).items.map((e) => e.actor.admin)).toEqual(['alice', 'alice', 'alice']);
    expect((await page(tc, `?until=${mid}&action=sites`)).items).toHaveLength(25);
    expect((await page(tc, '?since=90s')).items).toHaveLength(3);
    expect((await page(tc, '?action=admins.create')).items).toHaveLength(1);

    for (const bad of ['?limit=1001', '?result=maybe', '?since=yesterday', '?colour=red']) {
      const r = await tc.call('GET', `/audit${bad}`);
      expect(r.status, bad).toBe(400);
      expect(r.body.error.code).toBe('COMMON_VALIDATION');
    }
    expect((await tc.call('GET', '/audit', { token: alice })).status).toBe(403);
  });

  it('streams each new entry to live clients as an `audit` event', async () => {
    const tc = await startCore({ config: { audit: { stream: { maxClients: 1 } } } });
    const ac = new AbortController();
    const res = await fetch(`${tc.url}/api/v1/audit/stream`, { headers: { authorization: `Bearer ${tc.admin}` }, signal: ac.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    // One client at most: a second is refused.
    const second = await tc.call('GET', '/audit/stream');
    expect(second.status).toBe(503);
    expect(second.body.error.code).toBe('CORE_AUDIT_TOO_MANY_CLIENTS');
    let text = '';
    const reader = res.body!.getReader();
    const reading = (async () => {
      const dec = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += dec.decode(value, { stream: true });
      }
    })().catch(() => undefined);
    expect((await tc.call('POST', '/sites', { body: { name: 'live', subnets: ['10.7.0.0/16'] } })).status).toBe(201);
    await waitFor(() => text.includes('sites.create'), { what: 'the audit event' });
    const frame = text.split('\n\n').find((f) => f.startsWith('event: audit'))!;
    const data = JSON.parse(frame.split('\n').find((l) => l.startsWith('data: '))!.slice(6)) as Entry;
    expect(data).toMatchObject({ action: 'sites.create', actor: { admin: 'admin' } });
    expect(frame).toContain(`id: ${data.seq}`);
    ac.abort();
    await reading;
  });
});
