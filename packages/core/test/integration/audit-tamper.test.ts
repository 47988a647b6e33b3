import { createHash } from 'node:crypto';
import { canonicalJson, openDatabase, sublevel } from '@outpost/common';
import { afterEach, describe, expect, it } from 'vitest';
import { seqKey } from '../../src/audit/store.js';
import { cleanup, newDataDir, startCore } from './harness.js';

afterEach(cleanup);

/** Opens the stopped core's level db directly and hands `fn` the audit sublevel. */
async function withAuditDb(dir: string, fn: (entries: ReturnType<typeof sublevel<Record<string, unknown>>>) => Promise<void>): Promise<void> {
  const db = await openDatabase(dir);
  try {
    await fn(sublevel<Record<string, unknown>>(db, 'audit'));
  } finally {
    await db.close();
  }
}

async function coreWithChanges(n: number) {
  const dir = await newDataDir();
  const tc = await startCore({ dir });
  for (let i = 0; i < n; i++) expect((await tc.call('POST', '/sites', { body: { name: `s${i}`, subnets: [`10.${i}.0.0/16`] } })).status).toBe(201);
  expect((await tc.call('GET', '/audit/verify')).body).toEqual({ ok: true, entries: n, first: 1, last: n });
  await tc.stop();
  return dir;
}

describe('audit tamper evidence', () => {
  it('names the entry whose field was changed in the database', async () => {
    const dir = await coreWithChanges(6);
    await withAuditDb(dir, async (entries) => {
      const e = (await entries.get(seqKey(4)))!;
      await entries.put(seqKey(4), { ...e, outcome: { status: 403, result: 'refused' } });
    });
    const tc = await startCore({ dir });
    const v = (await tc.call('GET', '/audit/verify')).body;
    expect(v).toMatchObject({ ok: false, entries: 3, broken: { seq: 4, reason: expect.stringMatching(/hash mismatch/) } });
  });

  it('names the entry after one whose hash was recomputed, and a deleted entry as a gap', async () => {
    const dir = await coreWithChanges(6);
    await withAuditDb(dir, async (entries) => {
      const e = (await entries.get(seqKey(2)))!;
      const { hash: _h, ...rest } = { ...e, actor: { kind: 'admin', admin: 'someone-else' } };
      await entries.put(seqKey(2), { ...rest, hash: createHash('sha256').update(String(rest.prev)).update(canonicalJson(rest)!).digest('hex') });
    });
    let tc = await startCore({ dir });
    expect((await tc.call('GET', '/audit/verify')).body.broken).toEqual({ seq: 3, reason: expect.stringMatching(/prev mismatch/) });
    await tc.stop();

    const gap = await coreWithChanges(5);
    await withAuditDb(gap, (entries) => entries.del(seqKey(3)));
    tc = await startCore({ dir: gap });
    expect((await tc.call('GET', '/audit/verify')).body).toMatchObject({ ok: false, entries: 2, broken: { seq: 3, reason: expect.stringMatching(/missing/) } });
    // The chain goes on from the head: new entries append after seq 5.
    expect((await tc.call('POST', '/sites', { body: { name: 'more', subnets: ['10.99.0.0/16'] } })).status).toBe(201);
    expect((await tc.call('GET', '/audit?limit=1')).body.items[0].seq).toBe(6);
  });
});
