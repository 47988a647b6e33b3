import { stat } from 'node:fs/promises';
import { OutpostError, backoffDelay, isOutpostError, type Logger, type TokenBucket } from '@outpost/common';
import PQueue from 'p-queue';
import { PackageServerErrors } from './errors.js';
import { fetchFile, type FetchTimings } from './fetcher.js';
import type { FileEntry, HeldPackage, PackageStore, Source } from './store.js';

export type StageState = 'pending' | 'downloading' | 'ready' | 'failed';

/** One package's staging status, as reported to the core. */
export interface StageStatus {
  id: string;
  manifestHash: string;
  state: StageState;
  bytesDone: number;
  bytesTotal: number;
  error?: string | undefined;
  nextRetryAt?: number | undefined;
  attempt?: number | undefined;
}

export interface StagerOptions {
  store: PackageStore;
  log: Logger;
  concurrency: number;
  retry: { base: number; cap: number; jitter: number };
  reserveBytes: number;
  timeoutMs: number;
  bucket: TokenBucket;
  /** True while downloads are being sent (staging writes then avoid stalling the event loop). */
  serving?: () => boolean;
  identity(): { id: string; bearer: string };
  /**
   * Called whenever a status changes (the caller batches reports to the core); `settled`
   * when a package became ready or failed, which the core should hear of at once.
   */
  changed(settled: boolean): void;
}

interface Job {
  status: StageStatus;
  attempt: number;
  timer?: NodeJS.Timeout | undefined;
  abort?: AbortController | undefined;
  queued: boolean;
  /** Source URLs at the last failure: a new one wakes the job early. */
  triedSources: Set<string>;
}

/** Per-source counters: what came from where. */
export interface FetchCounters {
  bytes: number;
  files: number;
}

/**
 * Stages held packages: a p-queue (`concurrency` packages at once) runs each package's
 * missing files through {@link fetchFile}, trying its sources in order; a file becomes
 * visible only by rename after its hash matched. A failed package retries after
 * backoffDelay(attempt) (3·2^N minutes by default, capped at 24 h, jittered), or at once
 * when a source it has not tried appears; it stops when the package is unassigned.
 */
export class Stager {
  readonly #queue: PQueue;
  readonly #jobs = new Map<string, Job>();
  readonly fetchedFrom = new Map<string, FetchCounters>();
  #stopped = false;

  constructor(private readonly o: StagerOptions) {
    this.#queue = new PQueue({ concurrency: o.concurrency });
  }

  statuses(): StageStatus[] {
    return [...this.#jobs.values()].map((j) => j.status);
  }

  status(id: string): StageStatus | undefined {
    return this.#jobs.get(id)?.status;
  }

  /** Starts (or wakes) staging of a held package. */
  ensure(p: HeldPackage): void {
    if (this.#stopped) return;
    let job = this.#jobs.get(p.id);
    const total = p.files.reduce((n, f) => n + f.size, 0);
    if (!job) {
      job = {
        status: { id: p.id, manifestHash: p.manifestHash, state: p.ready ? 'ready' : 'pending', bytesDone: p.ready ? total : 0, bytesTotal: total },
        attempt: 0,
        queued: false,
        triedSources: new Set(),
      };
      this.#jobs.set(p.id, job);
      this.o.changed(false);
    }
    if (p.ready || job.queued) return;
    if (job.status.state === 'failed') {
      const fresh = p.sources.some((s) => !job.triedSources.has(s.url));
      if (!fresh) return;
      this.o.log.info({ package: p.id }, 'a new source appeared; retrying now');
    }
    this.#enqueue(p.id, job);
  }

  /** Marks a ready package as needing re-staging (a file vanished or changed). */
  restage(id: string): void {
    const job = this.#jobs.get(id);
    const p = this.o.store.packages.get(id);
    if (!job || !p) return;
    job.status = { ...job.status, state: 'pending', bytesDone: 0 };
    job.attempt = 0;
    this.o.changed(false);
    this.ensure(p);
  }

  /** Stops staging a package (unassigned): aborts a download in progress. */
  drop(id: string): void {
    const job = this.#jobs.get(id);
    if (!job) return;
    this.o.log.debug({ package: id }, 'staging dropped (unassigned)');
    clearTimeout(job.timer);
    job.abort?.abort();
    this.#jobs.delete(id);
  }

  #enqueue(id: string, job: Job): void {
    clearTimeout(job.timer);
    job.timer = undefined;
    job.queued = true;
    void this.#queue.add(async () => {
      try {
        await this.#stage(id, job);
      } finally {
        job.queued = false;
      }
    });
  }

  async #stage(id: string, job: Job): Promise<void> {
    const p = this.o.store.packages.get(id);
    if (!p || this.#stopped || this.#jobs.get(id) !== job) return;
    const abort = new AbortController();
    job.abort = abort;
    const missing: FileEntry[] = [];
    for (const f of p.files) if (!(await this.o.store.present(f))) missing.push(f);
    const total = job.status.bytesTotal;
    let done = total - missing.reduce((n, f) => n + f.size, 0);
    const set = (patch: Partial<StageStatus>): void => {
      job.status = { ...job.status, ...patch };
      this.o.changed(patch.state === 'ready' || patch.state === 'failed');
    };
    set({ state: 'downloading', bytesDone: done, error: undefined, nextRetryAt: undefined });
    try {
      await this.#checkSpace(missing);
      for (const f of missing) {
        if (abort.signal.aborted) return;
        await this.#fetchOne(p, f, abort.signal, (n) => {
          done += n;
          job.status.bytesDone = Math.min(total, done);
        });
        done = Math.max(done, 0);
      }
      if (this.#jobs.get(id) !== job || abort.signal.aborted) {
        this.o.log.debug({ package: id }, 'staging finished for a dropped package; discarded');
        return;
      }
      await this.o.store.put({ ...p, ready: true });
      job.attempt = 0;
      job.triedSources.clear();
      set({ state: 'ready', bytesDone: total, attempt: undefined });
      // `name` is the package server's (its logger's): the package's is packageName.
      this.o.log.info({ package: id, packageName: p.name, version: p.version, files: p.files.length }, 'package staged');
    } catch (err) {
      if (abort.signal.aborted || this.#stopped || this.#jobs.get(id) !== job) return;
      job.attempt++;
      const delay = backoffDelay(job.attempt - 1, { baseMs: this.o.retry.base, capMs: this.o.retry.cap, jitter: this.o.retry.jitter });
      const message = isOutpostError(err) && err.code === PackageServerErrors.INSUFFICIENT_SPACE ? `insufficient space: ${err.message}` : (err as Error).message;
      job.triedSources = new Set(p.sources.map((s) => s.url));
      set({ state: 'failed', error: message, nextRetryAt: Date.now() + delay, attempt: job.attempt });
      this.o.log.warn({ package: id, attempt: job.attempt, retryInMs: delay, err: message }, 'staging failed');
      job.timer = setTimeout(() => {
        const cur = this.o.store.packages.get(id);
        if (cur && this.#jobs.get(id) === job) this.#enqueue(id, job);
      }, delay);
      job.timer.unref();
    } finally {
      job.abort = undefined;
    }
  }

  async #checkSpace(missing: FileEntry[]): Promise<void> {
    let need = 0;
    for (const f of missing) {
      const partial = await stat(this.o.store.partialPath(f.sha256)).catch(() => undefined);
      need += f.size - Math.min(f.size, partial?.size ?? 0);
    }
    const free = await this.o.store.freeBytes();
    if (free - this.o.reserveBytes < need) {
      throw new OutpostError(PackageServerErrors.INSUFFICIENT_SPACE, `${need} bytes needed, ${Math.max(0, free - this.o.reserveBytes)} free above the ${this.o.reserveBytes}-byte reserve`);
    }
  }

  async #fetchOne(p: HeldPackage, f: FileEntry, signal: AbortSignal, onBytes: (n: number) => void): Promise<void> {
    const sources: Source[] = p.sources;
    if (sources.length === 0) {
      throw new OutpostError(PackageServerErrors.NO_SOURCE, 'no source for this package yet (waiting for a codebase in this site)');
    }
    const me = this.o.identity();
    const errors: string[] = [];
    for (const source of sources) {
      if (signal.aborted) return;
      let counted = 0;
      const timings: FetchTimings = {};
      try {
        const fetched = await fetchFile({
          timings,
          source,
          file: f,
          partial: this.o.store.partialPath(f.sha256),
          bearer: me.bearer,
          selfId: me.id,
          timeoutMs: this.o.timeoutMs,
          bucket: this.o.bucket,
          serving: this.o.serving,
          signal,
          onBytes: (n) => {
            counted += n;
            onBytes(n);
          },
        });
        const committing = performance.now();
        await this.o.store.commit(this.o.store.partialPath(f.sha256), f.sha256);
        this.o.log.debug({ package: p.id, file: f.path, bytes: fetched, source: source.url, ...timings, commitMs: Math.round(performance.now() - committing) }, 'file staged');
        const key = source.kind === 'core' ? 'core' : (source.serverId ?? source.url);
        const c = this.fetchedFrom.get(key) ?? { bytes: 0, files: 0 };
        c.bytes += fetched;
        c.files++;
        this.fetchedFrom.set(key, c);
        return;
      } catch (err) {
        const key = source.kind === 'core' ? 'core' : (source.serverId ?? source.url);
        if (counted > 0) {
          const c = this.fetchedFrom.get(key) ?? { bytes: 0, files: 0 };
          c.bytes += counted;
          this.fetchedFrom.set(key, c);
        }
        errors.push((err as Error).message);
        this.o.log.debug({ package: p.id, file: f.path, source: source.url, err: (err as Error).message }, 'source failed; trying the next');
      }
    }
    throw new Error(errors.join('; '));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const job of this.#jobs.values()) {
      clearTimeout(job.timer);
      job.abort?.abort();
    }
    this.#queue.clear();
    await this.#queue.onIdle();
  }
}
