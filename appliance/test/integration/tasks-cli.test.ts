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

  it('edits, clones and removes tasks and jobs', async () => {
    expect(await cli('task', 'add', 'greet', '--timeout', '5s', '--', 'echo', 'hello')).toMatchObject({ code: 0 });
    expect(await cli('task', 'clone', 'greet', 'greet2')).toMatchObject({ code: 0, out: 'task greet2 cloned from greet' });
    expect(await cli('task', 'edit', 'greet2', '--timeout', '1m', '--', 'echo', 'bye')).toMatchObject({ code: 0, out: 'task greet2 changed' });
    const edited = JSON.parse((await cli('task', 'edit', 'greet2', '--description', 'says bye', '--json')).out) as Record<string, unknown>;
    expect(edited).toMatchObject({ name: 'greet2', kind: 'command', program: 'echo', args: ['bye'], timeoutMs: 60_000, description: 'says bye' });
    // A server task: the core runs it; --agent moves it back to the agents.
    expect(JSON.parse((await cli('task', 'edit', 'greet2', '--server', '--json')).out)).toMatchObject({ kind: 'server', program: 'echo' });
    expect(JSON.parse((await cli('task', 'edit', 'greet2', '--agent', '--json')).out)).toMatchObject({ kind: 'command', program: 'echo' });
    expect((await cli('task', 'edit', 'nope', '--timeout', '1s')).err).toContain('CORE_TASK_NOT_FOUND');
    expect((await cli('task', 'clone', 'greet')).code).toBe(2);

    expect((await cli('job', 'add', 'hello-job', '--step', 'greet')).code).toBe(0);
    expect(await cli('job', 'clone', 'hello-job', 'hello-job2')).toMatchObject({ code: 0, out: 'job hello-job2 cloned from hello-job' });
    expect(await cli('job', 'edit', 'hello-job2', '--step', 'greet:continue', '--step', 'greet2:retry=1')).toMatchObject({ code: 0, out: 'job hello-job2 changed (2 steps)' });
    const job = JSON.parse((await cli('job', 'edit', 'hello-job2', '--description', 'twice', '--json')).out) as { steps: unknown[]; description: string };
    expect(job.description).toBe('twice');
    expect(job.steps).toEqual([
      { task: 'greet', onFailure: 'continue', retries: 0, successCodes: [0] },
      { task: 'greet2', onFailure: 'retry', retries: 1, successCodes: [0] },
    ]);
    expect((await cli('job', 'edit', 'hello-job2')).code).toBe(2);
    // A job runs on the agents or on the core, not both.
    expect((await cli('task', 'edit', 'greet2', '--server')).err).toContain('CORE_TASK_MIXED_JOB');
    expect((await cli('task', 'add', 'notify', '--server', '--', 'true')).code).toBe(0);
    expect((await cli('job', 'add', 'mixed', '--step', 'greet', '--step', 'notify')).err).toContain('CORE_TASK_MIXED_JOB');
    expect((await cli('tasks')).out).toMatch(/notify\s+server\s+true/);

    expect((await cli('task', 'rm', 'greet')).err).toContain('CORE_TASK_IN_USE');
    expect(await cli('job', 'rm', 'hello-job2')).toMatchObject({ code: 0, out: 'job hello-job2 removed' });
    expect(await cli('job', 'rm', 'hello-job')).toMatchObject({ code: 0 });
    expect(await cli('task', 'rm', 'greet')).toMatchObject({ code: 0, out: 'task greet removed' });
    expect((await cli('job', 'rm', 'hello-job')).err).toContain('CORE_TASK_JOB_NOT_FOUND');
    expect((await cli('tasks', '--json')).out).not.toContain('"greet"');
  });
});
