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
import { TokenBucket } from '../token-bucket.js';
import { openReadSource, type TftpResolver } from './open-source.js';
import { Session, type SessionEnv } from './session.js';
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

  const env: SessionEnv = {
    counters,
    logger,
    emit: (event, ...args) => {
      emitter.emit(event, ...args);
    },
    globalBucket: config.globalBytesPerSec > 0 ? new TokenBucket(config.globalBytesPerSec) : undefined,
    transferBytesPerSec: config.transferBytesPerSec,
    retries: config.retries,
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

  function bindSocket(port: number, sendBuffer: boolean): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = createSocket({ type: family, reuseAddr: true });
      const onErr = (err: Error): void => {
        s.close();
        reject(err);
      };
      s.once('error', onErr);
      s.bind(port, config.address, () => {
        s.off('error', onErr);
        if (sendBuffer && config.socketBufferBytes > 0) {
          try {
            s.setSendBufferSize(config.socketBufferBytes);
          } catch {
            // the kernel caps it (net.core.wmem_max); the default works too
          }
        }
        resolve(s);
      });
    });
  }

  /**
   * The transfer socket (a fresh port: the TID), connected to the client, plus the
   * "strangers" socket on the same port that answers everyone else with ERROR 5. Falls
   * back to one unconnected socket if the second bind or the connect fails.
   */
  async function openTransferSockets(peerPort: number, peerAddress: string): Promise<{ socket: Socket; strangers: Socket | undefined }> {
    const socket = await bindSocket(0, true);
    let strangers: Socket | undefined;
    let connectTried = false;
    try {
      strangers = await bindSocket(socket.address().port, false);
      connectTried = true;
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.connect(peerPort, peerAddress, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      return { socket, strangers };
    } catch {
      strangers?.close();
      if (!connectTried) return { socket, strangers: undefined };
      socket.close(); // a failed connect leaves the socket in an unknown state

      return { socket: await bindSocket(0, true), strangers: undefined };
    }
  }

  async function handleRequest(req: RequestPacket, rinfo: RemoteInfo, peerKey: string): Promise<void> {
    const isRead = req.opcode === Opcode.RRQ;
    if (req.mode === 'mail' || (req.mode === 'netascii' && !config.netascii)) {
      refuse(rinfo, req.filename, TftpErrorCode.ILLEGAL_OPERATION, 'mode', `mode ${req.mode} not supported`);
      return;
    }
    const mode = req.mode;
    const norm = normalizeRequestPath(req.filename, config.absolutePaths);
    if (!norm.ok) {
      refuse(rinfo, req.filename, norm.tftpCode, norm.reason, messageFor(norm.tftpCode, norm.reason));
      return;
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
    if (isRead) {
      let opened;
      try {
        opened = await openReadSource(norm.value, { remoteAddress: rinfo.address, remotePort: rinfo.port, mode }, {
          rootReal,
          resolver: deps.resolver,
          cache,
        });
      } catch (err) {
        logger.warn({ event: 'resolver-error', err, filename: norm.value }, 'resolver failed');
        refuse(rinfo, req.filename, TftpErrorCode.NOT_DEFINED, 'resolver-error', 'internal error');
        return;
      }
      if (!opened.ok) {
        refuse(rinfo, req.filename, opened.tftpCode, opened.reason, messageFor(opened.tftpCode, opened.reason));
        return;
      }
      const source = opened.value;
      // tsize 0 is left out: curl (7.88) ends an empty download right after such an OACK
      // without reading DATA 1 and fails (it fails the same way against dnsmasq).
      tsize = neg.tsizeAsked && source.size !== 0 ? source.size : undefined;
      start = (s) => s.startRead(source);
      cleanup = () => source.close();
    } else {
      const w = config.write;
      if (!w || writeReal === undefined) {
        refuse(rinfo, req.filename, TftpErrorCode.ACCESS_VIOLATION, 'write-disabled', 'write requests are not accepted');
        return;
      }
      const target = await resolveWritePath(writeReal, norm.value);
      if (!target.ok) {
        refuse(rinfo, req.filename, target.tftpCode, target.reason, messageFor(target.tftpCode, target.reason));
        return;
      }
      if (target.value.exists && !w.overwrite) {
        refuse(rinfo, req.filename, TftpErrorCode.FILE_EXISTS, 'exists', 'file already exists');
        return;
      }
      if (neg.clientTsize !== undefined && neg.clientTsize > w.maxBytes) {
        refuse(rinfo, req.filename, TftpErrorCode.DISK_FULL, 'too-large', 'file too large');
        return;
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
    let socket: Socket;
    let strangers: Socket | undefined;
    try {
      ({ socket, strangers } = await openTransferSockets(rinfo.port, rinfo.address));
    } catch (err) {
      cleanup();
      throw err;
    }
    if (stopping) {
      cleanup();
      socket.close();
      strangers?.close();
      return;
    }
    const timeoutMs = neg.timeoutMs ?? config.timeoutMs;
    const session = new Session(
      env,
      info,
      socket,
      { blksize: neg.blksize, windowsize: neg.windowsize, timeoutMs, oack: oackPairs.length > 0 ? encodeOack(oackPairs) : undefined },
      {
        onRelease: (s) => {
          sessions.delete(s);
          busyPeers.delete(peerKey);
          counters.active = sessions.size + pending;
        },
        onSocketClosed: (s) => sockets.delete(s),
      },
      strangers,
    );
    sessions.add(session);
    sockets.add(session);
    if (isRead) counters.reads++;
    else counters.writes++;
    logger.debug({ event: 'start', transfer: info.id, kind: info.kind, filename: info.filename, remote: info.remoteAddress, port: info.remotePort }, 'transfer start');
    emitter.emit('start', info);
    emitter.emit('options', info, { blksize: neg.blksize, windowsize: neg.windowsize, timeoutMs, tsize, oack: oackPairs.length > 0 });
    start(session);
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
    if (sessions.size + pending >= config.maxTransfers) {
      counters.busy++;
      refuse(rinfo, p.filename, config.busyErrorCode, 'busy', BUSY_MESSAGE);
      return;
    }
    busyPeers.add(peerKey);
    pending++;
    counters.active = sessions.size + pending;
    handleRequest(p, rinfo, peerKey)
      .catch((err: unknown) => {
        logger.error({ event: 'request-error', err }, 'request handling failed');
        refuse(rinfo, p.filename, TftpErrorCode.NOT_DEFINED, 'internal', 'internal error');
      })
      .finally(() => {
        pending--;
        if (![...sessions].some((s) => `${s.info.remoteAddress}|${s.info.remotePort}` === peerKey)) busyPeers.delete(peerKey);
        counters.active = sessions.size + pending;
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
    const s = createSocket({ type: family });
    await new Promise<void>((resolve, reject) => {
      s.once('error', (err) =>
        reject(new TftpError(TftpErrors.BIND_FAILED, `cannot bind ${config.address}:${config.port}: ${err.message}`, { cause: err })),
      );
      s.bind(config.port, config.address, () => resolve());
    });
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
    logger.info({ event: 'listening', address: a.address, port: a.port, root: config.root }, 'tftp server listening');
  }

  const server: TftpServer = {
    config,
    counters,
    cacheStats: cache.stats,
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
