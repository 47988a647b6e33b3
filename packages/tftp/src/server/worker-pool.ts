import { Worker } from 'node:worker_threads';
import type { ReadCacheStats } from '../source/read-cache.js';
import { TftpError, TftpErrors } from '../errors.js';
import type { TftpCounters } from './events.js';
import type { SessionEnd } from './session.js';
import type { FromWorker, ReadJob, ToWorker, TransferWorkerConfig } from './worker-messages.js';

/*
 * The main thread's side of the transfer workers. A read goes to the worker with the
 * fewest transfers (the first among equals). Each transfer's start and end come back
 * as one message each. If a worker dies, its transfers end as failed ('worker-exit'), it
 * leaves the rotation (the server serves on the main thread while none is left) and a
 * new one takes its place after a back-off (1 s, doubling up to 60 s while they keep dying;
 * a replacement that lives a minute resets it).
 */

export interface PoolHooks {
  /** The worker opened the transfer's sockets and started it. */
  started(id: number): void;
  /** No transfer: its sockets could not be opened (`stopping`: because the server is stopping). */
  openFailed(id: number, message: string, stopping: boolean): void;
  ended(id: number, end: SessionEnd): void;
  counters(delta: TftpCounters): void;
  log(id: number, level: 'debug' | 'warn', obj: object, msg: string): void;
  /** A worker exited unexpectedly; a replacement starts in `respawnMs`. */
  workerExit(index: number, err: unknown, respawnMs: number): void;
  /** A replacement worker is ready (or could not start: `err`). */
  workerRespawn?(index: number, err?: unknown): void;
}

export interface PoolOptions {
  /** Worker entry module (tests substitute one). @default transfer-worker-main.js */
  entry?: URL;
  /** First respawn delay, doubled per consecutive death. @default 1000 */
  respawnBaseMs?: number;
}

interface Slot {
  index: number;
  startedAt: number;
  worker: Worker;
  /** Transfers handed to it and not yet ended. */
  jobs: Set<number>;
  cache: ReadCacheStats;
  alive: boolean;
  exited: boolean;
  stopped: Promise<void> | undefined;
}

const START_TIMEOUT_MS = 10_000;
const RESPAWN_MAX_MS = 60_000;
/** A worker that lived this long was healthy: the back-off starts over. */
const HEALTHY_MS = 60_000;
const STOP_TIMEOUT_MS = 5_000;

const emptyCache = (): ReadCacheStats => ({ files: 0, chunks: 0, bytes: 0, hits: 0, misses: 0, diskReads: 0 });

/**
 * The worker's script: next to this module when it runs built (dist), and the built one
 * when this module runs from source (tests load src through vitest; a worker thread
 * cannot load TypeScript, and `npm test` builds first).
 */
function defaultWorkerEntry(): URL {
  return import.meta.url.endsWith('.ts') ? new URL('../../dist/server/transfer-worker-main.js', import.meta.url) : new URL('./transfer-worker-main.js', import.meta.url);
}

export class TransferWorkerPool {
  private readonly slots: Slot[] = [];
  private stopping = false;
  /** Totals of the cache counters of workers that are gone. */
  private readonly retired = emptyCache();
  private readonly entry: URL;
  private readonly respawnBaseMs: number;
  /** Consecutive early deaths per worker index (sets the back-off). */
  private readonly deaths = new Map<number, number>();
  private readonly respawns = new Set<NodeJS.Timeout>();
  /** Replacement workers started so far. */
  restarts = 0;

  constructor(
    private readonly count: number,
    private readonly config: TransferWorkerConfig,
    private readonly hooks: PoolHooks,
    options: PoolOptions = {},
  ) {
    this.entry = options.entry ?? defaultWorkerEntry();
    this.respawnBaseMs = options.respawnBaseMs ?? 1000;
  }

  /** Live workers. */
  get size(): number {
    let n = 0;
    for (const s of this.slots) if (s.alive) n++;
    return n;
  }

  async start(): Promise<void> {
    const ready: Array<Promise<void>> = [];
    for (let i = 0; i < this.count; i++) ready.push(this.spawn(i));
    try {
      await Promise.all(ready);
    } catch (err) {
      await this.terminateAll();
      throw new TftpError(TftpErrors.WORKER_FAILED, `transfer workers did not start: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Starts worker `i` in slot i; resolves once it says it is ready. */
  private spawn(i: number): Promise<void> {
    const worker = new Worker(this.entry, { workerData: this.config, name: `tftp-transfer-${i}` });
    const slot: Slot = { index: i, startedAt: performance.now(), worker, jobs: new Set(), cache: emptyCache(), alive: false, exited: false, stopped: undefined };
    this.slots[i] = slot;
    const ready = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`transfer worker ${i} not ready after ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      const onReady = (m: FromWorker): void => {
        if (m.t !== 'ready') return;
        clearTimeout(t);
        worker.off('message', onReady);
        slot.alive = !this.stopping;
        resolve();
      };
      worker.on('message', onReady);
      worker.once('error', (err) => {
        clearTimeout(t);
        reject(err);
      });
      worker.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`transfer worker ${i} exited with ${code}`));
      });
    });
    worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
    worker.on('error', (err) => this.onExit(slot, err));
    worker.on('exit', (code) => this.onExit(slot, new Error(`transfer worker exited with code ${code}`)));
    return ready;
  }

  /**
   * Hands a read to the least-loaded live worker, the lowest-numbered among equals: a
   * burst spreads over all of them, while clients that come one at a time keep landing on
   * the same worker, whose read cache and compiled code are warm. False when none is alive.
   */
  dispatch(job: ReadJob): boolean {
    let best: Slot | undefined;
    for (const s of this.slots) if (s.alive && (!best || s.jobs.size < best.jobs.size)) best = s;
    if (!best || this.stopping) return false;
    best.jobs.add(job.id);
    const m: ToWorker = { t: 'read', job };
    best.worker.postMessage(m);
    return true;
  }

  cacheStats(): ReadCacheStats {
    const sum = { ...this.retired };
    for (const s of this.slots) {
      if (!s.alive) continue;
      for (const k of Object.keys(sum) as Array<keyof ReadCacheStats>) sum[k] += s.cache[k];
    }
    return sum;
  }

  /** Ends every transfer in every worker (ERROR 0 to their clients) and stops the workers. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.respawns) clearTimeout(t);
    this.respawns.clear();
    await Promise.all(this.slots.filter((s) => s.alive).map((s) => this.stopOne(s)));
  }

  private stopOne(slot: Slot): Promise<void> {
    slot.stopped ??= new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        void slot.worker.terminate().finally(resolve);
      }, STOP_TIMEOUT_MS);
      slot.worker.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      const m: ToWorker = { t: 'stop' };
      slot.worker.postMessage(m);
    });
    return slot.stopped;
  }

  private async terminateAll(): Promise<void> {
    this.stopping = true;
    for (const t of this.respawns) clearTimeout(t);
    this.respawns.clear();
    await Promise.all(this.slots.map((s) => s.worker.terminate().catch(() => 0)));
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    const h = this.hooks;
    switch (m.t) {
      case 'started':
        h.started(m.id);
        break;
      case 'open-failed':
        slot.jobs.delete(m.id);
        h.openFailed(m.id, m.message, m.stopping);
        break;
      case 'end':
        slot.cache = m.cache;
        h.counters(m.counters);
        slot.jobs.delete(m.id);
        h.ended(m.id, m.end);
        break;
      case 'counters':
      case 'stopped':
        slot.cache = m.cache;
        h.counters(m.counters);
        break;
      case 'log':
        h.log(m.id, m.level, m.obj, m.msg);
        break;
      case 'ready':
        break;
    }
  }

  private onExit(slot: Slot, err: unknown): void {
    if (slot.exited) return;
    slot.exited = true;
    const wasAlive = slot.alive;
    slot.alive = false;
    for (const k of Object.keys(this.retired) as Array<keyof ReadCacheStats>) {
      if (k === 'hits' || k === 'misses' || k === 'diskReads') this.retired[k] += slot.cache[k];
    }
    const lost = [...slot.jobs];
    slot.jobs.clear();
    // A worker that dies before it is ready is the business of whoever awaits spawn().
    if (this.stopping || !wasAlive) return;
    const delay = this.backoff(slot);
    this.hooks.workerExit(slot.index, err, delay);
    for (const id of lost) this.hooks.ended(id, { event: 'failed', result: { reason: 'worker-exit', durationMs: 0, bytes: 0, retransmits: 0, error: err } });
    this.respawnLater(slot.index, delay);
  }

  /** The delay before worker `slot.index` is replaced: doubles while its workers die young. */
  private backoff(slot: Slot): number {
    const young = performance.now() - slot.startedAt < HEALTHY_MS;
    const deaths = young ? (this.deaths.get(slot.index) ?? 0) + 1 : 1;
    this.deaths.set(slot.index, deaths);
    return Math.min(RESPAWN_MAX_MS, this.respawnBaseMs * 2 ** (deaths - 1));
  }

  private respawnLater(i: number, delay: number): void {
    const t = setTimeout(() => {
      this.respawns.delete(t);
      if (this.stopping) return;
      this.restarts++;
      this.spawn(i).then(
        () => this.hooks.workerRespawn?.(i),
        (err: unknown) => {
          const slot = this.slots[i]!;
          void slot.worker.terminate().catch(() => 0);
          this.hooks.workerRespawn?.(i, err);
          if (!this.stopping) this.respawnLater(i, this.backoff(slot));
        },
      );
    }, delay);
    t.unref();
    this.respawns.add(t);
  }
}
