// The hierarchy's "done when", with real processes: a parent (configs/hierarchy-parent.yaml)
// and a child (configs/hierarchy-child.yaml: core, task server, package server, agent), each
// `outpost start`ed on a temp copy (every port 0, data under the temp dir). The child joins
// with `outpost hierarchy join`; a job defined and run on the parent runs on the child's
// agent and its result shows on the parent (`run show hr_...`); a package enabled on the
// parent is ready on the child's package server; `hierarchy status` shows the link.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readConfigFile } from '@outpost/common';
import { e2eGate, loopbackConfig, removeDir, tempDir, waitFor } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startOutpost, type Running } from '../helpers.js';

const gate = e2eGate('hierarchy done-when');
const CONFIGS = fileURLToPath(new URL('../../../configs/', import.meta.url));
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const PAYLOAD = randomBytes(3 * 1024 * 1024 + 11);

describe.runIf(gate.run)('a parent and a child core from configs/', () => {
  let dir: string;
  const procs: Running[] = [];
  const env: Record<'parent' | 'child', Record<string, string>> = { parent: {}, child: {} };
  const cli = (who: 'parent' | 'child', ...args: string[]) => runCli(args, { cwd: join(dir, who), env: env[who], timeoutMs: 30_000 });

  async function start(who: 'parent' | 'child', file: string, localCore: string): Promise<void> {
    const raw = await readConfigFile(join(CONFIGS, file));
    const config = loopbackConfig({ ...raw, log: { level: 'warn' } }, localCore);
    await mkdir(join(dir, who, 'configs'), { recursive: true });
    await writeFile(join(dir, who, 'configs', 'test.json'), JSON.stringify(config, null, 2));
    const p = startOutpost(['--config', 'configs/test.json'], { cwd: join(dir, who) });
    procs.push(p);
    const url = await p.banner(45_000);
    const coreDir = (raw.core as { dataDir: string }).dataDir;
    env[who] = { OUTPOST_URL: url, OUTPOST_TOKEN: (await readFile(join(dir, who, coreDir, 'admin-token'), 'utf8')).trim() };
  }

  beforeAll(async () => {
    dir = await tempDir('outpost-hierarchy-done-');
    await start('parent', 'hierarchy-parent.yaml', 'http://127.0.0.1:8280');
    await start('child', 'hierarchy-child.yaml', 'http://127.0.0.1:8380');
    await mkdir(join(dir, 'payload'));
    await writeFile(join(dir, 'payload', 'tool.bin'), PAYLOAD);
  }, 120_000);

  afterAll(async () => {
    const codes = [];
    for (const p of procs.reverse()) codes.push((await p.stop('SIGINT', 20_000))?.code);
    await removeDir(dir);
    expect(codes).toEqual(procs.map(() => 0));
  }, 60_000);

  it('joins; a job run on the parent runs on the child agent with its result on the parent; a package reaches the child package server; status shows the link', async () => {
    const tok = await cli('parent', 'hierarchy', 'token', 'create', '--json');
    expect(tok.code, tok.stderr).toBe(0);
    const { token, joinCommand } = JSON.parse(tok.stdout) as { token: string; joinCommand: string };
    const url = /join (\S+) --token/.exec(joinCommand)![1]!;
    const joined = await cli('child', 'hierarchy', 'join', url, '--token', token);
    expect(joined.code, joined.stderr).toBe(0);
    expect(joined.stdout).toMatch(/^joined hq \(core_/);

    const childId = JSON.parse((await cli('child', 'hierarchy', 'status', '--json')).stdout).core.id as string;
    // The child's agent comes up to the parent.
    await waitFor(async () => JSON.parse((await cli('parent', 'hierarchy', 'agents', '--json')).stdout).items.length === 1, { timeoutMs: 30_000, what: "the child's agent on the parent" });

    expect((await cli('parent', 'task', 'add', 'hello', '--', 'sh', '-c', 'echo hello from the child; exit 3')).code).toBe(0);
    expect((await cli('parent', 'job', 'add', 'greet', '--step', 'hello:codes=3')).code).toBe(0);
    await waitFor(async () => (await cli('child', 'jobs', '--json')).stdout.includes('"greet"'), { timeoutMs: 10_000, what: 'the job on the child' });
    const run = await cli('parent', 'job', 'run', 'greet', '--all');
    expect(run.code, run.stderr).toBe(0);
    const id = run.stdout.trim();
    expect(id).toMatch(/^hr_/);
    const shown = await waitFor(
      async () => {
        const v = JSON.parse((await cli('parent', 'run', 'show', id, '--json')).stdout) as { agents: Array<{ core: string; state: string; exit?: number }> };
        return v.agents.length === 1 && v.agents[0]!.state === 'succeeded' && v;
      },
      { timeoutMs: 30_000, what: 'the result on the parent' },
    );
    expect(shown.agents[0]).toMatchObject({ core: childId, state: 'succeeded', exit: 3 });
    const table = await cli('parent', 'run', 'show', id);
    expect(table.stdout).toContain(childId);
    expect(table.stdout).toMatch(/succeeded\s+3/);

    // A package enabled on the parent is ready on the child's package server, same bytes.
    expect((await cli('parent', 'package', 'add', join(dir, 'payload'), '--name', 'tool')).code).toBe(0);
    expect((await cli('parent', 'package', 'enable', 'tool')).code).toBe(0);
    type Show = { servers: Array<{ name: string; state: string; codebase?: string }> };
    const ready = await waitFor(
      async () => {
        const r = await cli('child', 'package', 'show', 'tool', '--json');
        if (r.code !== 0) return false;
        const v = JSON.parse(r.stdout) as Show;
        return v.servers.length > 0 && v.servers.every((s) => s.state === 'ready' && s.codebase) && v;
      },
      { timeoutMs: 45_000, what: "the package ready on the child's package server" },
    );
    expect(ready.servers.map((s) => s.name)).toEqual(['branch-packages']);
    const res = await fetch(`${ready.servers[0]!.codebase!}/tool.bin`);
    expect(sha(Buffer.from(await res.arrayBuffer()))).toBe(sha(PAYLOAD));
    // Read-only on the child.
    const rm = await cli('child', 'package', 'rm', 'tool');
    expect(rm.code).toBe(1);
    expect(rm.stderr).toContain('CORE_HIERARCHY_READ_ONLY');

    const status = await cli('parent', 'hierarchy', 'status');
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`child\\s+branch\\s+${childId}\\s+ok`));
    const mine = await cli('child', 'hierarchy', 'status');
    expect(mine.stdout).toMatch(/parent\s+hq\s+core_\S+\s+ok/);
  }, 180_000);
});
