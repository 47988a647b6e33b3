import { spawn } from 'node:child_process';

export interface CappedRunOptions {
  cwd?: string | undefined;
  /** Added to the parent's environment. */
  env?: Record<string, string> | undefined;
  /** Killed (the whole process group) after this. */
  timeoutMs: number;
  /** Bytes of stdout + stderr kept; the rest is read and dropped. */
  outputCap: number;
  /** Aborting kills the process group too (the outcome says `cancelled`). */
  signal?: AbortSignal | undefined;
  /** How long to wait for the pipes after the process exited (a child holding them). @default 1000 */
  drainMs?: number | undefined;
}

export interface CappedRunOutcome {
  exitCode?: number | undefined;
  /** `timeout` (killed at its timeout), `spawn` (could not start), `cancelled` (aborted). */
  error?: 'timeout' | 'spawn' | 'cancelled' | undefined;
  signal?: string | undefined;
  output: string;
  truncated: boolean;
}

/**
 * Runs a program (no shell) in a process group of its own (`detached`), so that at its
 * timeout or on abort the whole tree is killed with `process.kill(-pid)`. stdout and
 * stderr are captured together up to `outputCap` bytes; beyond, the rest is read and
 * dropped (the child never blocks on a full pipe) and `truncated` is set. Never
 * rejects: a program that cannot start is `error: 'spawn'`. Used by agents for their
 * steps and by the core for server tasks, so both follow the same rules.
 */
export function runCapped(file: string, args: readonly string[], o: CappedRunOptions): Promise<CappedRunOutcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    let truncated = false;
    let why: CappedRunOutcome['error'];
    let settled = false;
    let lastData = 0;
    const child = spawn(file, [...args], {
      cwd: o.cwd,
      env: o.env ? { ...process.env, ...o.env } : process.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const take = (b: Buffer): void => {
      lastData = Date.now();
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
    }, o.timeoutMs);
    const onAbort = (): void => {
      why ??= 'cancelled';
      killTree();
    };
    if (o.signal?.aborted) onAbort();
    else o.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (r: Omit<CappedRunOutcome, 'output' | 'truncated'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      resolve({ ...r, output: Buffer.concat(chunks).toString('utf8'), truncated });
    };
    child.on('error', (err) => {
      chunks.push(Buffer.from(`${err.message}\n`));
      finish({ error: 'spawn' });
    });
    child.on('exit', (code, sig) => {
      const outcome = (): Omit<CappedRunOutcome, 'output' | 'truncated'> => (why ? { error: why, signal: sig ?? undefined } : { exitCode: code ?? undefined, signal: sig ?? undefined });
      // A process left behind may hold the pipes open: once they have been quiet for
      // `drainMs`, stop reading. Not sooner: on a loaded machine the timer can come due
      // before the output already in the pipe was read, so the cut waits for one more
      // poll phase (setImmediate) and for output that is still arriving (the step's own
      // timeout still bounds a writer that never stops).
      const drainMs = o.drainMs ?? 1_000;
      let drain: NodeJS.Timeout;
      const arm = (ms: number): void => {
        drain = setTimeout(() => {
          setImmediate(() => {
            const quiet = Date.now() - lastData;
            if (quiet < drainMs) return arm(drainMs - quiet);
            child.stdout.destroy();
            child.stderr.destroy();
            finish(outcome());
          });
        }, ms);
      };
      arm(drainMs);
      child.on('close', () => {
        clearTimeout(drain);
        finish(outcome());
      });
    });
  });
}
