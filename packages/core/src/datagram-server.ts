import { createSocket, type Socket } from 'node:dgram';
import { DatagramStamper, DatagramType, encodeDatagram, openDatagram, ReplayGuard, type DropReason, type Logger } from '@outpost/common';
import type { Clock, Registry } from './registry.js';

export interface DatagramStats {
  received: number;
  accepted: number;
  heartbeats: number;
  acksSent: number;
  ticklesSent: number;
  dropped: Partial<Record<DropReason | 'bad-payload' | 'unexpected-type', number>>;
}

/** Largest payload a heartbeat may carry that we parse (bytes). */
const MAX_HEARTBEAT_PAYLOAD = 256;

/**
 * The core's UDP endpoint: authenticated heartbeats in (each answered with a signed
 * ack carrying the agent's current config serial), tickles out. Garbage, forgeries and
 * replays are dropped and counted, never thrown.
 */
export class DatagramServer {
  readonly stats: DatagramStats = { received: 0, accepted: 0, heartbeats: 0, acksSent: 0, ticklesSent: 0, dropped: {} };
  readonly #guard: ReplayGuard;
  readonly #stamper: DatagramStamper;
  #socket: Socket | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly clock: Clock,
    private readonly log: Logger,
    windowMs: number,
  ) {
    this.#guard = new ReplayGuard({ windowMs });
    this.#stamper = new DatagramStamper(() => clock.now());
  }

  async start(host: string, port: number): Promise<number> {
    const socket = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 4 << 20 });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', (err) => this.log.warn({ err }, 'datagram socket error'));
    socket.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo.address, rinfo.port));
    this.#socket = socket;
    return socket.address().port;
  }

  async stop(): Promise<void> {
    const s = this.#socket;
    this.#socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /**
   * Sends one signed TICKLE to `host:port`, keyed with the recipient's datagram key.
   * Returns false when it could not be sent (not started, bad address).
   */
  sendTickle(recipientKey: Buffer, address: string, flags: number, payload: Buffer = Buffer.alloc(0)): boolean {
    const socket = this.#socket;
    const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(address);
    if (!socket || !m) return false;
    const d = encodeDatagram({ type: DatagramType.TICKLE, flags, ...this.#stamper.next(), sender: 'core', payload }, recipientKey);
    socket.send(d, Number(m[2]), m[1], (err) => {
      if (err) this.log.debug({ err, address }, 'tickle not sent');
      else this.stats.ticklesSent++;
    });
    return true;
  }

  #drop(reason: DropReason | 'bad-payload' | 'unexpected-type'): void {
    this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + 1;
  }

  #onMessage(msg: Buffer, address: string, port: number): void {
    this.stats.received++;
    const opened = openDatagram(msg, (id) => this.registry.keyFor(id), this.#guard, this.clock.now());
    if (!opened.ok) {
      this.#drop(opened.reason);
      return;
    }
    const d = opened.value;
    if (d.type !== DatagramType.HEARTBEAT) {
      this.#drop('unexpected-type');
      return;
    }
    // A heartbeat datagram carries only the config serial the sender has: no service,
    // address or URL can be claimed here (site servers restate those over HTTP, checked
    // against their grant). The source address is used only to send the ack.
    let reported: string | undefined;
    if (d.payload.length > 0) {
      if (d.payload.length > MAX_HEARTBEAT_PAYLOAD) return this.#drop('bad-payload');
      try {
        const body: unknown = JSON.parse(d.payload.toString('utf8'));
        if (body && typeof body === 'object' && 's' in body && typeof body.s === 'string') reported = body.s;
      } catch {
        return this.#drop('bad-payload');
      }
    }
    this.stats.accepted++;
    this.stats.heartbeats++;
    this.registry.touch(d.sender, 'udp', reported);
    const key = this.registry.keyFor(d.sender)!;
    const serial = this.registry.agentSerial(d.sender) ?? '';
    const ack = encodeDatagram(
      { type: DatagramType.HEARTBEAT_ACK, flags: 0, ...this.#stamper.next(), sender: 'core', payload: Buffer.from(`{"a":${JSON.stringify(d.sender)},"s":${JSON.stringify(serial)}}`) },
      key,
    );
    this.#socket?.send(ack, port, address, (err) => {
      if (!err) this.stats.acksSent++;
    });
  }
}
