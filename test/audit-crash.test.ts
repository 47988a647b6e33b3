import { freePort, removeDir, tempDir } from '@outpost/testing';
import { describe, expect, it } from 'vitest';
import { startCoreProc, kill9 } from './fixtures/core-proc.js';
import { cleanupAfterEach } from './fixtures/e2e.js';

/**
 * The audit log under kill -9: a core in a child process takes a burst of changes from
 * concurrent clients and is killed in the middle; after a restart on the same data dir,
 * every change that was acknowledged (2xx) has its audit entry and the chain verifies.
 */

const onCleanup = cleanupAfterEach();
const WAIT = 60_000;
const CHANGES = 300;
const CLIENTS = 8;
/** Each burst is killed once this many more changes were acknowledged. */
const KILL_AFTER = 70;
const ROUNDS = 3;



describe('audit log under kill -9', () => {
  it('has an entry for every acknowledged change after a crash in the middle of a burst, and the chain verifies', { timeout: 180_000 }, async () => {
    const dir = await tempDir('outpost-audit-crash-');
    const ports = { http: await freePort('tcp'), udp: await freePort('udp') };
    let core = await startCoreProc(dir, ports.http, ports.udp);
    onCleanup(async () => {
      await kill9(core);
      await removeDir(dir);
    });

    const acknowledged: string[] = [];
    let next = 0;
    const deadline = Date.now() + 2 * WAIT;
    // Three bursts, each killed once KILL_AFTER more changes were acknowledged.
    for (let round = 0; round < ROUNDS; round++) {
      if (round > 0) core = await startCoreProc(dir, ports.http, ports.udp);
      const target = acknowledged.length + KILL_AFTER;
      let killed: Promise<void> | undefined;
      const client = async (): Promise<void> => {
        while (next < CHANGES && killed === undefined && Date.now() < deadline) {
          const i = next++;
          const name = `crash-${i}`;
          try {
            const res = await fetch(`${core.url}/api/v1/sites`, {
              method: 'POST',
              headers: { authorization: `Bearer ${core.adminToken}`, 'content-type': 'application/json' },
              body: JSON.stringify({ name, subnets: [`10.${i >> 8}.${i & 255}.0/24`] }),
              signal: AbortSignal.timeout(10_000),
            });
            await res.arrayBuffer();
            if (res.status >= 200 && res.status < 300) acknowledged.push(name);
            else throw new Error(`POST /sites answered ${res.status}`);
          } catch (err) {
            if (killed === undefined) throw err;
            return;
          }
          if (acknowledged.length >= target && killed === undefined) killed = kill9(core);
        }
      };
      await Promise.all(Array.from({ length: CLIENTS }, client));
      expect(killed, `round ${round}: the core was killed in the middle of the burst`).toBeDefined();
      await killed;
    }
    expect(acknowledged.length).toBeGreaterThanOrEqual(ROUNDS * KILL_AFTER);
    expect(acknowledged.length).toBeLessThan(CHANGES);

    core = await startCoreProc(dir, ports.http, ports.udp);
    const get = async (path: string) => {
      const r = await fetch(`${core.url}/api/v1${path}`, { headers: { authorization: `Bearer ${core.adminToken}` } });
      expect(r.status).toBe(200);
      return (await r.json()) as Record<string, unknown>;
    };
    const recorded = new Set<string>();
    let before: number | undefined;
    for (let page = 0; page < 10; page++) {
      const body = (await get(`/audit?action=sites.create&limit=1000${before ? `&before=${before}` : ''}`)) as { items: Array<{ request?: { name?: string }; outcome: { status: number } }>; next?: number };
      for (const e of body.items) if (e.outcome.status === 201 && e.request?.name) recorded.add(e.request.name);
      if (body.next === undefined) break;
      before = body.next;
    }
    const missing = acknowledged.filter((n) => !recorded.has(n));
    expect(missing, `acknowledged changes without an audit entry: ${missing.slice(0, 5).join(', ')}`).toEqual([]);
    const verify = await get('/audit/verify');
    expect(verify).toMatchObject({ ok: true });
    expect(verify.entries as number).toBeGreaterThanOrEqual(acknowledged.length);
  });
});
