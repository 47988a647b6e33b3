import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { DatagramStamper, ReplayGuard, type Logger } from '@outpost/common';
import { encodeHeartbeat, openHeartbeatAck, type AckDropReason, type ConfigSerial } from './heartbeat-datagram.js';

export type UdpBeatResult = { acked: true; configSerial: ConfigSerial | undefined; rttMs: number } | { acked: false };

/** One agent's UDP heartbeat channel: a socket, the send, and the wait for the ack. */
export interface UdpHeartbeater {
  open(): Promise<void>;
  close(): Promise<void>;
  /** Sends one heartbeat to `host:port` and waits up to `timeoutMs` for its ack. */
  beat(target: { host: string; port: number }, configSerial: ConfigSerial | undefined, timeoutMs: number): Promise<UdpBeatResult>;
  /** Acks dropped, by reason (bad MAC, not for us, replayed ...). */
  readonly dropped: Partial<Record<AckDropReason | 'replay' | 'unexpected', number>>;
}

export function createUdpHeartbeater(identity: () => { id: string; key: Buffer }, targetHost: string, logger: Logger): UdpHeartbeater {
  let socket: Socket | undefined;
  const stamper = new DatagramStamper();
  const guard = new ReplayGuard({ windowMs: 300_000, maxSenders: 4 });
  const dropped: UdpHeartbeater['dropped'] = {};
  let waiter: ((serial: ConfigSerial | undefined) => void) | undefined;
  const count = (reason: keyof UdpHeartbeater['dropped']): void => {
    dropped[reason] = (dropped[reason] ?? 0) + 1;
    logger.debug({ reason }, 'udp ack dropped');
  };

  const onMessage = (buf: Buffer): void => {
    const me = identity();
    const r = openHeartbeatAck(buf, (a) => (a === me.id ? me.key : undefined));
    if (!r.ok) return count(r.reason);
    if (guard.check('core', r.value.timestamp, r.value.seq) !== 'ok') return count('replay');
    if (!waiter) return count('unexpected');
    const w = waiter;
    waiter = undefined;
    w(r.value.configSerial);
  };

  return {
    dropped,
    async open() {
      if (socket) return;
      const s = createSocket({ type: isIP(targetHost) === 6 ? 'udp6' : 'udp4' });
      s.on('message', onMessage);
      s.on('error', (err) => logger.warn({ err }, 'udp socket error'));
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        // A core on loopback is answered on loopback only; anything else on any address.
        const loopback = targetHost === 'localhost' || targetHost.startsWith('127.') || targetHost === '::1';
        const family = isIP(targetHost) === 6 || targetHost === '::1' ? '::1' : '127.0.0.1';
        s.bind({ port: 0, ...(loopback ? { address: family } : {}) }, () => {
          s.off('error', reject);
          resolve();
        });
      });
      socket = s;
    },
    async close() {
      const s = socket;
      socket = undefined;
      waiter?.(undefined);
      waiter = undefined;
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    beat(target, configSerial, timeoutMs) {
      const s = socket;
      if (!s) return Promise.resolve({ acked: false });
      const me = identity();
      const buf = encodeHeartbeat(me.id, me.key, configSerial, stamper.next());
      const sentAt = performance.now();
      return new Promise<UdpBeatResult>((resolve) => {
        let done = false;
        const timer = setTimeout(() => {
          if (done) return;
          done = true;
          waiter = undefined;
          resolve({ acked: false });
        }, timeoutMs);
        waiter = (serial) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (socket) resolve({ acked: true, configSerial: serial, rttMs: performance.now() - sentAt });
          else resolve({ acked: false });
        };
        s.send(buf, target.port, target.host, (err) => {
          if (err) logger.debug({ err }, 'udp heartbeat send failed');
        });
      });
    },
  };
}
