import { createSocket, type Socket } from 'node:dgram';
import { DatagramType, openDatagram, ReplayGuard, type DropReason, type Logger } from '@outpost/common';

export interface CoreTickleStats {
  received: number;
  accepted: number;
  dropped: Partial<Record<DropReason | 'unexpected-type', number>>;
}

/**
 * Receives the core's tickles: signed with this task server's datagram key, sender
 * `core`, replays and stale stamps refused by a {@link ReplayGuard}. Forged, replayed,
 * oversized and garbage datagrams are dropped and counted by reason, never thrown.
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

  async start(host: string, port: number): Promise<{ address: string; port: number }> {
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
    return { address: a.address, port: a.port };
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
    this.onTickle(r.value.flags);
  }

  async stop(): Promise<void> {
    const s = this.#socket;
    this.#socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
