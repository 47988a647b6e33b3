import { EventEmitter } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { main, type CliIo } from '@outpost/appliance';
import { silentLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { removeDir, tempDir } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let core: Core;
let dir: string;
beforeAll(async () => {
  dir = await tempDir('outpost-cli-tasks-');
  core = createCore(validateConfig(coreConfigSchema, { dataDir: dir, http: { port: 0 }, datagram: { host: '127.0.0.1', port: 0 } }, { file: 'test' }), { logger: silentLogger() });
  await core.start();
});
afterAll(async () => {
  await core.stop();
  await removeDir(dir);
});

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (l) => void out.push(l), err: (l) => void err.push(l), env: { OUTPOST_URL: core.url, OUTPOST_TOKEN: core.adminToken }, cwd: dir, signals: new EventEmitter() };
  const code = await main(argv, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('outpost task/job/run commands', () => {
  it('defines tasks and jobs, runs a job, shows and cancels the run', async () => {
    const t = await tempDir('outpost-cli-agent-');
    const enroll = await core.createEnrollmentToken({ for: 'agent' });
    const res = await fetch(`${core.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: enroll.token, name: 'pc-1' }) });
    const agent = (await res.json()) as { id: string };
    const script = join(t, 'install.sh');
    await writeFile(script, 'echo installing\n');

    expect(await cli('task', 'add', 'check', '--timeout', '30s', '--', 'test', '-d', '/')).toMatchObject({ code: 0, out: 'task check added' });
    expect((await cli('task', 'add', 'install', '--script', script)).code).toBe(0);
    expect((await cli('task', 'add', 'oops')).code).toBe(2);
    expect((await cli('job', 'add', 'deploy', '--step', 'check', '--step', 'install:retry=2:codes=0,3010')).out).toBe('job deploy added (2 steps)');
    expect((await cli('job', 'add', 'bad', '--step', 'check:sometimes')).code).toBe(2);
    expect((await cli('tasks')).out).toMatch(/check\s+command\s+test -d \/\s+30s/);
    expect((await cli('jobs')).out).toMatch(/deploy\s+check → install:retry=2/);

    const run = await cli('job', 'run', 'deploy', '--agents', agent.id, '--json');
    const id = (JSON.parse(run.out) as { id: string }).id;
    expect(id).toMatch(/^run_/);
    const show = await cli('run', 'show', id);
    expect(show.out).toContain(`run ${id}  job deploy  active  1 agent`);
    expect(show.out).toContain('states: queued 1');
    expect(show.out).toMatch(/not reached: (no-task-server|waiting-for-poll|agent-offline) 1/);
    expect((await cli('run', 'cancel', id)).out).toBe(`run ${id} cancelled`);
    expect((await cli('run', 'show', id)).out).toContain('cancelled');
    expect(await cli('run', 'show', 'run_nope')).toMatchObject({ code: 1, err: expect.stringContaining('CORE_TASK_RUN_NOT_FOUND') });
    await removeDir(t);
  });
});
