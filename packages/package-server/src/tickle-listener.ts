import { createSocket, type Socket } from 'node:dgram';
import { DatagramType, ReplayGuard, openDatagram, type DropReason, type Logger } from '@outpost/common';

/**
 * Listens for the core's signed tickles (sender `core`, HMAC with our datagram key);
 * hands the flags of each authentic, fresh one to `onTickle`. Everything else is counted
 * by reason and dropped.
 */
export function createTickleListener(o: { host: string; port: number; key: () => Buffer | undefined; log: Logger; onTickle(flags: number): void }) {
  let socket: Socket | undefined;
  const guard = new ReplayGuard();
  const stats = { received: 0, accepted: 0, dropped: {} as Partial<Record<DropReason | 'not-a-tickle', number>> };
  return {
    stats,
    get port(): number {
      return socket?.address().port ?? 0;
    },
    async start(): Promise<void> {
      const s = createSocket('udp4');
      socket = s;
      s.on('message', (buf) => {
        stats.received++;
        const r = openDatagram(buf, (sender) => (sender === 'core' ? o.key() : undefined), guard);
        if (!r.ok) {
          stats.dropped[r.reason] = (stats.dropped[r.reason] ?? 0) + 1;
          return;
        }
        if (r.value.type !== DatagramType.TICKLE) {
          stats.dropped['not-a-tickle'] = (stats.dropped['not-a-tickle'] ?? 0) + 1;
          return;
        }
        stats.accepted++;
        o.onTickle(r.value.flags);
      });
      s.on('error', (err) => o.log.warn({ err }, 'tickle socket error'));
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(o.port, o.host, () => {
          s.off('error', reject);
          resolve();
        });
      });
    },
    async stop(): Promise<void> {
      const s = socket;
      socket = undefined;
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
}
