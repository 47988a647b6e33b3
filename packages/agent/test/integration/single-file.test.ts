import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, stat, symlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { silentLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { createTaskServer, taskServerConfigSchema, type TaskServer } from '@outpost/task-server';
import { e2eGate, grantFor, removeDir, tempDir, waitFor } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The single-file agent (`npm run package:agent`), built once here, run as a child process
 * with no Node.js on its PATH against a real core and task server: it enrolls from the
 * config `outpost-agent enroll` wrote, and a job runs to success on it.
 */

const execFileP = promisify(execFile);
const ROOT = resolve(fileURLToPath(new URL('../../../../', import.meta.url)));
const gate = e2eGate('single-file agent', { other: process.platform === 'linux' && process.arch === 'x64' ? [] : ['linux x64'] });
const WAIT = 60_000;

let dir: string;
let exe: string;

interface AdminAnswer {
  status: number;
  body: Record<string, unknown>;
}

async function admin(core: Core, method: string, path: string, body?: unknown): Promise<AdminAnswer> {
  const res = await fetch(`${core.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${core.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function adminOk(core: Core, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const r = await admin(core, method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A PATH of symlinks to only `tools` (the job's shell), with no `node` on it. */
async function bareBin(tools: string[]): Promise<string> {
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  for (const t of tools) {
    const { stdout } = await execFileP('/bin/sh', ['-c', `command -v ${t}`]);
    await symlink(stdout.trim(), join(bin, t));
  }
  return bin;
}

describe.runIf(gate.run)('the single-file agent', () => {
  beforeAll(async () => {
    dir = await tempDir('outpost-sea-');
    const out = join(dir, 'dist-pkg');
    await execFileP(process.execPath, [join(ROOT, 'scripts/package/agent.mjs'), '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    exe = join(out, 'outpost-agent-linux-x64');
  }, 240_000);

  afterAll(async () => {
    if (dir) await removeDir(dir);
  });

  it('is one executable with its sha256 beside it', async () => {
    const s = await stat(exe);
    expect(s.mode & 0o111).not.toBe(0);
    const [hash, name] = (await readFile(`${exe}.sha256`, 'utf8')).trim().split(/\s+/);
    expect(name).toBe('outpost-agent-linux-x64');
    const { stdout } = await execFileP('sha256sum', [exe]);
    expect(stdout.split(' ')[0]).toBe(hash);
  });

  it('enrolls and runs a job to success with no Node.js on its PATH; --version tells the version and the core', async () => {
    const root = join(dir, 'machine');
    const core = createCore(
      validateConfig(coreConfigSchema, { dataDir: join(root, 'core'), http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 } }, { file: '<test>' }),
      { logger: silentLogger() },
    );
    let ts: TaskServer | undefined;
    let child: ChildProcess | undefined;
    await core.start();
    try {
      const ssToken = await core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ task: {} }) });
      ts = createTaskServer(
        validateConfig(
          taskServerConfigSchema,
          {
            coreUrl: core.url,
            dataDir: join(root, 'ts'),
            name: 'ts-sea',
            enrollToken: ssToken.token,
            http: { host: '127.0.0.1', port: 0 },
            coreTickle: { host: '127.0.0.1', port: 0 },
            // A run may be dispatched before the agent (a child process, slow on a busy machine)
            // listens for tickles: it polls every 2 s so the run still reaches it.
            agents: { tickleDropRate: 0, pollInterval: '2s', retickleAfter: '1s', retickles: 10 },
            forward: { retryBase: '100ms', retryCap: '500ms' },
          },
          { file: '<test>' },
        ),
        { logger: silentLogger() },
      );
      await ts.start();
      const { token } = await core.createEnrollmentToken({ for: 'agent', uses: 1 });
      await adminOk(core, 'POST', '/tasks', { name: 'hello', kind: 'command', program: 'sh', args: ['-c', 'echo hello from the single file'] });
      await adminOk(core, 'POST', '/jobs', { name: 'greet', steps: [{ task: 'hello' }] });

      const bin = await bareBin(['sh']);
      const env = {
        PATH: bin,
        // OUTPOST_AGENT__<KEY> overrides on top of the written config (loopback test ports and quick polls).
        OUTPOST_AGENT__HEARTBEAT__VIA: 'http',
        OUTPOST_AGENT__HEARTBEAT__INTERVAL: '1s',
        OUTPOST_AGENT__CONFIG_POLL_INTERVAL: '1s',
        OUTPOST_AGENT__RETRY__BASE: '100ms',
        OUTPOST_AGENT__RETRY__CAP: '1s',
        OUTPOST_AGENT__TASKS__TICKLE_HOST: '127.0.0.1',
        OUTPOST_AGENT__TASKS__TICKLE_PORT: '0',
        OUTPOST_AGENT__MACHINE_ID_FILE: join(root, 'machine-id'),
      };
      await expect(execFileP('/bin/sh', ['-c', 'command -v sh'], { env })).resolves.toMatchObject({ stdout: `${bin}/sh\n` });
      await expect(execFileP('/bin/sh', ['-c', 'command -v node'], { env })).rejects.toThrow();

      const config = join(root, 'etc/agent.yaml');
      const enrolled = await execFileP(exe, ['enroll', '--core', core.url, '--token', token, '--config', config, '--data-dir', join(root, 'var'), '--name', 'sea-pc'], { env });
      expect(enrolled.stdout).toContain(`wrote ${config} (mode 0600)`);
      expect((await stat(config)).mode & 0o777).toBe(0o600);

      const version = await execFileP(exe, ['--version', '--config', config], { env });
      expect(version.stdout).toMatch(/^outpost-agent 0\.1\.0 \(node v\d+\.\d+\.\d+\)\ncore: (\S+) \(config /);
      expect(version.stdout).toContain(`core: ${core.url} (config ${config})`);
      const unset = await execFileP(exe, ['--version', '--config', join(root, 'none.yaml')], { env });
      expect(unset.stdout).toContain('core: not configured');

      let logs = '';
      child = spawn(exe, ['run', '--config', config], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout?.on('data', (c: Buffer) => (logs += c.toString()));
      child.stderr?.on('data', (c: Buffer) => (logs += c.toString()));
      const agent = await waitFor(
        async () => {
          const items = (await adminOk(core, 'GET', '/agents')).items as Array<{ id: string; name: string }>;
          return items.find((a) => a.name === 'sea-pc');
        },
        { timeoutMs: WAIT, what: `the single-file agent enrolled (logs: ${logs.slice(-2000)})` },
      );
      const run = await adminOk(core, 'POST', '/jobs/greet/runs', { agents: [agent.id] });
      const show = await waitFor(
        async () => {
          const r = await adminOk(core, 'GET', `/runs/${String(run.id)}`);
          return r.state !== 'active' && r;
        },
        { timeoutMs: WAIT, what: 'the run finished' },
      ).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}; the agent's last log lines:\n${logs.slice(-4000)}`, { cause: err });
      });
      expect(show.counts).toMatchObject({ succeeded: 1 });
      const detail = await adminOk(core, 'GET', `/runs/${String(run.id)}/agents/${agent.id}`);
      expect((detail.steps as Array<{ state: string; output?: string }>)[0]).toMatchObject({ state: 'succeeded', output: 'hello from the single file\n' });
    } finally {
      if (child && child.exitCode === null) {
        const exited = new Promise((r) => child?.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await ts?.stop();
      await core.stop();
    }
  }, 180_000);
});
