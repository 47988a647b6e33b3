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
  /**
   * Sets this computer's one-shot network boot into `image` (the core's boot module,
   * `POST /boot/automation` for itself): the first half of the `reboot-to-automation`
   * built-in. Without it that built-in is refused.
   */
  bootOnce?: (image: string, job: string | undefined) => Promise<void>;
  /** The programs behind the built-ins (tests). @default shutdown -r +1 / shutdown -h +1 */
  builtins?: Partial<Record<'reboot' | 'shutdown', [string, string[]]>>;
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
  if (task.kind === 'builtin' && task.builtin === 'reboot-to-automation') {
    // Allowed where reboots are; the boot is set first, so the reboot lands in the image.
    if (!o.allowBuiltins.includes('reboot') || !o.bootOnce) return { error: 'refused', output: `built-in 'reboot-to-automation' is not allowed on this computer (it needs 'reboot' in tasks.allowBuiltins)\n`, truncated: false };
    const [image, job] = task.args ?? [];
    if (!image) return { exitCode: 2, output: 'reboot-to-automation: no boot image given (args: [image, job?])\n', truncated: false };
    try {
      await o.bootOnce(image, job);
    } catch (err) {
      return { exitCode: 1, output: `reboot-to-automation: the core did not set the boot into '${image}': ${(err as Error).message}\n`, truncated: false };
    }
    const out = await spawnCapped(...(o.builtins?.reboot ?? BUILTINS.reboot), task, o, signal);
    return { ...out, output: `one-shot network boot into '${image}'${job ? ` (job ${job})` : ''} set\n${out.output}` };
  }
  if (task.kind === 'builtin') {
    if (!task.builtin || task.builtin === 'reboot-to-automation' || !o.allowBuiltins.includes(task.builtin)) return { error: 'refused', output: `built-in '${task.builtin}' is not allowed on this computer\n`, truncated: false };
    [file, args] = o.builtins?.[task.builtin] ?? BUILTINS[task.builtin];
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
