import type { ReadCacheStats } from '../source/read-cache.js';
import type { TftpCounters, TransferInfo } from './events.js';
import type { SessionEnd } from './session.js';

/*
 * What the main thread and a transfer worker say to each other (structured clone over
 * the worker's port). One message per transfer event, never per packet; counters travel
 * as deltas with each message and on a slow timer.
 */

/** What a worker needs to serve reads; fixed for its life. */
export interface TransferWorkerConfig {
  family: 'udp4' | 'udp6';
  address: string;
  socketBufferBytes: number;
  retries: number;
  stallMs: number;
  busyPollUs: number;
  transferBytesPerSec: number;
  /** This worker's share of the global cap (0 = none). */
  globalBytesPerSec: number;
  /** This worker's share of the read cache budget. */
  cacheBytes: number;
  cacheChunkBytes: number;
  /** Log levels the main thread's logger has enabled (others are not even sent). */
  logDebug: boolean;
  logWarn: boolean;
  /** Counter flush period, ms. */
  flushMs: number;
}

/** A read the main thread has accepted: options agreed, target resolved, nothing opened. */
export interface ReadJob {
  id: number;
  info: TransferInfo;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  oack: Uint8Array | undefined;
  target: { kind: 'file'; path: string; size: number; mtimeMs: number } | { kind: 'data'; data: Uint8Array };
}

export type ToWorker = { t: 'read'; job: ReadJob } | { t: 'stop' };

export type FromWorker =
  | { t: 'ready' }
  /** Sockets open, session created: the main thread emits `start` and `options`. */
  | { t: 'started'; id: number }
  /** Sockets could not be opened (or the worker is stopping): no transfer. */
  | { t: 'open-failed'; id: number; message: string; stopping: boolean }
  | { t: 'end'; id: number; end: SessionEnd; counters: TftpCounters; cache: ReadCacheStats }
  | { t: 'counters'; counters: TftpCounters; cache: ReadCacheStats }
  | { t: 'log'; id: number; level: 'debug' | 'warn'; obj: object; msg: string }
  | { t: 'stopped'; counters: TftpCounters; cache: ReadCacheStats };
