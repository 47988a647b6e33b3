import { waitFor } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, newDataDir, startCore } from './harness.js';

afterEach(cleanup);

const addSites = async (tc: Awaited<ReturnType<typeof startCore>>, prefix: string, n: number) => {
  for (let i = 0; i < n; i++) expect((await tc.call('POST', '/sites', { body: { name: `${prefix}${i}`, subnets: [`10.${prefix.charCodeAt(0)}.${i}.0/24`] } })).status).toBe(201);
};

describe('audit retention', () => {
  it('keeps at most maxEntries, moving the anchor; verify still passes from it, also after a restart', async () => {
    const dir = await newDataDir();
    const config = { audit: { retention: { maxEntries: 5, interval: 50 } } };
    const tc = await startCore({ dir, config });
    await addSites(tc, 'a', 12);
    await waitFor(async () => (await tc.call('GET', '/audit/verify')).body.entries === 5, { what: 'pruning to 5 entries' });
    const v = (await tc.call('GET', '/audit/verify')).body;
    expect(v).toEqual({ ok: true, entries: 5, first: 8, last: 12 });
    expect((await tc.call('GET', '/audit?limit=1000')).body.items.map((e: { seq: number }) => e.seq)).toEqual([12, 11, 10, 9, 8]);
    await tc.stop();
    const again = await startCore({ dir, config });
    expect((await again.call('GET', '/audit/verify')).body).toMatchObject({ ok: true, first: 8 });
    await addSites(again, 'b', 1);
    expect((await again.call('GET', '/audit?limit=1')).body.items[0]).toMatchObject({ seq: 13 });
  });

  it('prunes entries older than maxAge (at start and on its timer)', async () => {
    const tc = await startCore({ config: { audit: { retention: { maxAge: '1d', interval: 50 } } } });
    await addSites(tc, 'a', 4);
    tc.clock.advance(2 * 86_400_000);
    await addSites(tc, 'b', 2);
    await waitFor(async () => (await tc.call('GET', '/audit/verify')).body.entries === 2, { what: 'pruning old entries' });
    expect((await tc.call('GET', '/audit/verify')).body).toEqual({ ok: true, entries: 2, first: 5, last: 6 });
    expect(tc.core.stats().audit).toMatchObject({ entries: 2, seq: 6, pruned: 4 });
  });
});
