import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, inspectDb, newDataDir, startCore } from './harness.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/core-child.mjs', import.meta.url));
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await cleanup();
});

async function spawnCore(dir: string): Promise<{ child: ChildProcess; url: string; adminToken: string }> {
  const child = spawn(process.execPath, [FIXTURE, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await Promise.race([once(lines, 'line'), once(child, 'exit').then(() => [undefined])])) as [string | undefined];
  if (!line) throw new Error('the core child exited before it served');
  return { child, ...(JSON.parse(line) as { url: string; adminToken: string }) };
}

type Outcome = { kind: 'enroll'; id: string; credential: string } | { kind: 'other' };

describe('kill -9 during a burst of writes', () => {
  it('leaves records and indexes in agreement, keeps every acknowledged enrollment, and the next core serves them', async () => {
    const dir = await newDataDir();
    const { child, url, adminToken } = await spawnCore(dir);
    const call = async (method: string, path: string, body: unknown, token: string | null = adminToken) => {
      const res = await fetch(`${url}/api/v1${path}`, {
        method,
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json().catch(() => undefined)) as any };
    };
    const USES = 2_000;
    const token = (await call('POST', '/tokens', { for: 'agent', uses: USES })).body.token as string;
    for (let i = 0; i < 8; i++) expect((await call('POST', '/sites', { name: `site-${i}`, subnets: [`10.${i}.0.0/16`] })).status).toBe(201);

    const hex = (n: number) => (n & 0xff).toString(16).padStart(2, '0');
    const mac = (n: number) => `52:54:00:${hex(n >> 16)}:${hex(n >> 8)}:${hex(n)}`;
    // A mix of writes: enrollments with MACs (some shared), site creations, and subnet
    // moves between sites that race one another.
    const op = async (i: number): Promise<Outcome> => {
      switch (i % 4) {
        case 0:
        case 1: {
          const r = await call('POST', '/enroll', { token, name: `pc-${i}`, macs: [mac(i), mac(i + 1), mac(7)], ips: [`10.${i % 8}.1.${i % 250}/16`] }, null);
          return r.status === 201 ? { kind: 'enroll', id: r.body.id, credential: r.body.credential } : { kind: 'other' };
        }
        case 2:
          await call('POST', '/sites', { name: `new-${i}`, subnets: [`172.${16 + (i % 16)}.${i % 256}.0/24`, `fd00:${i.toString(16)}::/48`] });
          return { kind: 'other' };
        default:
          await call('PATCH', `/sites/site-${i % 8}`, { subnets: [`10.${i % 8}.0.0/16`, `10.${100 + (i % 50)}.0.0/16`] });
          return { kind: 'other' };
      }
    };

    const KILL_AFTER = 250;
    const CONCURRENCY = 24;
    const acknowledged: Outcome[] = [];
    let next = 0;
    let responses = 0;
    let killed = false;
    const worker = async () => {
      while (!killed && next < 2_000) {
        const i = next++;
        try {
          const o = await op(i);
          if (killed) return; // arrived after the kill was sent: not counted either way
          acknowledged.push(o);
          if (++responses === KILL_AFTER) {
            killed = true;
            child.kill('SIGKILL');
          }
        } catch {
          return; // the connection died with the process
        }
      }
    };
    const exited = once(child, 'exit');
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const [, signal] = await exited;
    expect(signal).toBe('SIGKILL');

    const enrolledOk = acknowledged.filter((o): o is Extract<Outcome, { kind: 'enroll' }> => o.kind === 'enroll');
    expect(enrolledOk.length).toBeGreaterThan(50);

    const { agents, sites, tokens, problems } = await inspectDb(dir);
    expect(problems).toEqual([]);
    for (const e of enrolledOk) expect(agents.has(e.id), `acknowledged enrollment ${e.id} lost`).toBe(true);
    // The token's use count was written with each agent: they agree exactly.
    const t = tokens.find((x) => token.startsWith(`${x.id}.`))!;
    expect(t.uses - t.usesLeft).toBe(agents.size);
    expect(sites.size).toBeGreaterThanOrEqual(8);

    // A new core on the same data dir serves them, and their credentials work.
    const tc = await startCore({ dir });
    const list = await tc.call('GET', '/agents?limit=1000');
    expect(list.body.items).toHaveLength(agents.size);
    for (const e of enrolledOk.slice(0, 20)) expect((await tc.call('GET', `/agents/${e.id}`, { token: e.credential })).status).toBe(200);
    const more = await tc.call('POST', '/enroll', { token: null, body: { token, name: 'after-crash', macs: [mac(7)] } });
    expect(more.status).toBe(201);
  });
});
