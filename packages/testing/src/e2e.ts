import { execFileSync } from 'node:child_process';

export interface E2eGate {
  /** True when the test may run. */
  readonly run: boolean;
  /** Why it may not (printed once when skipped). */
  readonly reason: string;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** True when `cmd` is on the PATH. */
export function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${JSON.stringify(cmd)}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Decides whether an end-to-end test that needs root and/or external commands runs
 * (`other`: prerequisites the caller found missing, named as they are to be printed).
 * Without them it is skipped with a printed reason, except under
 * `OUTPOST_E2E=required` (CI), where a missing prerequisite throws so the suite fails:
 * a skip there would hide a test that never ran.
 */
export function e2eGate(name: string, needs: { root?: boolean; commands?: string[]; other?: string[] } = {}): E2eGate {
  const missing: string[] = [...(needs.other ?? [])];
  if (needs.root && !isRoot()) missing.push('root');
  for (const c of needs.commands ?? []) if (!hasCommand(c)) missing.push(`command '${c}'`);
  if (missing.length === 0) return { run: true, reason: '' };
  const reason = `${name}: needs ${missing.join(', ')}`;
  if (process.env.OUTPOST_E2E === 'required') {
    throw new Error(`${reason} (OUTPOST_E2E=required: a skip is a failure; install them, see .ci/run)`);
  }
  console.warn(`SKIP ${reason}`);
  return { run: false, reason };
}
