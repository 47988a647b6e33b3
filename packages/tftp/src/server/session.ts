import type { RemoteInfo } from 'node:dgram';
import type { TransferSocket } from '../transfer/transfer-socket.js';
import type { WriteStream } from 'node:fs';
import { link, rename, unlink } from 'node:fs/promises';
import { Opcode, TftpErrorCode } from '../packet/opcodes.js';
import { ackBlock } from '../packet/ack.js';
import { encodeAck } from '../packet/ack.js';
import { encodeError } from '../packet/error.js';
import { decodePacket } from '../packet/decode.js';
import { BlockSender, type SenderEnd } from '../transfer/sender.js';
import type { BusyPoll } from '../transfer/busy-poll.js';
import { BlockReceiver, type ReceiverEnd } from '../transfer/receiver.js';
import type { ByteSource } from '../source/byte-source.js';
import { sendBucket, type TokenBucket } from '../token-bucket.js';
import { answerStranger } from './transfer-sockets.js';
import { NetasciiDecoder } from '../netascii.js';
import type { TftpCounters, TransferInfo, TftpServerEvents, FailReason } from './events.js';

/*
 * One transfer on its own socket (its TID). Datagrams from any other address:port get
 * ERROR 5 and the transfer carries on. For speed the socket is connect()ed to the client
 * (the kernel then filters and routes once); a second socket bound to the same port with
 * SO_REUSEADDR receives what the kernel no longer hands the connected one - datagrams from
 * strangers - and answers them with ERROR 5 from the transfer's port. A read with an OACK waits for ACK 0 (resending the
 * OACK on timeout) before the first DATA; ERROR 8 in that phase is the client declining
 * our options - a normal end, counted apart from failures.
 *
 * Stall watchdog: whatever timeout was agreed, a transfer whose peer makes no progress (no
 * ACK 0 for the OACK, no ACK advancing the window, no new DATA block) for `stallMs` is
 * ended with an ERROR and its slot freed. It reads the sender's and receiver's counts from
 * one timer per transfer (ticks of stallMs / 10, 50 ms to 1 s), so the per-packet path
 * gains nothing.
 */

/** A transfer's logger (a pino child in the main thread, a forwarder in a worker). */
export interface SessionLog {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** How a transfer ended, as the server's `done`, `failed` and `aborted` events carry it. */
export type SessionEnd =
  | { event: 'done'; result: TftpServerEvents['done'][1] }
  | { event: 'failed'; result: TftpServerEvents['failed'][1] }
  | { event: 'aborted'; result: TftpServerEvents['aborted'][1] };

export interface SessionEnv {
  counters: TftpCounters;
  log: (info: TransferInfo) => SessionLog;
  /** Called once per transfer, after its slot is released. */
  end: (info: TransferInfo, end: SessionEnd) => void;
  globalBucket: TokenBucket | undefined;
  transferBytesPerSec: number;
  retries: number;
  /** No-progress limit of one transfer, ms (config `stallMs`). */
  stallMs: number;
  /** This event loop's busy poller (shared by its transfers); none = off. */
  busyPoll?: BusyPoll;
}

export interface SessionParams {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  oack: Buffer | undefined;
}

export interface WriteTarget {
  path: string;
  tmp: string;
  stream: WriteStream;
  overwrite: boolean;
  maxBytes: number;
  netascii: boolean;
}

export class Session {
  private sender: BlockSender | undefined;
  private receiver: BlockReceiver | undefined;
  private source: ByteSource | undefined;
  private write: WriteTarget | undefined;
  private awaitingOackAck = false;
  private oackRetries = 0;
  private oackTimer: NodeJS.Timeout | undefined;
  private readonly startedAt = performance.now();
  private ended = false;
  private closed = false;
  private errorInFlight = false;
  private readonly log: SessionLog;
  private watchdog: NodeJS.Timeout | undefined;
  private lastMark = -1;
  private idleTicks = 0;

  constructor(
    private readonly env: SessionEnv,
    readonly info: TransferInfo,
    private readonly socket: TransferSocket,
    private readonly params: SessionParams,
    private readonly hooks: { onRelease: (s: Session) => void; onSocketClosed: (s: Session) => void },
    /** Set when `socket` is connected: receives datagrams from everyone else. */
    private readonly strangers: TransferSocket | undefined,
  ) {
    this.log = env.log(info);
    this.connected = strangers !== undefined;
    socket.on('message', this.onMessage);
    socket.on('error', (error) => this.fail('socket-error', { error }));
    strangers?.on('message', (msg: Buffer, rinfo: RemoteInfo) => this.onStranger(msg, rinfo, strangers));
    strangers?.on('error', () => {});
    this.armWatchdog();
  }

  /** Progress so far: grows with each ACK 0 of an OACK, ACK advancing the window, new DATA block. */
  private progressMark(): number {
    const oackDone = this.params.oack !== undefined && !this.awaitingOackAck && this.sender !== undefined ? 1 : 0;
    return oackDone + (this.sender?.acked ?? 0) + (this.receiver?.received ?? 0);
  }

  private armWatchdog(): void {
    const tick = Math.max(50, Math.min(1000, Math.floor(this.env.stallMs / 10)));
    const limitTicks = Math.ceil(this.env.stallMs / tick);
    this.watchdog = setInterval(() => {
      if (this.ended) return;
      const mark = this.progressMark();
      if (mark !== this.lastMark) {
        this.lastMark = mark;
        this.idleTicks = 0;
        return;
      }
      if (++this.idleTicks >= limitTicks) {
        this.env.counters.stalled++;
        this.fail('stalled');
      }
    }, tick);
    this.watchdog.unref();
  }

  private readonly connected: boolean;

  private send(buf: Buffer, cb?: () => void): void {
    if (this.connected) this.socket.send(buf, cb);
    else this.socket.send(buf, this.info.remotePort, this.info.remoteAddress, cb);
  }

  private onStranger(msg: Buffer, rinfo: RemoteInfo, via: TransferSocket): void {
    this.env.counters.unknownTid++;
    answerStranger(msg, rinfo, via);
  }

  private buckets(): TokenBucket[] {
    const b: TokenBucket[] = [];
    if (this.env.transferBytesPerSec > 0) b.push(sendBucket(this.env.transferBytesPerSec));
    if (this.env.globalBucket) b.push(this.env.globalBucket);
    return b;
  }

  startRead(source: ByteSource): void {
    this.source = source;
    this.sender = new BlockSender({
      socket: this.socket,
      port: this.info.remotePort,
      address: this.info.remoteAddress,
      source,
      blksize: this.params.blksize,
      windowsize: this.params.windowsize,
      timeoutMs: this.params.timeoutMs,
      retries: this.env.retries,
      buckets: this.buckets(),
      connected: this.connected,
      busyPoll: this.env.busyPoll,
      onEnd: (end) => this.onSenderEnd(end),
    });
    if (this.params.oack) {
      this.awaitingOackAck = true;
      this.sendOack();
    } else this.sender.start();
  }

  private sendOack(): void {
    const pkt = this.params.oack!;
    this.send(pkt);
    this.oackTimer = setTimeout(() => {
      this.oackTimer = undefined;
      if (!this.awaitingOackAck || this.ended) return;
      if (this.oackRetries++ >= this.env.retries) {
        this.fail('timeout');
        return;
      }
      this.env.counters.retransmits++;
      this.sendOack();
    }, this.params.timeoutMs);
  }

  startWrite(target: WriteTarget): void {
    this.write = target;
    const decoder = target.netascii ? new NetasciiDecoder() : undefined;
    target.stream.on('error', (error) => this.fail('write-error', { error }));
    const opening = this.params.oack ?? encodeAck(0);
    this.receiver = new BlockReceiver({
      socket: this.socket,
      port: this.info.remotePort,
      address: this.info.remoteAddress,
      blksize: this.params.blksize,
      windowsize: this.params.windowsize,
      timeoutMs: this.params.timeoutMs,
      retries: this.env.retries,
      maxBytes: target.maxBytes,
      opening,
      connected: this.connected,
      sink: (data) => {
        target.stream.write(decoder ? decoder.push(data) : data);
      },
      onEnd: (end) => void this.onReceiverEnd(end, decoder),
    });
    this.send(opening);
    this.receiver.start();
  }

  private readonly onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    if (!this.connected && (rinfo.port !== this.info.remotePort || rinfo.address !== this.info.remoteAddress)) {
      this.onStranger(msg, rinfo, this.socket);
      return;
    }
    const sender = this.sender;
    if (sender !== undefined && !this.awaitingOackAck) {
      const b = ackBlock(msg);
      if (b >= 0) {
        sender.onAck(b);
        return;
      }
    }
    const d = decodePacket(msg);
    if (!d.ok) {
      this.env.counters.malformed++;
      return;
    }
    const p = d.packet;
    if (p.opcode === Opcode.ACK) {
      if (this.awaitingOackAck && p.block === 0) {
        this.awaitingOackAck = false;
        if (this.oackTimer) clearTimeout(this.oackTimer);
        this.oackTimer = undefined;
        sender?.start();
      }
    } else if (p.opcode === Opcode.DATA) {
      this.receiver?.onData(p.block, p.data);
    } else if (p.opcode === Opcode.ERROR) {
      // ERROR 8 answering our OACK (before ACK 0 of a read, before DATA 1 of a write) is the client declining our options.
      const answersOack = this.awaitingOackAck || (this.receiver !== undefined && this.params.oack !== undefined && !this.receiver.receivedAny);
      if (answersOack && p.code === TftpErrorCode.OPTION_NEGOTIATION) this.abortByPeer();
      else this.fail('peer-error', { peerCode: p.code, peerMessage: p.message });
    } else this.env.counters.malformed++;
  };

  private onSenderEnd(end: SenderEnd): void {
    const s = this.sender!;
    this.env.counters.duplicateAcks += s.duplicateAcks;
    this.env.counters.strayAcks += s.strayAcks;
    if (end.ok) this.succeed(end.bytes, end.retransmits);
    else this.fail(end.reason, { error: end.error });
  }

  private async onReceiverEnd(end: ReceiverEnd, decoder: NetasciiDecoder | undefined): Promise<void> {
    const w = this.write!;
    if (!end.ok) {
      if (end.reason === 'too-large') this.sendError(TftpErrorCode.DISK_FULL, 'file too large');
      this.fail(end.reason, {});
      return;
    }
    try {
      await new Promise<void>((resolve, reject) => {
        w.stream.once('error', reject);
        w.stream.end(decoder ? decoder.end() : undefined, () => resolve());
      });
      if (w.overwrite) await rename(w.tmp, w.path);
      else {
        await link(w.tmp, w.path);
        await unlink(w.tmp);
      }
      this.write = undefined;
      this.succeed(end.bytes, end.retransmits, true);
    } catch (error) {
      this.fail('write-error', { error });
    }
  }

  /** Sends an ERROR to the peer; the socket then closes once it is on the wire. */
  private sendError(code: number, message: string): void {
    if (this.closed || this.errorInFlight) return;
    this.errorInFlight = true;
    this.send(encodeError(code, message), () => {
      this.errorInFlight = false;
      if (this.ended) this.closeSocket();
    });
  }

  private succeed(bytes: number, retransmits: number, dally = false): void {
    if (this.ended) return;
    this.ended = true;
    const durationMs = performance.now() - this.startedAt;
    const c = this.env.counters;
    c.completed++;
    c.retransmits += retransmits;
    if (this.info.kind === 'read') c.bytesSent += bytes;
    else c.bytesReceived += bytes;
    this.log.debug({ event: 'done', bytes, durationMs, retransmits }, 'transfer done');
    this.release(dally);
    this.env.end(this.info, { event: 'done', result: { bytes, durationMs, retransmits } });
  }

  private abortByPeer(): void {
    if (this.ended) return;
    this.ended = true;
    this.env.counters.optionAborts++;
    const durationMs = performance.now() - this.startedAt;
    const w = this.write;
    if (w) {
      discard(w.stream, w.tmp);
      this.write = undefined;
    }
    this.log.debug({ event: 'option-negotiation-abort' }, 'client ended the transfer after OACK');
    this.release(false);
    this.env.end(this.info, { event: 'aborted', result: { reason: 'option-negotiation', durationMs } });
  }

  fail(
    reason: FailReason,
    extra: { error?: unknown; peerCode?: number; peerMessage?: string } = {},
  ): void {
    if (this.ended) return;
    this.ended = true;
    if (reason === 'server-stopped') this.sendError(TftpErrorCode.NOT_DEFINED, 'server shutting down');
    else if (reason === 'read-error') this.sendError(TftpErrorCode.NOT_DEFINED, 'read error');
    else if (reason === 'write-error') this.sendError(TftpErrorCode.DISK_FULL, 'write error');
    else if (reason === 'stalled') this.sendError(TftpErrorCode.NOT_DEFINED, 'transfer stalled');
    const durationMs = performance.now() - this.startedAt;
    const bytes = this.sender?.bytes ?? this.receiver?.bytes ?? 0;
    const retransmits = this.sender?.retransmits ?? this.receiver?.retransmits ?? 0;
    const c = this.env.counters;
    c.failed++;
    c.retransmits += retransmits;
    const w = this.write;
    if (w) {
      discard(w.stream, w.tmp);
      this.write = undefined;
    }
    const level = reason === 'server-stopped' ? 'debug' : 'warn';
    this.log[level]({ event: 'failed', reason, bytes, durationMs, retransmits, peerCode: extra.peerCode, err: extra.error }, 'transfer failed');
    this.release(false);
    this.env.end(this.info, { event: 'failed', result: { reason, durationMs, bytes, retransmits, ...extra } });
  }

  private release(dally: boolean): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
    if (this.oackTimer) clearTimeout(this.oackTimer);
    this.oackTimer = undefined;
    this.sender?.cancel();
    this.source?.close();
    this.source = undefined;
    this.hooks.onRelease(this);
    if (dally && this.receiver) {
      // Keep answering a resent final DATA for a while (RFC 1350 "dallying").
      setTimeout(() => this.closeSocket(), Math.min(this.params.timeoutMs * 2, 5000)).unref();
    } else {
      this.receiver?.cancel();
      if (!this.errorInFlight) this.closeSocket();
    }
  }

  closeSocket(): void {
    if (this.closed) return;
    this.closed = true;
    this.receiver?.cancel();
    this.hooks.onSocketClosed(this);
    for (const s of [this.socket, this.strangers]) {
      try {
        s?.close();
      } catch {
        // already closed
      }
    }
  }
}

/**
 * Drops a write's temp file: unlinked once its stream has closed, since a stream destroyed
 * while its open() is still in flight creates the file after an immediate unlink.
 */
function discard(stream: WriteStream, tmp: string): void {
  const drop = (): void => void unlink(tmp).catch(() => {});
  if (stream.closed) drop();
  else stream.once('close', drop);
  stream.destroy();
}
