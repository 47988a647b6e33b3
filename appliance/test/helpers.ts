import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@outpost/testing';

/** The built CLI: tests run what ships (`tsc --build` runs first). */
export const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

/** The environment without OUTPOST_* settings of the shell that runs the tests. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OUTPOST_') || k === 'OUTPOST_E2E') env[k] = v;
  return { ...env, ...extra };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `outpost ARGS` to completion (killed after `timeoutMs`). */
export function runCli(args: string[], options: { cwd: string; env?: Record<string, string>; timeoutMs?: number }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: cleanEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 15_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** An `outpost start` child process. */
export interface Running {
  child: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves with the exit code once it exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits for the banner; returns the core URL it prints. */
  banner(timeoutMs?: number): Promise<string>;
  /** Sends `signal` and waits (bounded) for the exit. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

/** `outpost start ARGS` as a child process. */
export function startOutpost(args: string[], options: { cwd: string; env?: Record<string, string> }): Running {
  return spawnOutpost(['start', ...args], options);
}

/** A long-running `outpost ARGS` child process. */
export function spawnOutpost(args: string[], options: { cwd: string; env?: Record<string, string> }): Running {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: cleanEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      done = true;
      resolve({ code, signal });
    }),
  );
  const running: Running = {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    exited,
    async banner(timeoutMs = 15_000) {
      return waitFor(
        () => {
          if (done) throw new Error(`outpost start exited before its banner:\n${stderr}\n${stdout}`);
          // The banner is written line by line and may arrive in several chunks: wait for its last line.
          return /Stop with Ctrl-C/.test(stdout) && /^\s+core\s+(http:\/\/\S+)/m.exec(stdout)?.[1];
        },
        { timeoutMs, what: 'the outpost start banner' },
      );
    },
    async stop(signal = 'SIGTERM', timeoutMs = 10_000) {
      const t0 = Date.now();
      if (!done) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const r = await exited;
      clearTimeout(timer);
      return { ...r, ms: Date.now() - t0 };
    },
  };
  return running;
}

export { freePort } from '@outpost/testing';
