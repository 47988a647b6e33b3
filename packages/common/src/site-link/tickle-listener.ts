import { createSocket, type Socket } from 'node:dgram';
import type { Logger } from 'pino';
import { DatagramType } from '../datagram/codec.js';
import { openDatagram, type DropReason } from '../datagram/open.js';
import { ReplayGuard } from '../datagram/replay.js';

export interface CoreTickleStats {
  received: number;
  accepted: number;
  dropped: Partial<Record<DropReason | 'unexpected-type', number>>;
}

/** Where the listener is bound, and the `host:port` the core is told to send to. */
export interface TickleBinding {
  address: string;
  port: number;
  advertised: string;
}

/**
 * Receives the core's tickles: signed with this site server's datagram key, sender
 * `core`, replays and stale stamps refused by a {@link ReplayGuard}. Forged, replayed,
 * oversized and garbage datagrams are dropped and counted by reason, never thrown; the
 * flags of each good one go to `onTickle`. Until the key is known (not enrolled yet)
 * every tickle is `unknown-sender`.
 */
export class CoreTickleListener {
  readonly stats: CoreTickleStats = { received: 0, accepted: 0, dropped: {} };
  readonly #guard = new ReplayGuard({ maxSenders: 16 });
  #socket: Socket | undefined;

  constructor(
    private readonly key: () => Buffer | undefined,
    private readonly onTickle: (flags: number) => void,
    private readonly log: Logger,
  ) {}

  get port(): number {
    return this.#socket?.address().port ?? 0;
  }

  /** Binds `host:port` (0: any free port); `advertise` overrides the address given to the core. */
  async start(host: string, port: number, advertise?: string): Promise<TickleBinding> {
    const s = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, host, () => {
        s.off('error', reject);
        resolve();
      });
    });
    s.on('error', (err) => this.log.warn({ err }, 'core tickle socket error'));
    s.on('message', (msg) => this.#onMessage(msg));
    this.#socket = s;
    const a = s.address();
    const shown = a.address === '0.0.0.0' ? '127.0.0.1' : a.address === '::' ? '[::1]' : a.address.includes(':') ? `[${a.address}]` : a.address;
    return { address: a.address, port: a.port, advertised: advertise ?? `${shown}:${a.port}` };
  }

  #onMessage(msg: Buffer): void {
    this.stats.received++;
    const r = openDatagram(msg, (sender) => (sender === 'core' ? this.key() : undefined), this.#guard);
    if (!r.ok) {
      this.stats.dropped[r.reason] = (this.stats.dropped[r.reason] ?? 0) + 1;
      return;
    }
    if (r.value.type !== DatagramType.TICKLE) {
      this.stats.dropped['unexpected-type'] = (this.stats.dropped['unexpected-type'] ?? 0) + 1;
      return;
    }
    this.stats.accepted++;
    try {
      this.onTickle(r.value.flags);
    } catch (err) {
      this.log.error({ err, flags: r.value.flags }, 'tickle handler failed');
    }
  }

  async stop(): Promise<void> {
    const s = this.#socket;
    this.#socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
