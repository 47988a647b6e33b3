import type { TransferSocket } from './transfer-socket.js';
import { writeAck } from '../packet/ack.js';

/*
 * The receiving half of a transfer (client get, server WRQ), RFC 1350 + RFC 7440.
 *
 * In-order blocks are handed to `sink`; an ACK goes out after every `windowsize` blocks
 * and after the last block (shorter than blksize). A block from the future means one was
 * lost: the last in-order block is ACKed once, so the sender goes back to it. A repeat of
 * the last in-order block means the sender timed out waiting for our ACK: it is ACKed
 * again. Other repeats are ignored. With no data for `timeoutMs` the last ACK (or the
 * opening packet) is resent, up to `retries` times in a row.
 */

export type ReceiverEnd =
  | { ok: true; bytes: number; retransmits: number }
  | { ok: false; reason: 'timeout' | 'too-large'; bytes: number; retransmits: number };

export interface ReceiverOptions {
  socket: TransferSocket;
  port: number;
  address: string;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  retries: number;
  maxBytes: number;
  /** Resent on timeout while nothing has arrived yet (OACK or ACK 0); default ACK 0. */
  opening?: Buffer;
  sink: (data: Buffer) => void;
  onEnd: (end: ReceiverEnd) => void;
  /** The socket is connect()ed to the peer: send without an address. */
  connected?: boolean;
}

export class BlockReceiver {
  /** Next block expected (absolute). */
  private expected = 1;
  private sinceAck = 0;
  private gapAcked = false;
  private retriesLeft: number;
  private lastProgress = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private finished = false;
  private readonly ackBuf = Buffer.alloc(4);
  bytes = 0;
  retransmits = 0;

  constructor(private readonly o: ReceiverOptions) {
    this.retriesLeft = o.retries;
  }

  /** True once the first DATA block has arrived. */
  get receivedAny(): boolean {
    return this.expected > 1;
  }

  /** In-order blocks received so far (the stall watchdog reads it). */
  get received(): number {
    return this.expected - 1;
  }

  get done(): boolean {
    return this.finished;
  }

  start(): void {
    this.armTimer();
  }

  onData(wire: number, data: Buffer): void {
    const o = this.o;
    const lastWire = (this.expected - 1) & 0xffff;
    if (this.finished) {
      if (wire === lastWire) this.sendAck();
      return;
    }
    if (wire === (this.expected & 0xffff) && data.length <= o.blksize) {
      if (this.bytes + data.length > o.maxBytes) {
        this.finish({ ok: false, reason: 'too-large', bytes: this.bytes, retransmits: this.retransmits });
        return;
      }
      this.bytes += data.length;
      o.sink(data);
      this.expected++;
      this.sinceAck++;
      this.gapAcked = false;
      this.retriesLeft = o.retries;
      this.lastProgress = performance.now();
      if (data.length < o.blksize) {
        this.sendAck();
        this.finish({ ok: true, bytes: this.bytes, retransmits: this.retransmits });
      } else if (this.sinceAck >= o.windowsize) this.sendAck();
      return;
    }
    const ahead = (wire - this.expected) & 0xffff;
    if (ahead < 0x8000) {
      if (!this.gapAcked) {
        this.gapAcked = true;
        this.sendAck();
      }
    } else if (wire === lastWire) this.sendAck();
  }

  private sendAck(): void {
    this.sinceAck = 0;
    writeAck(this.ackBuf, (this.expected - 1) & 0xffff);
    this.send(this.ackBuf);
  }

  private send(buf: Buffer): void {
    if (this.o.connected) this.o.socket.send(buf);
    else this.o.socket.send(buf, this.o.port, this.o.address);
  }

  private armTimer(): void {
    if (!this.timer && !this.finished) this.timer = setTimeout(this.onTimer, this.o.timeoutMs);
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (this.finished) return;
    const idle = performance.now() - this.lastProgress;
    if (idle < this.o.timeoutMs) {
      this.timer = setTimeout(this.onTimer, Math.max(1, this.o.timeoutMs - idle));
      return;
    }
    if (--this.retriesLeft < 0) {
      this.finish({ ok: false, reason: 'timeout', bytes: this.bytes, retransmits: this.retransmits });
      return;
    }
    this.retransmits++;
    this.lastProgress = performance.now();
    if (this.expected === 1 && this.o.opening) this.send(this.o.opening);
    else this.sendAck();
    this.armTimer();
  };

  cancel(): void {
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private finish(end: ReceiverEnd): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.o.onEnd(end);
  }
}
