import { describe, expect, it } from 'vitest';
import { metricTotal, parseMetrics, psql, waitFor } from '@outpost/testing';
import { createToken, enrollAgent, heartbeat, newDataDir, nextMessage, openFromCore, postgresForFile, sendTo, startCore, udpSocket, type TestCore } from './harness.js';

const { gate, pg } = postgresForFile('several cores on one PostgreSQL');
let n = 0;

/** Two cores on one fresh table; the second starts with an empty data dir. */
async function twoCores(): Promise<{ a: TestCore; b: TestCore; table: string }> {
  const table = `two_cores_${n++}`;
  const store = { kind: 'postgres' as const, url: pg().url, table };
  const a = await startCore({ config: { store } });
  const b = await startCore({ dir: await newDataDir(), config: { store } });
  return { a, b, table };
}

const names = async (tc: TestCore, path: string, field = 'name'): Promise<string[]> => ((await tc.call('GET', path)).body.items as Array<Record<string, string>>).map((x) => x[field]!).sort();

describe.runIf(gate.run)('several cores on one PostgreSQL table (active-active)', () => {
  it('are one core: same owner token, CA and work key; a change on either is served by the other at once', async () => {
    const { a, b } = await twoCores();
    expect(b.admin).toBe(a.admin);
    const caA = (await a.call('GET', '/ca/certificate')).body as string;
    const caB = (await b.call('GET', '/ca/certificate')).body as string;
    expect(caB).toBe(caA);
    expect(caA).toContain('BEGIN CERTIFICATE');

    expect((await a.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16'] } })).status).toBe(201);
    await waitFor(async () => (await names(b, '/sites')).includes('hq'), { timeoutMs: 5_000, what: 'the site on the other core' });
    // An agent enrolls on B with a token made on A, and is at once known to A, in its site.
    const agent = await enrollAgent(b, 'pc-1', { ips: ['10.1.0.7'] }, await createToken(a, 'agent'));
    const onA = await waitFor(async () => {
      const r = await a.call('GET', `/agents/${agent.id}`);
      return r.status === 200 && r.body;
    }, { timeoutMs: 5_000, what: 'the agent on the other core' });
    expect(onA.sites).toEqual(['hq']);
    // Its credential works on both, over HTTP and UDP: either core acks its heartbeat with its key.
    expect((await a.call('GET', `/agents/${agent.id}/config`, { token: agent.credential })).status).toBe(200);
    expect((await b.call('GET', `/agents/${agent.id}/config`, { token: agent.credential })).status).toBe(200);
    const sock = await udpSocket();
    for (const tc of [a, b]) {
      const ack = nextMessage(sock, 3_000);
      await sendTo(sock, tc, heartbeat(tc, agent));
      const msg = await ack;
      expect(msg, 'a heartbeat ack').toBeDefined();
      expect(openFromCore(msg!, agent.key).type).toBeDefined();
    }
    // An administrator added on B signs in on A.
    const vera = await b.call('POST', '/admins', { body: { name: 'vera', roles: ['viewer'] } });
    expect(vera.status).toBe(201);
    await waitFor(async () => (await a.call('GET', '/sites', { token: vera.body.token.token })).status === 200, { timeoutMs: 5_000, what: "B's administrator token on A" });
    // A deletion travels too.
    expect((await b.call('DELETE', '/admins/vera')).status).toBe(204);
    await waitFor(async () => (await a.call('GET', '/sites', { token: vera.body.token.token })).status === 401, { timeoutMs: 5_000, what: 'the removed administrator refused on A' });
    const m = parseMetrics(await (await fetch(`${a.url}/metrics`)).text());
    expect(metricTotal(m, 'outpost_core_store_remote_changes_total')).toBeGreaterThan(0);
  });

  it('a one-use enrollment token enrolls once, whichever cores it is tried on at the same time', async () => {
    const { a, b } = await twoCores();
    for (let i = 0; i < 10; i++) {
      const token = await createToken(a, 'agent');
      // B learns of the token first, then both race for it.
      await waitFor(async () => JSON.stringify((await b.call('GET', '/tokens')).body).includes(token.split('.')[0]!), { timeoutMs: 5_000, what: 'the token on B' });
      const tries = await Promise.all([a, b, a, b].map((tc, k) => tc.call('POST', '/enroll', { token: null, body: { token, name: `race-${i}-${k}` } })));
      expect(tries.filter((r) => r.status === 201), JSON.stringify(tries.map((r) => [r.status, r.body?.error?.code]))).toHaveLength(1);
      for (const r of tries.filter((x) => x.status !== 201)) expect(['CORE_ENROLL_TOKEN_USED_UP', 'CORE_STORE_CONFLICT']).toContain(r.body.error.code);
    }
  });

  it('two cores creating the same site at once: one is created, the other refused; changes to one record are never lost', async () => {
    const { a, b } = await twoCores();
    for (let i = 0; i < 10; i++) {
      const [ra, rb] = await Promise.all([
        a.call('POST', '/sites', { body: { name: `s${i}`, subnets: [`10.${i}.0.0/16`] } }),
        b.call('POST', '/sites', { body: { name: `s${i}`, subnets: [`10.${100 + i}.0.0/16`] } }),
      ]);
      expect([ra.status, rb.status].filter((s) => s === 201), JSON.stringify([ra.body, rb.body])).toHaveLength(1);
    }
    // Interleaved edits of one site's description from both: the last acknowledged one is what both serve.
    let last = '';
    for (let i = 0; i < 20; i++) {
      const tc = i % 2 ? b : a;
      const r = await waitFor(async () => {
        const x = await tc.call('PATCH', '/sites/s0', { body: { description: `edit ${i}` } });
        return x.status === 200 && x;
      }, { timeoutMs: 5_000, what: `edit ${i}` });
      last = r.body.description;
    }
    expect(last).toBe('edit 19');
    for (const tc of [a, b]) await waitFor(async () => (await tc.call('GET', '/sites/s0')).body.description === 'edit 19', { timeoutMs: 5_000, what: 'the last edit on both' });
  });

  it('keeps one audit chain however many cores append to it at once', async () => {
    const { a, b, table } = await twoCores();
    const posts = [];
    for (let i = 0; i < 30; i++) posts.push((i % 2 ? a : b).call('POST', '/sites', { body: { name: `c${i}`, subnets: [`10.${i}.0.0/16`] } }));
    const results = await Promise.all(posts);
    expect(results.every((r) => r.status === 201 || r.status === 503), JSON.stringify(results.map((r) => r.status))).toBe(true);
    for (const tc of [a, b]) {
      const v = await waitFor(async () => {
        const r = await tc.call('GET', '/audit/verify');
        return r.status === 200 && r.body;
      }, { timeoutMs: 10_000, what: 'verify' });
      expect(v, JSON.stringify(v)).toMatchObject({ ok: true });
    }
    // Every site created is in the log once, whichever core wrote it, and both serve the same log.
    const created = results.filter((r) => r.status === 201).length;
    const ok = (body: { items: Array<{ outcome: { result: string } }> }) => body.items.filter((e) => e.outcome.result === 'ok').length;
    expect(ok((await a.call('GET', '/audit?action=sites.create&limit=100')).body)).toBe(created);
    await waitFor(async () => ok((await b.call('GET', '/audit?action=sites.create&limit=100')).body) === created, { timeoutMs: 5_000, what: "B's view of the log" });
    expect(Number(await psql(pg(), `SELECT count(*) FROM ${table} WHERE convert_from(key, 'UTF8') LIKE '!audit!%'`))).toBeGreaterThanOrEqual(created);
  });

  it("serves a browser's live console from whichever core it talks to: a change on the other core is in the feed", async () => {
    const { a, b } = await twoCores();
    const res = await fetch(`${b.url}/api/v1/console/events`, { headers: { authorization: `Bearer ${b.admin}`, accept: 'text/event-stream' } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    const sites = (): number[] => [...text.matchAll(/"sites":(\d+)/g)].map((m) => Number(m[1]));
    try {
      await waitFor(async () => {
        const { value } = await reader.read();
        text += Buffer.from(value ?? new Uint8Array()).toString('utf8');
        return sites().length > 0;
      }, { timeoutMs: 10_000, what: 'the first snapshot on B' });
      expect(sites()[0]).toBe(0);
      expect((await a.call('POST', '/sites', { body: { name: 'live', subnets: ['10.7.0.0/16'] } })).status).toBe(201);
      await waitFor(async () => {
        const { value } = await reader.read();
        text += Buffer.from(value ?? new Uint8Array()).toString('utf8');
        return sites().includes(1);
      }, { timeoutMs: 10_000, what: "A's new site in B's live feed" });
    } finally {
      await reader.cancel();
    }
  });

  it('a run with a `once` key started on both cores at once takes each agent once', async () => {
    const { a, b } = await twoCores();
    const token = await createToken(a, 'agent', { uses: 20 });
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await enrollAgent(a, `once-${i}`, {}, token)).id);
    expect((await a.call('POST', '/tasks', { body: { name: 'noop', kind: 'command', program: 'true' } })).status).toBe(201);
    expect((await a.call('POST', '/jobs', { body: { name: 'setup', steps: [{ task: 'noop' }] } })).status).toBe(201);
    await waitFor(async () => (await b.call('GET', '/jobs/setup')).status === 200 && (await b.call('GET', '/agents?limit=100')).body.items.length === 20, { timeoutMs: 5_000, what: 'the job and agents on B' });
    // Enough rounds that the two requests overlap (without the check, both runs take every agent within a few).
    for (let round = 0; round < 30; round++) {
      const key = `first-boot-${round}`;
      const [ra, rb] = await Promise.all([a, b].map((tc) => tc.call('POST', '/jobs/setup/runs', { body: { all: true, once: key } })));
      const codes = [ra, rb].map((r) => (r.status === 201 ? 'created' : r.body.error.code));
      expect(codes, JSON.stringify(codes)).toContain('created');
      for (const c of codes) expect(['created', 'CORE_STORE_CONFLICT', 'CORE_TASK_NO_TARGETS']).toContain(c);
      // Across every run of this key, each agent is a target exactly once.
      // Each run asked of the core that made it (the other core learns of it a moment later).
      const runs = ([[ra, a], [rb, b]] as const).filter(([r]) => r.status === 201).map(([r, tc]) => ({ id: r.body.id as string, tc }));
      const targets: string[] = [];
      for (const { id, tc } of runs) targets.push(...((await tc.call('GET', `/runs/${id}/agents?limit=100`)).body.items as Array<{ agent: string }>).map((x) => x.agent));
      expect(targets.sort()).toEqual([...ids].sort());
    }
  });
});
