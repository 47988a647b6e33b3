import { mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@outpost/common';
import type { RunSpec, StatusEvent } from './types.js';

/** One step's final result as the journal keeps it. */
export interface StepRecord {
  state: 'succeeded' | 'failed' | 'skipped';
  attempt: number;
  exitCode?: number | undefined;
  error?: string | undefined;
}

/**
 * What the agent keeps per run so a restart neither loses a result nor runs a finished
 * step again: the spec, the step results so far, the step in progress (`started`: its
 * index and attempt, written before the process is spawned), and the status events not
 * yet acknowledged by the task server.
 */
export interface RunJournal {
  version: 1;
  run: RunSpec;
  /** Digest of the signed run it came as (`runDigest`): the same run offered again is not a replay. */
  digest?: string | undefined;
  results: Array<StepRecord | null>;
  started?: { step: number; attempt: number } | undefined;
  /** The run's final state once reported (the journal stays until its events are acked). */
  final?: 'succeeded' | 'failed' | 'cancelled' | undefined;
  outbox: StatusEvent[];
}

/**
 * Journals as one small JSON file per run under `<dataDir>/tasks/runs/`, each replaced
 * atomically (temp file, fsync, rename). A run's file is deleted once it is final and
 * every event has been acknowledged; a `done` marker file keeps the run from being
 * taken again if the task server offers it once more.
 */
export class JournalStore {
  readonly dir: string;
  readonly #done: string;
  readonly #chains = new Map<string, Promise<void>>();

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'tasks', 'runs');
    this.#done = join(dataDir, 'tasks', 'done');
  }

  #file(runId: string): string {
    return join(this.dir, `${runId.replace(/[^\w-]/g, '_')}.json`);
  }

  async loadAll(): Promise<RunJournal[]> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const out: RunJournal[] = [];
    for (const name of (await readdir(this.dir)).filter((n) => n.endsWith('.json')).slice(0, 10_000)) {
      try {
        const j = JSON.parse(await readFile(join(this.dir, name), 'utf8')) as RunJournal;
        if (j.version === 1 && j.run?.id) out.push(j);
      } catch {
        // A torn temp file is never renamed into place; anything else unreadable is skipped.
      }
    }
    return out;
  }

  /** Saves serialised per run: each write takes the journal as it is when its turn comes. */
  save(j: RunJournal): Promise<void> {
    const id = j.run.id;
    const next = (this.#chains.get(id) ?? Promise.resolve()).catch(() => undefined).then(() => this.#write(j));
    this.#chains.set(id, next);
    void next.finally(() => {
      if (this.#chains.get(id) === next) this.#chains.delete(id);
    }).catch(() => undefined);
    return next;
  }

  async #write(j: RunJournal): Promise<void> {
    await writeFileAtomic(this.#file(j.run.id), JSON.stringify(j));
  }

  async isDone(runId: string): Promise<boolean> {
    try {
      await readFile(join(this.#done, runId.replace(/[^\w-]/g, '_')));
      return true;
    } catch {
      return false;
    }
  }

  /** Marks the run done (kept as a tiny marker) and deletes its journal. */
  async finish(runId: string): Promise<void> {
    await this.#chains.get(runId)?.catch(() => undefined);
    await mkdir(this.#done, { recursive: true, mode: 0o700 });
    const fh = await open(join(this.#done, runId.replace(/[^\w-]/g, '_')), 'w', 0o600);
    await fh.sync();
    await fh.close();
    await rm(this.#file(runId), { force: true });
  }
}
