import type { MessagePort } from 'node:worker_threads';
import { ReadCache } from '../source/read-cache.js';
import { sendBucket } from '../token-bucket.js';
import { BusyPoll } from '../transfer/busy-poll.js';
import { openTarget, type ReadTarget } from './open-source.js';
import { openTransferSockets } from './transfer-sockets.js';
import { SharedTransferSocket } from './shared-socket.js';
import type { TransferSocket } from '../transfer/transfer-socket.js';
import { Session, type SessionEnd, type SessionEnv, type SessionLog } from './session.js';
import { newCounters, type TftpCounters, type TransferInfo } from './events.js';
import type { FromWorker, ReadJob, ToWorker, TransferWorkerConfig } from './worker-messages.js';

/*
 * A transfer worker: serves the reads the main thread hands it from its own read cache,
 * all on one data socket of its own (see shared-socket.ts; a client already served here
 * from the same port gets a socket of its own). It reports each transfer's start and end, log
 * lines at the levels the main logger has enabled, and counter deltas; the main thread
 * turns those into the server's events and counters.
 */

/** Structured clone keeps an Error's name, message and stack; anything else becomes a string. */
function cloneable(v: unknown): unknown {
  if (v === undefined || v instanceof Error) return v;
  return String(v);
}

function hasCounts(c: TftpCounters): boolean {
  for (const k in c) if (c[k as keyof TftpCounters] !== 0) return true;
  return false;
}

export function runTransferWorker(port: MessagePort, config: TransferWorkerConfig): void {
  const cache = new ReadCache(config.cacheBytes, config.cacheChunkBytes);
  let counters = newCounters();
  const sessions = new Map<number, Session>();
  const sockets = new Set<Session>();
  let stopping = false;

  const post = (m: FromWorker): void => {
    try {
      port.postMessage(m);
    } catch {
      // an uncloneable value slipped into a log line: drop that line, never the worker
    }
  };
  const takeCounters = (): TftpCounters => {
    const c = counters;
    counters = newCounters();
    return c;
  };

  const log = (info: TransferInfo): SessionLog => ({
    debug(obj, msg) {
      if (config.logDebug) post({ t: 'log', id: info.id, level: 'debug', obj: { ...obj, err: cloneable((obj as { err?: unknown }).err) }, msg });
    },
    warn(obj, msg) {
      if (config.logWarn) post({ t: 'log', id: info.id, level: 'warn', obj: { ...obj, err: cloneable((obj as { err?: unknown }).err) }, msg });
    },
  });

  const env: SessionEnv = {
    get counters() {
      return counters;
    },
    log,
    end(info: TransferInfo, end: SessionEnd) {
      if (end.event === 'failed' && end.result.error !== undefined) end = { event: 'failed', result: { ...end.result, error: cloneable(end.result.error) } };
      post({ t: 'end', id: info.id, end, counters: takeCounters(), cache: { ...cache.stats } });
    },
    globalBucket: config.globalBytesPerSec > 0 ? sendBucket(config.globalBytesPerSec) : undefined,
    transferBytesPerSec: config.transferBytesPerSec,
    retries: config.retries,
    stallMs: config.stallMs,
    busyPoll: config.busyPollUs > 0 ? new BusyPoll(config.busyPollUs) : undefined,
  };

  const flush = setInterval(() => {
    if (hasCounts(counters)) post({ t: 'counters', counters: takeCounters(), cache: { ...cache.stats } });
  }, config.flushMs);
  flush.unref();

  let shared: Promise<SharedTransferSocket> | undefined;
  const sharedSocket = (): Promise<SharedTransferSocket> => {
    if (!shared) {
      shared = SharedTransferSocket.open(config, () => counters.unknownTid++);
      shared.catch(() => (shared = undefined)); // the next read tries again
    }
    return shared;
  };

  async function read(job: ReadJob): Promise<void> {
    const { info } = job;
    const t = job.target;
    const target: ReadTarget = t.kind === 'file' ? t : { kind: 'data', data: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength) };
    let socket: TransferSocket | undefined;
    let strangers: TransferSocket | undefined;
    try {
      socket = (await sharedSocket()).attach(info.remoteAddress, info.remotePort);
      if (!socket) ({ socket, strangers } = await openTransferSockets(config, info.remotePort, info.remoteAddress));
    } catch (err) {
      post({ t: 'open-failed', id: job.id, message: (err as Error).message, stopping });
      return;
    }
    if (stopping) {
      socket.close();
      strangers?.close();
      post({ t: 'open-failed', id: job.id, message: 'stopping', stopping: true });
      return;
    }
    const source = openTarget(target, info.mode, cache);
    const oack = job.oack ? Buffer.from(job.oack.buffer, job.oack.byteOffset, job.oack.byteLength) : undefined;
    const session = new Session(
      env,
      info,
      socket,
      { blksize: job.blksize, windowsize: job.windowsize, timeoutMs: job.timeoutMs, oack },
      {
        onRelease: (s) => sessions.delete(s.info.id),
        onSocketClosed: (s) => sockets.delete(s),
      },
      strangers,
    );
    sessions.set(job.id, session);
    sockets.add(session);
    post({ t: 'started', id: job.id });
    session.startRead(source);
  }

  async function stop(): Promise<void> {
    stopping = true;
    env.busyPoll?.stop();
    for (const s of [...sessions.values()]) s.fail('server-stopped');
    await new Promise((r) => setTimeout(r, 5));
    for (const s of [...sockets]) s.closeSocket();
    if (shared) await shared.then((s) => s.close(), () => {});
    clearInterval(flush);
    cache.clear();
    post({ t: 'stopped', counters: takeCounters(), cache: { ...cache.stats } });
    port.close();
  }

  port.on('message', (m: ToWorker) => {
    if (m.t === 'read') void read(m.job);
    else if (m.t === 'stop') void stop();
  });
  post({ t: 'ready' });
}
