import { EventEmitter } from 'node:events';
import { main, type CliIo } from '@outpost/appliance';
import { openDatabase, silentLogger, sublevel, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { removeDir, tempDir } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';

const dirs: string[] = [];
const cores: Core[] = [];
afterEach(async () => {
  for (const c of cores.splice(0)) await c.stop();
  for (const d of dirs.splice(0)) await removeDir(d);
});

async function startCore(dir?: string): Promise<{ core: Core; dir: string }> {
  const d = dir ?? (await tempDir('outpost-cli-audit-'));
  if (!dir) dirs.push(d);
  const core = createCore(validateConfig(coreConfigSchema, { dataDir: d, http: { port: 0 }, datagram: { host: '127.0.0.1', port: 0 } }, { file: 'test' }), { logger: silentLogger() });
  await core.start();
  cores.push(core);
  return { core, dir: d };
}

async function cli(core: Core, token: string, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (l) => void out.push(l), err: (l) => void err.push(l), env: { OUTPOST_URL: core.url, OUTPOST_TOKEN: token }, cwd: process.cwd(), signals: new EventEmitter() };
  const code = await main(argv, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('outpost audit', () => {
  it("lists the owner's change and a viewer's refused attempt, filters them, and verifies the chain", async () => {
    const { core } = await startCore();
    const owner = core.adminToken;
    const added = await fetch(`${core.url}/api/v1/admins`, {
      method: 'POST',
      headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'alice', roles: ['viewer'] }),
    });
    const alice = ((await added.json()) as { token: { token: string } }).token.token;
    expect(await cli(core, alice, 'site', 'add', 'x', '--subnet', '10.9.0.0/16')).toMatchObject({ code: 1, err: expect.stringContaining('CORE_FORBIDDEN') });
    expect((await cli(core, alice, 'site', 'list')).code).toBe(0);

    const json = await cli(core, owner, 'audit', '--json');
    expect(json.code).toBe(0);
    const items = (JSON.parse(json.out) as { items: Array<{ action: string; actor: { admin?: string }; outcome: { status: number; result: string } }> }).items;
    expect(items.map((e) => [e.action, e.actor.admin, e.outcome.status])).toEqual([
      ['sites.create', 'alice', 403],
      ['admins.create', 'admin', 201],
    ]);

    const table = await cli(core, owner, 'audit');
    expect(table.out.split('\n')[0]).toMatch(/^SEQ\s+TIME\s+WHO\s+ACTION\s+OBJECT\s+RESULT\s+FROM$/);
    expect(table.out).toMatch(/2\s+\S+ \S+\s+alice \(token\)\s+sites\.create\s+-\s+refused 403 CORE_FORBIDDEN\s+127\.0\.0\.1/);
    expect((await cli(core, owner, 'audit', '--admin', 'alice', '--result', 'refused', '--json')).out).toContain('"alice"');
    expect((await cli(core, owner, 'audit', '--action', 'nothing.')).out).toBe('no audit entries match');
    const paged = await cli(core, owner, 'audit', '--limit', '1', '--since', '1h');
    expect(paged.out).toContain('more: outpost audit --before 2 --limit 1');
    expect((await cli(core, owner, 'audit', '--result', 'maybe')).code).toBe(2);
    // Reading the log needs audit.read; the refusal itself is recorded (entry 3).
    expect(await cli(core, alice, 'audit')).toMatchObject({ code: 1, err: expect.stringContaining('audit.read') });

    expect(await cli(core, owner, 'audit', 'verify')).toMatchObject({ code: 0, out: 'audit log verified: 3 entries (seq 1..3)' });
    const v = await cli(core, owner, 'audit', 'verify', '--json');
    expect(JSON.parse(v.out)).toEqual({ ok: true, entries: 3, first: 1, last: 3 });
  });

  it('names the first broken entry and exits 1 after the database was tampered with', async () => {
    const { core, dir } = await startCore();
    for (const name of ['a', 'b', 'c', 'd']) {
      expect((await cli(core, core.adminToken, 'site', 'add', name, '--subnet', `10.${name.charCodeAt(0)}.0.0/16`)).code).toBe(0);
    }
    await core.stop();
    cores.splice(0);
    const db = await openDatabase(dir);
    const entries = sublevel<Record<string, unknown>>(db, 'audit');
    const key = String(3).padStart(16, '0');
    await entries.put(key, { ...(await entries.get(key))!, object: 'sites/nothing-to-see' });
    await db.close();

    const { core: again } = await startCore(dir);
    const r = await cli(again, again.adminToken, 'audit', 'verify');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^audit log BROKEN at entry 3: hash mismatch/);
    const j = await cli(again, again.adminToken, 'audit', 'verify', '--json');
    expect(j.code).toBe(1);
    expect(JSON.parse(j.out)).toMatchObject({ ok: false, entries: 2, broken: { seq: 3 } });
  });
});
