import { createSocket, type Socket, type RemoteInfo } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { realpath } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { isIPv6 } from 'node:net';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { parseTftpServerConfig, type TftpServerConfig, type TftpServerConfigInput } from '../config.js';
import { TftpError, TftpErrors } from '../errors.js';
import { Opcode, TftpErrorCode } from '../packet/opcodes.js';
import { decodePacket } from '../packet/decode.js';
import { encodeError } from '../packet/error.js';
import { encodeOack } from '../packet/oack.js';
import type { RequestPacket } from '../packet/request.js';
import { negotiateOptions } from '../options.js';
import { normalizeRequestPath, resolveWritePath } from '../path-jail.js';
import { ReadCache, type ReadCacheStats } from '../source/read-cache.js';
import { sendBucket } from '../token-bucket.js';
import { discardTarget, openTarget, resolveReadTarget, targetSize, type ReadTarget, type TftpResolver } from './open-source.js';
import { Session, type SessionEnd, type SessionEnv } from './session.js';
import { openTransferSockets, type TransferSocketOptions } from './transfer-sockets.js';
import { TransferWorkerPool } from './worker-pool.js';
import { BusyPoll } from '../transfer/busy-poll.js';
import { newCounters, type TftpCounters, type TftpServerEvents, type TransferInfo } from './events.js';

export interface TftpServerDeps {
  /** pino logger; the server logs under `logger.child({ module: 'tftp' })`. Silent by default. */
  logger?: Logger;
  /** Looks paths up before the root directory (generated and per-machine content). */
  resolver?: TftpResolver;
}

export interface TftpServer {
  /** Binds the listening socket; resolves when ready. Idempotent. */
  start(): Promise<void>;
  /** Ends every transfer (ERROR 0 to its client), closes every socket. Idempotent. */
  stop(): Promise<void>;
  /** The bound address; throws TFTP_NOT_STARTED before start() resolved. */
  address(): { address: string; port: number; family: string };
  /** Live metrics counters (read them, do not write). */
  readonly counters: Readonly<TftpCounters>;
  /** Shared read cache figures. */
  readonly cacheStats: Readonly<ReadCacheStats>;
  readonly config: TftpServerConfig;
  on<K extends keyof TftpServerEvents>(event: K, listener: (...args: TftpServerEvents[K]) => void): TftpServer;
  off<K extends keyof TftpServerEvents>(event: K, listener: (...args: TftpServerEvents[K]) => void): TftpServer;
}

const BUSY_MESSAGE = 'server busy, retry later';

/** Creates a TFTP server. Nothing is bound until start(). */
export function createTftpServer(configInput: TftpServerConfigInput, deps: TftpServerDeps = {}): TftpServer {
  const config = parseTftpServerConfig(configInput);
  const logger = (deps.logger ?? pino({ enabled: false })).child({ module: 'tftp' });
  const emitter = new EventEmitter();
  const counters = newCounters();
  const cache = new ReadCache(config.cacheBytes, config.cacheChunkBytes);
  const sessions = new Set<Session>();
  /** Sessions whose socket is still open (includes WRQs dallying after their last ACK). */
  const sockets = new Set<Session>();
  /** Remote endpoints with a request being set up or a transfer running: a resent RRQ is ignored. */
  const busyPeers = new Set<string>();
  let pending = 0;
  let listener: Socket | undefined;
  let starting: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  let rootReal: string | undefined;
  let writeReal: string | undefined;
  let seq = 0;
  const family = isIPv6(config.address) ? 'udp6' : 'udp4';

  const emitEnd = (info: TransferInfo, end: SessionEnd): void => {
    emitter.emit(end.event, info, end.result);
  };
  const env: SessionEnv = {
    counters,
    log: (info) => logger.child({ transfer: info.id }),
    end: emitEnd,
    globalBucket: config.globalBytesPerSec > 0 ? sendBucket(config.globalBytesPerSec) : undefined,
    transferBytesPerSec: config.transferBytesPerSec,
    retries: config.retries,
    stallMs: config.stallMs,
    busyPoll: config.busyPollUs > 0 ? new BusyPoll(config.busyPollUs) : undefined,
  };

  function refuse(rinfo: RemoteInfo, filename: string, tftpCode: number, reason: string, message: string): void {
    counters.refused++;
    if (tftpCode === TftpErrorCode.FILE_NOT_FOUND) counters.notFound++;
    if (tftpCode === TftpErrorCode.ACCESS_VIOLATION) counters.accessDenied++;
    listener?.send(encodeError(tftpCode, message), rinfo.port, rinfo.address);
    logger.debug({ event: 'refused', remote: rinfo.address, port: rinfo.port, filename, tftpCode, reason }, 'request refused');
    emitter.emit('refused', { filename, remoteAddress: rinfo.address, remotePort: rinfo.port, tftpCode, reason });
  }

  function messageFor(code: number, reason: string): string {
    if (code === TftpErrorCode.FILE_NOT_FOUND) return 'file not found';
    if (code === TftpErrorCode.ACCESS_VIOLATION) return `access violation (${reason})`;
    return reason;
  }

  const socketOptions: TransferSocketOptions = { family, address: config.address, socketBufferBytes: config.socketBufferBytes };

  /** Reads running in workers, by transfer id. */
  const remote = new Map<number, { info: TransferInfo; peerKey: string }>();
  /** Reads handed to a worker whose sockets are not open yet. */
  const dispatching = new Map<number, { info: TransferInfo; peerKey: string; onStarted: () => void; settle: (started: boolean, failure?: string) => void }>();
  let pool: TransferWorkerPool | undefined;
  const updateActive = (): void => {
    counters.active = sessions.size + pending + remote.size;
  };

  function addCounts(delta: TftpCounters): void {
    for (const k in delta) {
      const key = k as keyof TftpCounters;
      if (key !== 'active') counters[key] += delta[key];
    }
  }

  function newPool(): TransferWorkerPool {
    const n = config.workers;
    return new TransferWorkerPool(
      n,
      {
        ...socketOptions,
        retries: config.retries,
        stallMs: config.stallMs,
        busyPollUs: config.busyPollUs,
        transferBytesPerSec: config.transferBytesPerSec,
        globalBytesPerSec: config.globalBytesPerSec > 0 ? Math.max(1, Math.floor(config.globalBytesPerSec / n)) : 0,
        cacheBytes: Math.floor(config.cacheBytes / n),
        cacheChunkBytes: config.cacheChunkBytes,
        logDebug: logger.isLevelEnabled('debug'),
        logWarn: logger.isLevelEnabled('warn'),
        flushMs: 250,
      },
      {
        started: (id) => {
          const d = dispatching.get(id);
          if (!d) return;
          dispatching.delete(id);
          remote.set(id, { info: d.info, peerKey: d.peerKey });
          d.onStarted();
          d.settle(true);
        },
        openFailed: (id, message, isStopping) => {
          const d = dispatching.get(id);
          if (!d) return;
          dispatching.delete(id);
          d.settle(false, isStopping || stopping ? undefined : message);
        },
        ended: (id, end) => {
          const d = dispatching.get(id);
          if (d) {
            dispatching.delete(id);
            d.settle(false, end.event === 'failed' ? end.result.reason : 'ended');
            return;
          }
          const r = remote.get(id);
          if (!r) return;
          remote.delete(id);
          busyPeers.delete(r.peerKey);
          updateActive();
          emitEnd(r.info, end);
        },
        counters: addCounts,
        log: (id, level, obj, msg) => logger.child({ transfer: id })[level](obj, msg),
        workerExit: (index, err, respawnMs) =>
          logger.error({ event: 'worker-exit', worker: index, err, respawnMs }, 'transfer worker exited; its transfers failed, a new one starts shortly'),
        workerRespawn: (index, err) => {
          if (err) logger.error({ event: 'worker-respawn-failed', worker: index, err }, 'replacement transfer worker did not start');
          else logger.info({ event: 'worker-respawned', worker: index }, 'replacement transfer worker ready');
        },
      },
    );
  }

  /** Hands a read to a worker; resolves once its sockets are open (true) or could not be (false). */
  function dispatchRead(
    info: TransferInfo,
    peerKey: string,
    target: Extract<ReadTarget, { kind: 'file' | 'data' }>,
    p: { blksize: number; windowsize: number; timeoutMs: number; oack: Buffer | undefined },
    onStarted: () => void,
  ): Promise<{ started: boolean; failure?: string }> | undefined {
    const p2 = pool;
    if (!p2 || p2.size === 0) return undefined;
    return new Promise((resolve) => {
      dispatching.set(info.id, { info, peerKey, onStarted, settle: (started, failure) => resolve({ started, failure }) });
      const sent = p2.dispatch({
        id: info.id,
        info,
        blksize: p.blksize,
        windowsize: p.windowsize,
        timeoutMs: p.timeoutMs,
        oack: p.oack ? new Uint8Array(p.oack) : undefined,
        // copy resolver bytes into a buffer of their own: a pooled Buffer would clone its whole pool
        target: target.kind === 'file' ? target : { kind: 'data', data: new Uint8Array(target.data) },
      });
      if (!sent) {
        // only while stopping (a pool with no live worker is not asked)
        dispatching.delete(info.id);
        resolve({ started: false });
      }
    });
  }

  /** Resolves true when a transfer started (its slot is then released when it ends). */
  async function handleRequest(req: RequestPacket, rinfo: RemoteInfo, peerKey: string): Promise<boolean> {
    const isRead = req.opcode === Opcode.RRQ;
    if (req.mode === 'mail' || (req.mode === 'netascii' && !config.netascii)) {
      refuse(rinfo, req.filename, TftpErrorCode.ILLEGAL_OPERATION, 'mode', `mode ${req.mode} not supported`);
      return false;
    }
    const mode = req.mode;
    const norm = normalizeRequestPath(req.filename, config.absolutePaths);
    if (!norm.ok) {
      refuse(rinfo, req.filename, norm.tftpCode, norm.reason, messageFor(norm.tftpCode, norm.reason));
      return false;
    }
    const neg = negotiateOptions(req.options, config);
    const info: TransferInfo = {
      id: ++seq,
      kind: isRead ? 'read' : 'write',
      filename: norm.value,
      mode,
      remoteAddress: rinfo.address,
      remotePort: rinfo.port,
    };
    let tsize: number | undefined;
    let start: (s: Session) => void;
    let cleanup = (): void => {};
    let target: ReadTarget | undefined;
    if (isRead) {
      let resolved;
      try {
        resolved = await resolveReadTarget(norm.value, { remoteAddress: rinfo.address, remotePort: rinfo.port, mode }, { rootReal, resolver: deps.resolver });
      } catch (err) {
        logger.warn({ event: 'resolver-error', err, filename: norm.value }, 'resolver failed');
        refuse(rinfo, req.filename, TftpErrorCode.NOT_DEFINED, 'resolver-error', 'internal error');
        return false;
      }
      if (!resolved.ok) {
        refuse(rinfo, req.filename, resolved.tftpCode, resolved.reason, messageFor(resolved.tftpCode, resolved.reason));
        return false;
      }
      target = resolved.value;
      const size = targetSize(target, mode);
      // tsize 0 is left out: curl (7.88) ends an empty download right after such an OACK
      // without reading DATA 1 and fails (it fails the same way against dnsmasq).
      tsize = neg.tsizeAsked && size !== 0 ? size : undefined;
      const t = target;
      start = (s) => {
        const source = openTarget(t, mode, cache);
        cleanup = () => source.close();
        s.startRead(source);
      };
      cleanup = () => discardTarget(t);
    } else {
      const w = config.write;
      if (!w || writeReal === undefined) {
        refuse(rinfo, req.filename, TftpErrorCode.ACCESS_VIOLATION, 'write-disabled', 'write requests are not accepted');
        return false;
      }
      const target = await resolveWritePath(writeReal, norm.value);
      if (!target.ok) {
        refuse(rinfo, req.filename, target.tftpCode, target.reason, messageFor(target.tftpCode, target.reason));
        return false;
      }
      if (target.value.exists && !w.overwrite) {
        refuse(rinfo, req.filename, TftpErrorCode.FILE_EXISTS, 'exists', 'file already exists');
        return false;
      }
      if (neg.clientTsize !== undefined && neg.clientTsize > w.maxBytes) {
        refuse(rinfo, req.filename, TftpErrorCode.DISK_FULL, 'too-large', 'file too large');
        return false;
      }
      tsize = neg.tsizeAsked ? neg.clientTsize : undefined;
      const path = target.value.path;
      const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.part`);
      start = (s) =>
        s.startWrite({
          path,
          tmp,
          stream: createWriteStream(tmp, { flags: 'wx', mode: 0o644 }),
          overwrite: w.overwrite,
          maxBytes: w.maxBytes,
          netascii: mode === 'netascii',
        });
    }
    const oackPairs = neg.oack.slice();
    const tsizeAt = req.options.findIndex(([k]) => k === 'tsize');
    if (tsize !== undefined && tsizeAt >= 0) {
      // keep the client's order: insert tsize after the options that preceded it
      const before = req.options.slice(0, tsizeAt).filter(([k]) => oackPairs.some(([o]) => o === k)).length;
      oackPairs.splice(before, 0, ['tsize', String(tsize)]);
    }
    const timeoutMs = neg.timeoutMs ?? config.timeoutMs;
    const params = { blksize: neg.blksize, windowsize: neg.windowsize, timeoutMs, oack: oackPairs.length > 0 ? encodeOack(oackPairs) : undefined };
    const emitStart = (): void => {
      if (isRead) counters.reads++;
      else counters.writes++;
      logger.debug({ event: 'start', transfer: info.id, kind: info.kind, filename: info.filename, remote: info.remoteAddress, port: info.remotePort }, 'transfer start');
      emitter.emit('start', info);
      emitter.emit('options', info, { blksize: neg.blksize, windowsize: neg.windowsize, timeoutMs, tsize, oack: oackPairs.length > 0 });
    };
    if (target !== undefined && target.kind !== 'stream') {
      // A file or resolver bytes: served by a transfer worker when there are any.
      const handed = dispatchRead(info, peerKey, target, params, emitStart);
      if (handed) {
        const r = await handed;
        if (!r.started && r.failure !== undefined) throw new Error(`transfer worker could not start the transfer: ${r.failure}`);
        return r.started;
      }
    }
    let socket: Socket;
    let strangers: Socket | undefined;
    try {
      ({ socket, strangers } = await openTransferSockets(socketOptions, rinfo.port, rinfo.address));
    } catch (err) {
      cleanup();
      throw err;
    }
    if (stopping) {
      cleanup();
      socket.close();
      strangers?.close();
      return false;
    }
    const session = new Session(
      env,
      info,
      socket,
      params,
      {
        onRelease: (s) => {
          sessions.delete(s);
          busyPeers.delete(peerKey);
          updateActive();
        },
        onSocketClosed: (s) => sockets.delete(s),
      },
      strangers,
    );
    sessions.add(session);
    sockets.add(session);
    emitStart();
    start(session);
    return true;
  }

  function onListenerMessage(msg: Buffer, rinfo: RemoteInfo): void {
    const d = decodePacket(msg);
    if (!d.ok) {
      counters.malformed++;
      // Answer what looks like a request with ERROR 4; stay silent on noise shorter than
      // an opcode and never answer anything that claims to be an ERROR.
      if (msg.length >= 2 && !(msg[0] === 0 && msg[1] === Opcode.ERROR)) {
        listener?.send(encodeError(TftpErrorCode.ILLEGAL_OPERATION, `malformed request (${d.error})`), rinfo.port, rinfo.address);
      }
      return;
    }
    const p = d.packet;
    if (p.opcode !== Opcode.RRQ && p.opcode !== Opcode.WRQ) return; // stray DATA/ACK/OACK/ERROR: silence
    const peerKey = `${rinfo.address}|${rinfo.port}`;
    if (busyPeers.has(peerKey)) return; // a resent request for a transfer already under way
    counters.requests++;
    if (sessions.size + pending + remote.size >= config.maxTransfers) {
      counters.busy++;
      refuse(rinfo, p.filename, config.busyErrorCode, 'busy', BUSY_MESSAGE);
      return;
    }
    busyPeers.add(peerKey);
    pending++;
    updateActive();
    let started = false;
    handleRequest(p, rinfo, peerKey)
      .then((s) => {
        started = s;
      })
      .catch((err: unknown) => {
        logger.error({ event: 'request-error', err }, 'request handling failed');
        refuse(rinfo, p.filename, TftpErrorCode.NOT_DEFINED, 'internal', 'internal error');
      })
      .finally(() => {
        pending--;
        if (!started) busyPeers.delete(peerKey);
        updateActive();
      });
  }

  async function doStart(): Promise<void> {
    const real = async (dir: string, key: string): Promise<string> => {
      try {
        return await realpath(dir);
      } catch (err) {
        throw new TftpError(TftpErrors.ROOT_INVALID, `${key} ${dir} cannot be resolved: ${(err as Error).message}`, { cause: err, details: { key, dir } });
      }
    };
    if (config.root !== undefined) rootReal = await real(config.root, 'root');
    if (config.write) writeReal = await real(config.write.dir, 'write.dir');
    if (config.workers > 0) {
      const p = newPool();
      await p.start();
      pool = p;
    }
    const s = createSocket({ type: family });
    try {
      await new Promise<void>((resolve, reject) => {
        s.once('error', (err) =>
          reject(new TftpError(TftpErrors.BIND_FAILED, `cannot bind ${config.address}:${config.port}: ${err.message}`, { cause: err })),
        );
        s.bind(config.port, config.address, () => resolve());
      });
    } catch (err) {
      const p = pool;
      pool = undefined;
      await p?.stop();
      throw err;
    }
    s.removeAllListeners('error');
    s.on('error', (err) => logger.error({ event: 'listener-error', err }, 'listening socket error'));
    try {
      s.setRecvBufferSize(Math.min(config.socketBufferBytes || 256 * 1024, 4 * 1024 * 1024));
    } catch {
      // capped by the kernel
    }
    s.on('message', onListenerMessage);
    listener = s;
    const a = s.address();
    logger.info({ event: 'listening', address: a.address, port: a.port, root: config.root, workers: config.workers }, 'tftp server listening');
  }

  const server: TftpServer = {
    config,
    counters,
    get cacheStats() {
      if (!pool) return cache.stats;
      const w = pool.cacheStats();
      const own = cache.stats;
      return { files: own.files + w.files, chunks: own.chunks + w.chunks, bytes: own.bytes + w.bytes, hits: own.hits + w.hits, misses: own.misses + w.misses, diskReads: own.diskReads + w.diskReads };
    },
    start() {
      if (stopping) return Promise.reject(new TftpError(TftpErrors.NOT_STARTED, 'server was stopped'));
      starting ??= doStart().catch((err: unknown) => {
        starting = undefined;
        if (err instanceof TftpError) throw err;
        throw new TftpError(TftpErrors.BIND_FAILED, `tftp server failed to start: ${String(err)}`, { cause: err });
      });
      return starting;
    },
    stop() {
      stopping ??= (async () => {
        if (starting) await starting.catch(() => {});
        const l = listener;
        listener = undefined;
        for (const s of [...sessions]) s.fail('server-stopped');
        await pool?.stop();
        for (const d of [...dispatching.values()]) d.settle(false);
        dispatching.clear();
        for (const [id, r] of [...remote]) {
          // a worker that had to be terminated never reported these
          remote.delete(id);
          emitEnd(r.info, { event: 'failed', result: { reason: 'server-stopped', durationMs: 0, bytes: 0, retransmits: 0 } });
        }
        updateActive();
        await new Promise((r) => setTimeout(r, 5));
        for (const s of [...sockets]) s.closeSocket();
        if (l) await new Promise<void>((r) => l.close(() => r()));
        cache.clear();
        logger.info({ event: 'stopped' }, 'tftp server stopped');
      })();
      return stopping;
    },
    address() {
      const a = listener?.address();
      if (!a) throw new TftpError(TftpErrors.NOT_STARTED, 'tftp server is not listening');
      return { address: a.address, port: a.port, family: a.family };
    },
    on(event, listener) {
      emitter.on(event, listener as (...args: unknown[]) => void);
      return server;
    },
    off(event, listener) {
      emitter.off(event, listener as (...args: unknown[]) => void);
      return server;
    },
  };
  return server;
}
