import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCapped } from '@outpost/common';
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
 * Runs one step with `runCapped` (@outpost/common): a child process of its own process
 * group, so that at its timeout (or on cancel) the whole tree is killed; stdout and
 * stderr captured together up to `outputCap` bytes, `truncated` when cut.
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
  return runCapped(file, args, { cwd: task.cwd, env: task.env, timeoutMs: task.timeoutMs, outputCap: o.outputCap, signal, drainMs: o.drainMs });
}
