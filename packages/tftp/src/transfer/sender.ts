import type { TransferSocket } from './transfer-socket.js';
import type { ByteSource } from '../source/byte-source.js';
import type { TokenBucket } from '../token-bucket.js';
import { writeDataHeader, DATA_HEADER } from '../packet/data.js';
import type { BusyPoll } from './busy-poll.js';

/*
 * The sending half of a transfer (server RRQ, client put), RFC 1350 + RFC 7440.
 *
 * Blocks are numbered absolutely inside (1, 2, ... past 65535) and put on the wire mod
 * 65536, so the number after 65535 is 0. Up to `windowsize` blocks are in flight. An ACK
 * is matched against the in-flight range by its 16-bit distance from the last ACKed
 * block:
 *   distance 0                 a duplicate: ignored (no Sorcerer's Apprentice resend)
 *   1 .. in-flight count       progress; if it acknowledges less than all that was sent,
 *                              the receiver lost the next block: go back and resend from it
 *   anything else              an ACK for a block never sent or long past: ignored
 * On timeout the window is resent from the first unacknowledged block, up to `retries`
 * times in a row.
 *
 * Hot path (one ACK in, one DATA out, per block in lockstep): a source with ready-made
 * packets (the shared read cache) hands out the packet itself; otherwise packets live in
 * a ring of `windowsize + 1` preallocated buffers, each filled once per block and reused
 * for retransmissions. After a window is sent the block after it is copied into the spare
 * slot, so the next ACK finds its packet ready and sends it straight away; bookkeeping
 * (cache release, the progress clock) comes after the send. A packet is handed to
 * dgram whole (no offset/length: that form makes dgram slice a new Buffer per send); a
 * short last block gets one view, made once. No callbacks, no allocation, no timer
 * re-arm per packet: one timer per transfer checks the time of the last progress.
 *
 * With a BusyPoll, each send keeps the event loop polling for the ACK instead of sleeping
 * (see busy-poll.ts) as long as this peer's last round trip fitted in the poller's
 * budget; a slower peer is re-measured every PROBE_EVERY blocks.
 */

const PROBE_EVERY = 256;

export type SenderEnd =
  | { ok: true; bytes: number; retransmits: number }
  | { ok: false; reason: 'timeout' | 'read-error'; error?: unknown; bytes: number; retransmits: number };

export interface SenderOptions {
  socket: TransferSocket;
  port: number;
  address: string;
  source: ByteSource;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  retries: number;
  buckets: readonly TokenBucket[];
  /** The socket is connect()ed to the peer: send without an address (faster). */
  connected?: boolean;
  /** Keeps the loop polling while an ACK is due (lockstep latency); none = sleep. */
  busyPoll?: BusyPoll;
  onEnd: (end: SenderEnd) => void;
}

export class BlockSender {
  /** `windowsize + 1` packet buffers: the window plus the prefilled next block. */
  private readonly ring: Buffer[];
  /** What is sent for each slot: the ring buffer itself, or a view of it for a short block. */
  private readonly pkts: Buffer[];
  private readonly slotBlock: Float64Array;
  private readonly slots: number;
  /** The source hands out ready-made packets (ByteSource.packet). */
  private readonly packets: boolean;
  /** First unacknowledged block. */
  private base = 1;
  private nextToSend = 1;
  private highestSent = 0;
  private lastBlock = Infinity;
  private retriesLeft: number;
  private lastProgress = 0;
  /** When the last window went out, and whether this peer answers within the busy-poll budget. */
  private sentAt = 0;
  private quickPeer = true;
  private attached = false;
  private timer: NodeJS.Timeout | undefined;
  private throttle: NodeJS.Timeout | undefined;
  private loading = false;
  private finished = false;
  bytes = 0;
  retransmits = 0;
  duplicateAcks = 0;
  strayAcks = 0;

  constructor(private readonly o: SenderOptions) {
    this.slots = o.windowsize + 1;
    this.ring = [];
    for (let i = 0; i < this.slots; i++) this.ring.push(Buffer.allocUnsafeSlow(DATA_HEADER + o.blksize));
    this.pkts = this.ring.slice();
    this.slotBlock = new Float64Array(this.slots).fill(-1);
    this.retriesLeft = o.retries;
    this.packets = typeof o.source.packet === 'function';
    if (o.source.size !== undefined) this.lastBlock = Math.floor(o.source.size / o.blksize) + 1;
  }

  get done(): boolean {
    return this.finished;
  }

  /** Blocks the peer has acknowledged so far (the stall watchdog reads it). */
  get acked(): number {
    return this.base - 1;
  }

  start(): void {
    this.o.busyPoll?.attach();
    this.attached = this.o.busyPoll !== undefined;
    this.pump();
  }

  /** Handles the block number of an ACK from the peer's TID. */
  onAck(wire: number): void {
    if (this.finished) return;
    const lastAcked = this.base - 1;
    const diff = (wire - lastAcked) & 0xffff;
    if (diff === 0) {
      this.duplicateAcks++;
      return;
    }
    if (diff > this.highestSent - lastAcked) {
      this.strayAcks++;
      return;
    }
    this.base = lastAcked + diff + 1;
    this.retriesLeft = this.o.retries;
    const bp = this.o.busyPoll;
    if (bp?.spinnable) this.quickPeer = performance.now() - this.sentAt <= bp.budget;
    if (this.base > this.lastBlock) {
      this.finish({ ok: true, bytes: this.bytes, retransmits: this.retransmits });
      return;
    }
    // Less than everything sent was acknowledged: the receiver lost this.base (RFC 7440).
    if (this.nextToSend !== this.base) this.nextToSend = this.base;
    this.pump();
    this.o.source.release((this.base - 1) * this.o.blksize);
  }

  /** Copies block b into its slot unless it is there already. Returns false when its bytes are not in memory yet. */
  private fill(b: number, slot: number): boolean {
    if (this.slotBlock[slot] === b) return true;
    const o = this.o;
    const shared = this.packets ? o.source.packet!(b, o.blksize) : undefined;
    if (shared !== undefined) {
      this.pkts[slot] = shared;
      this.slotBlock[slot] = b;
      if (shared.length < DATA_HEADER + o.blksize) this.lastBlock = b;
      return true;
    }
    const pkt = this.ring[slot]!;
    const n = o.source.copy((b - 1) * o.blksize, pkt, DATA_HEADER, o.blksize);
    if (n < 0) return false;
    writeDataHeader(pkt, b & 0xffff);
    this.slotBlock[slot] = b;
    if (n < o.blksize) {
      this.pkts[slot] = pkt.subarray(0, DATA_HEADER + n);
      this.lastBlock = b;
    } else this.pkts[slot] = pkt;
    return true;
  }

  private pump(): void {
    if (this.finished || this.loading || this.throttle) return;
    const o = this.o;
    const limit = Math.min(this.base + o.windowsize, this.lastBlock + 1);
    const buckets = o.buckets.length > 0;
    while (this.nextToSend < limit) {
      const b = this.nextToSend;
      const slot = b % this.slots;
      if (!this.fill(b, slot)) {
        this.load(b, limit);
        break;
      }
      const pkt = this.pkts[slot]!;
      if (o.connected) o.socket.send(pkt);
      else o.socket.send(pkt, o.port, o.address);
      const len = pkt.length;
      if (b > this.highestSent) {
        this.highestSent = b;
        this.bytes += len - DATA_HEADER;
      } else this.retransmits++;
      this.nextToSend = b + 1;
      if (buckets) {
        let delay = 0;
        for (const bucket of o.buckets) delay = Math.max(delay, bucket.take(len));
        if (delay > 0) {
          this.throttle = setTimeout(() => {
            this.throttle = undefined;
            this.pump();
          }, delay);
          break;
        }
      }
      if (b >= this.lastBlock) break; // fill() just found the end of a source of unknown size
    }
    // Off the critical path: have the block after the window ready for the next ACK.
    const next = this.nextToSend;
    if (next === this.base + o.windowsize && next <= this.lastBlock && !this.loading) this.fill(next, next % this.slots);
    const now = performance.now();
    this.lastProgress = now;
    this.sentAt = now;
    if (o.busyPoll && (this.quickPeer || this.base % PROBE_EVERY === 0)) o.busyPoll.kick(now);
    if (!this.timer) this.timer = setTimeout(this.onTimer, o.timeoutMs);
  }

  private load(b: number, limit: number): void {
    const o = this.o;
    this.loading = true;
    o.source.load((b - 1) * o.blksize, o.blksize * (limit - b)).then(
      () => {
        this.loading = false;
        this.lastProgress = performance.now();
        this.pump();
      },
      (error: unknown) => this.finish({ ok: false, reason: 'read-error', error, bytes: this.bytes, retransmits: this.retransmits }),
    );
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (this.finished) return;
    const idle = performance.now() - this.lastProgress;
    if (idle < this.o.timeoutMs || this.loading || this.throttle) {
      this.timer = setTimeout(this.onTimer, Math.max(1, this.o.timeoutMs - idle));
      return;
    }
    if (--this.retriesLeft < 0) {
      this.finish({ ok: false, reason: 'timeout', bytes: this.bytes, retransmits: this.retransmits });
      return;
    }
    this.nextToSend = this.base;
    this.pump();
  };

  /** Stops without a result (the owner ends the transfer for another reason). */
  cancel(): void {
    this.finished = true;
    this.clearTimers();
  }

  private clearTimers(): void {
    if (this.attached) {
      this.attached = false;
      this.o.busyPoll!.detach();
    }
    if (this.timer) clearTimeout(this.timer);
    if (this.throttle) clearTimeout(this.throttle);
    this.timer = undefined;
    this.throttle = undefined;
  }

  private finish(end: SenderEnd): void {
    if (this.finished) return;
    this.finished = true;
    this.clearTimers();
    this.o.onEnd(end);
  }
}
