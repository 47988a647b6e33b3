import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TaskSpec } from './types.js';

export interface StepOutcome {
  exitCode?: number | undefined;
  /** `timeout` (killed at its timeout), `spawn` (could not start), `refused` (built-in not allowed), `cancelled`. */
  error?: 'timeout' | 'spawn' | 'refused' | 'cancelled' | undefined;
  signal?: string | undefined;
  output: string;
  truncated: boolean;
}

export interface RunnerOptions {
  outputCap: number;
  allowBuiltins: readonly string[];
  shell: string;
  /** Where script files are written while they run. */
  scratchDir: string;
  /** How long to wait for the pipes after the process exited (a child holding them). @default 1000 */
  drainMs?: number;
}

const BUILTINS: Record<'reboot' | 'shutdown', [string, string[]]> = {
  reboot: ['shutdown', ['-r', '+1']],
  shutdown: ['shutdown', ['-h', '+1']],
};

/**
 * Runs one step in a child process of its own process group (`detached`), so that at
 * its timeout (or on cancel) the whole tree is killed with `process.kill(-pid)`.
 * stdout and stderr are captured together up to `outputCap` bytes; beyond, the rest is
 * read and dropped (the child never blocks on a full pipe) and `truncated` is set.
 */
export async function runStep(task: TaskSpec, o: RunnerOptions, signal?: AbortSignal, tag = 'step'): Promise<StepOutcome> {
  let file: string;
  let args: string[];
  let scriptPath: string | undefined;
  if (task.kind === 'builtin') {
    if (!task.builtin || !o.allowBuiltins.includes(task.builtin)) return { error: 'refused', output: `built-in '${task.builtin}' is not allowed on this computer\n`, truncated: false };
    [file, args] = BUILTINS[task.builtin];
  } else if (task.kind === 'script') {
    await mkdir(o.scratchDir, { recursive: true, mode: 0o700 });
    scriptPath = join(o.scratchDir, `${tag.replace(/[^\w.-]/g, '_')}-${process.pid}-${Date.now()}`);
    await writeFile(scriptPath, task.script ?? '', { mode: 0o700 });
    file = task.interpreter ?? o.shell;
    args = [scriptPath];
  } else {
    file = task.program ?? '';
    args = task.args ?? [];
  }
  try {
    return await spawnCapped(file, args, task, o, signal);
  } finally {
    if (scriptPath) await rm(scriptPath, { force: true }).catch(() => undefined);
  }
}

function spawnCapped(file: string, args: string[], task: TaskSpec, o: RunnerOptions, signal?: AbortSignal): Promise<StepOutcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    let truncated = false;
    let why: StepOutcome['error'];
    let settled = false;
    const child = spawn(file, args, {
      cwd: task.cwd,
      env: task.env ? { ...process.env, ...task.env } : process.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const take = (b: Buffer): void => {
      if (kept >= o.outputCap) {
        truncated = true;
        return;
      }
      const room = o.outputCap - kept;
      if (b.length > room) {
        truncated = true;
        b = b.subarray(0, room);
      }
      chunks.push(b);
      kept += b.length;
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const killTree = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(() => {
      why = 'timeout';
      killTree();
    }, task.timeoutMs);
    const onAbort = (): void => {
      why ??= 'cancelled';
      killTree();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (r: Omit<StepOutcome, 'output' | 'truncated'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve({ ...r, output: Buffer.concat(chunks).toString('utf8'), truncated });
    };
    child.on('error', (err) => {
      chunks.push(Buffer.from(`${err.message}\n`));
      finish({ error: 'spawn' });
    });
    child.on('exit', (code, sig) => {
      // A process left behind may hold the pipes open: wait a little, then stop reading.
      const drain = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(why ? { error: why, signal: sig ?? undefined } : { exitCode: code ?? undefined, signal: sig ?? undefined });
      }, o.drainMs ?? 1_000);
      child.on('close', () => {
        clearTimeout(drain);
        finish(why ? { error: why, signal: sig ?? undefined } : { exitCode: code ?? undefined, signal: sig ?? undefined });
      });
    });
  });
}
