import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '@outpost/common';
import { removeDir, tempDir } from '@outpost/testing';
import { executeRun } from '../../src/tasks/executor.js';
import { JournalStore, type RunJournal } from '../../src/tasks/journal.js';
import type { RunStep, StatusEvent } from '../../src/tasks/types.js';

let dir: string;
let journals: JournalStore;
beforeEach(async () => {
  dir = await tempDir('outpost-exec-');
  journals = new JournalStore(dir);
  await journals.loadAll();
});
afterEach(async () => {
  await removeDir(dir);
});

const step = (name: string, script: string, extra: Partial<RunStep> = {}): RunStep => ({
  name,
  task: { kind: 'script', script, timeoutMs: 5_000 },
  successCodes: [0],
  onFailure: 'stop',
  retries: 0,
  ...extra,
});

async function run(steps: RunStep[], j?: RunJournal): Promise<{ journal: RunJournal; events: StatusEvent[] }> {
  const journal: RunJournal = j ?? { version: 1, run: { id: 'run_1', job: 'j', steps, expiresAt: Date.now() + 60_000, cancelled: false }, results: [], outbox: [] };
  await executeRun(journal, { agentId: 'ag_1', journals, runner: { outputCap: 1024, allowBuiltins: [], shell: 'sh', scratchDir: dir }, report: () => undefined, log: silentLogger() }, new AbortController().signal);
  return { journal, events: journal.outbox };
}

const states = (events: StatusEvent[]): string[] => events.map((e) => `${e.step}:${e.attempt}:${e.state}`);

describe('executeRun', () => {
  it('runs the second step only if the first exits 0', async () => {
    const ok = await run([step('a', 'exit 0'), step('b', 'echo b')]);
    expect(states(ok.events)).toEqual(['0:0:running', '0:0:succeeded', '1:0:running', '1:0:succeeded', '-1:0:succeeded']);
    const bad = await run([step('a', 'exit 4'), step('b', 'echo b')]);
    expect(states(bad.events)).toEqual(['0:0:running', '0:0:failed', '1:0:skipped', '-1:0:failed']);
    expect(bad.events[3]!.error).toBe("step 1 'a': exit 4");
  });

  it('continues past a failure when told to, and treats listed codes as success', async () => {
    const r = await run([step('a', 'exit 4', { onFailure: 'continue' }), step('b', 'exit 7', { successCodes: [0, 7] })]);
    expect(states(r.events)).toEqual(['0:0:running', '0:0:failed', '1:0:running', '1:0:succeeded', '-1:0:failed']);
  });

  it('retries a failing step N times', async () => {
    const counter = `${dir}/count`;
    const r = await run([step('a', `echo x >> ${counter}; [ $(wc -l < ${counter}) -ge 3 ]`, { onFailure: 'retry', retries: 5 })]);
    expect(states(r.events)).toEqual(['0:0:running', '0:0:failed', '0:1:running', '0:1:failed', '0:2:running', '0:2:succeeded', '-1:0:succeeded']);
  });

  it('after a restart, does not run a finished step again and records the interrupted one', async () => {
    const marker = `${dir}/ran`;
    const steps = [step('a', `echo a >> ${marker}`), step('b', `echo b >> ${marker}`), step('c', `echo c >> ${marker}`)];
    // As journaled by an agent killed while step b ran: a finished, b started.
    const j: RunJournal = {
      version: 1,
      run: { id: 'run_2', job: 'j', steps, expiresAt: Date.now() + 60_000, cancelled: false },
      results: [{ state: 'succeeded', attempt: 0, exitCode: 0 }],
      started: { step: 1, attempt: 0 },
      outbox: [],
    };
    await journals.save(j);
    const [loaded] = await journals.loadAll();
    const r = await run(steps, loaded);
    expect(states(r.events)).toEqual(['1:0:failed', '2:0:skipped', '-1:0:failed']);
    expect(r.events[0]!.error).toBe('interrupted');
    await expect(import('node:fs/promises').then((fs) => fs.readFile(marker, 'utf8'))).rejects.toThrow();
  });
});
