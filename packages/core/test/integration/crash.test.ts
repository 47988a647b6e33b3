import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, sublevel } from '@outpost/common';
import { cleanup, newDataDir, startCore } from './harness.js';

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

interface AgentRec {
  id: string;
  macs: string[];
}
interface SiteRec {
  name: string;
  subnets: string[];
}
interface TokenRec {
  id: string;
  uses: number;
  usesLeft: number;
}

/** Reads the db as store.ts lays it out and lists every disagreement of records and indexes. */
async function inspect(dir: string) {
  const db = await openDatabase(dir);
  try {
    const all = async <V>(name: string) => (await sublevel<V>(db, name).iterator().all()) as [string, V][];
    const agents = new Map((await all<AgentRec>('agents')).map(([k, v]) => [k, v]));
    const macIndex = await all<string>('agent-macs');
    const sites = new Map((await all<SiteRec>('sites')).map(([k, v]) => [k, v]));
    const subnetIndex = new Map(await all<string>('subnets'));
    const tokens = (await all<TokenRec>('tokens')).map(([, v]) => v);
    const problems: string[] = [];
    const macKeys = new Set(macIndex.map(([k]) => k));
    for (const [id, a] of agents) {
      if (a.id !== id) problems.push(`agent key ${id} holds ${a.id}`);
      for (const m of a.macs) if (!macKeys.has(`${m}!${id}`)) problems.push(`agent ${id}: MAC ${m} has no index entry`);
    }
    for (const [k, v] of macIndex) {
      const [mac, id] = k.split('!') as [string, string];
      const a = agents.get(id);
      if (v !== id) problems.push(`index ${k} → ${v}`);
      if (!a) problems.push(`index ${k} points to a missing agent`);
      else if (!a.macs.includes(mac)) problems.push(`index ${k}: agent does not have that MAC`);
    }
    const owner = new Map<string, string>();
    for (const [name, s] of sites) {
      for (const n of s.subnets) {
        if (subnetIndex.get(n) !== name) problems.push(`site ${name}: subnet ${n} indexed to ${subnetIndex.get(n)}`);
        if (owner.has(n)) problems.push(`subnet ${n} in two sites: ${owner.get(n)} and ${name}`);
        owner.set(n, name);
      }
    }
    for (const [n, name] of subnetIndex) {
      const s = sites.get(name);
      if (!s) problems.push(`subnet ${n} points to a missing site ${name}`);
      else if (!s.subnets.includes(n)) problems.push(`subnet ${n} → ${name}, which does not list it`);
    }
    return { agents, sites, tokens, problems };
  } finally {
    await db.close();
  }
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

    const { agents, sites, tokens, problems } = await inspect(dir);
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
