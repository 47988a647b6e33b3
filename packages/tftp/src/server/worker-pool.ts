import { Worker } from 'node:worker_threads';
import type { ReadCacheStats } from '../source/read-cache.js';
import { TftpError, TftpErrors } from '../errors.js';
import type { TftpCounters } from './events.js';
import type { SessionEnd } from './session.js';
import type { FromWorker, ReadJob, ToWorker, TransferWorkerConfig } from './worker-messages.js';

/*
 * The main thread's side of the transfer workers. A read goes to the worker with the
 * fewest transfers (the first among equals). Each transfer's start and end come back
 * as one message each; if a worker dies, its transfers end as failed ('worker-exit') and
 * it leaves the rotation (the server then serves on the main thread once none is left).
 */

export interface PoolHooks {
  /** The worker opened the transfer's sockets and started it. */
  started(id: number): void;
  /** No transfer: its sockets could not be opened (`stopping`: because the server is stopping). */
  openFailed(id: number, message: string, stopping: boolean): void;
  ended(id: number, end: SessionEnd): void;
  counters(delta: TftpCounters): void;
  log(id: number, level: 'debug' | 'warn', obj: object, msg: string): void;
  /** A worker exited unexpectedly. */
  workerExit(index: number, err: unknown): void;
}

interface Slot {
  index: number;
  worker: Worker;
  /** Transfers handed to it and not yet ended. */
  jobs: Set<number>;
  cache: ReadCacheStats;
  alive: boolean;
  stopped: Promise<void> | undefined;
}

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

const emptyCache = (): ReadCacheStats => ({ files: 0, chunks: 0, bytes: 0, hits: 0, misses: 0, diskReads: 0 });

export class TransferWorkerPool {
  private readonly slots: Slot[] = [];
  private stopping = false;
  /** Totals of the cache counters of workers that are gone. */
  private readonly retired = emptyCache();

  constructor(
    private readonly count: number,
    private readonly config: TransferWorkerConfig,
    private readonly hooks: PoolHooks,
  ) {}

  /** Live workers. */
  get size(): number {
    let n = 0;
    for (const s of this.slots) if (s.alive) n++;
    return n;
  }

  async start(): Promise<void> {
    const url = new URL('./transfer-worker-main.js', import.meta.url);
    const ready: Array<Promise<void>> = [];
    for (let i = 0; i < this.count; i++) {
      const worker = new Worker(url, { workerData: this.config, name: `tftp-transfer-${i}` });
      const slot: Slot = { index: i, worker, jobs: new Set(), cache: emptyCache(), alive: true, stopped: undefined };
      this.slots.push(slot);
      ready.push(
        new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`transfer worker ${i} not ready after ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
          const onReady = (m: FromWorker): void => {
            if (m.t !== 'ready') return;
            clearTimeout(t);
            worker.off('message', onReady);
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
        }),
      );
      worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
      worker.on('error', (err) => this.onExit(slot, err));
      worker.on('exit', (code) => this.onExit(slot, new Error(`transfer worker exited with code ${code}`)));
    }
    try {
      await Promise.all(ready);
    } catch (err) {
      await this.terminateAll();
      throw new TftpError(TftpErrors.WORKER_FAILED, `transfer workers did not start: ${(err as Error).message}`, { cause: err });
    }
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
    if (!slot.alive) return;
    slot.alive = false;
    for (const k of Object.keys(this.retired) as Array<keyof ReadCacheStats>) {
      if (k === 'hits' || k === 'misses' || k === 'diskReads') this.retired[k] += slot.cache[k];
    }
    const lost = [...slot.jobs];
    slot.jobs.clear();
    if (this.stopping) return;
    this.hooks.workerExit(slot.index, err);
    for (const id of lost) this.hooks.ended(id, { event: 'failed', result: { reason: 'worker-exit', durationMs: 0, bytes: 0, retransmits: 0, error: err } });
  }
}
