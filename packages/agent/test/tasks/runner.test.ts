import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '@outpost/testing';
import { runStep, type RunnerOptions } from '../../src/tasks/runner.js';

let dir: string;
let o: RunnerOptions;
beforeEach(async () => {
  dir = await tempDir('outpost-runner-');
  o = { outputCap: 65_536, allowBuiltins: [], shell: 'sh', scratchDir: dir, drainMs: 200 };
});
afterEach(async () => {
  await removeDir(dir);
});

/** Running (a killed process not yet reaped by its new parent is a zombie: dead). */
const alive = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

describe('runStep', () => {
  it('captures the exit code and output of a command (no shell)', async () => {
    expect(await runStep({ kind: 'command', program: 'echo', args: ['hello', '$HOME'], timeoutMs: 5_000 }, o)).toEqual({ exitCode: 0, output: 'hello $HOME\n', truncated: false });
    expect(await runStep({ kind: 'script', script: 'echo out; echo err >&2; exit 3', timeoutMs: 5_000 }, o)).toMatchObject({ exitCode: 3, output: 'out\nerr\n' });
  });

  it('kills the whole process tree of a step that hangs, at its timeout', async () => {
    const t0 = Date.now();
    const r = await runStep({ kind: 'script', script: 'sleep 30 &\necho $!\nsleep 30\n', timeoutMs: 300 }, o);
    expect(r.error).toBe('timeout');
    expect(Date.now() - t0).toBeLessThan(3_000);
    const grandchild = Number(r.output.trim());
    expect(grandchild).toBeGreaterThan(0);
    await new Promise((res) => setTimeout(res, 100));
    expect(alive(grandchild)).toBe(false);
  });

  it('caps an output flood at 64 KiB and says it was cut', async () => {
    const r = await runStep({ kind: 'script', script: 'head -c 5000000 /dev/zero | tr "\\0" x; exit 0', timeoutMs: 10_000 }, o);
    expect(r).toMatchObject({ exitCode: 0, truncated: true });
    expect(Buffer.byteLength(r.output)).toBe(65_536);
  });

  it('refuses built-ins the computer does not allow, and reports a program that cannot start', async () => {
    expect(await runStep({ kind: 'builtin', builtin: 'reboot', timeoutMs: 1_000 }, o)).toMatchObject({ error: 'refused' });
    expect(await runStep({ kind: 'command', program: '/nonexistent/prog', timeoutMs: 1_000 }, o)).toMatchObject({ error: 'spawn' });
  });
});
