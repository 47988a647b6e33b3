// The reboot-to-automation built-in: the one-shot network boot is set through the core's
// boot module first, then the computer reboots; only where the agent allows reboots.
// The reboot itself is a harmless stand-in command (RunnerOptions.builtins).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '@outpost/testing';
import { runStep, type RunnerOptions } from '../../src/tasks/runner.js';

let dir: string;
let calls: string[];
let o: RunnerOptions;
const step = (args?: string[]) => ({ kind: 'builtin' as const, builtin: 'reboot-to-automation' as const, ...(args ? { args } : {}), timeoutMs: 5_000 });

beforeEach(async () => {
  dir = await tempDir('outpost-rta-');
  calls = [];
  o = {
    outputCap: 65_536,
    allowBuiltins: ['reboot'],
    shell: 'sh',
    scratchDir: dir,
    drainMs: 200,
    builtins: { reboot: ['sh', ['-c', `touch ${join(dir, 'rebooted')}; echo rebooting`]] },
    bootOnce: async (image, job) => {
      calls.push(`boot ${image} ${job ?? '-'}${existsSync(join(dir, 'rebooted')) ? ' after the reboot' : ''}`);
    },
  };
});
afterEach(async () => {
  await removeDir(dir);
});

describe('reboot-to-automation built-in', () => {
  it('sets the one-shot boot into the image (and job), then reboots', async () => {
    const r = await runStep(step(['winpe', 'reimage']), o);
    expect(r).toMatchObject({ exitCode: 0, output: "one-shot network boot into 'winpe' (job reimage) set\nrebooting\n" });
    expect(calls).toEqual(['boot winpe reimage']);
    expect(existsSync(join(dir, 'rebooted'))).toBe(true);
  });

  it("is refused where the agent's config does not allow reboots, or when there is no core to ask", async () => {
    expect(await runStep(step(['winpe']), { ...o, allowBuiltins: ['shutdown'] })).toMatchObject({ error: 'refused' });
    const { bootOnce: _, ...noCore } = o;
    expect(await runStep(step(['winpe']), noCore)).toMatchObject({ error: 'refused' });
    // 'reboot-to-automation' in allowBuiltins alone does not allow it: reboots must be allowed.
    expect(await runStep(step(['winpe']), { ...o, allowBuiltins: ['reboot-to-automation'] })).toMatchObject({ error: 'refused' });
    expect(calls).toEqual([]);
    expect(existsSync(join(dir, 'rebooted'))).toBe(false);
  });

  it('does not reboot when the core refuses the boot (unknown image) or no image is given', async () => {
    const r = await runStep(step(['nope']), { ...o, bootOnce: async () => Promise.reject(new Error('CORE_BOOT_IMAGE_NOT_FOUND')) });
    expect(r).toMatchObject({ exitCode: 1 });
    expect(r.output).toContain('CORE_BOOT_IMAGE_NOT_FOUND');
    expect(await runStep(step([]), o)).toMatchObject({ exitCode: 2 });
    expect(existsSync(join(dir, 'rebooted'))).toBe(false);
  });
});
