import { decodeDatagram, verifyDatagram, type DatagramDecodeError, type DecodedDatagram } from './codec.js';
import type { ReplayGuard, ReplayVerdict } from './replay.js';

export type DropReason = DatagramDecodeError | 'unknown-sender' | 'bad-mac' | Exclude<ReplayVerdict, 'ok'>;

export type OpenResult = { ok: true; value: DecodedDatagram } | { ok: false; reason: DropReason };

/**
 * The receive path of a datagram: decode, find the key (by sender id: the sender's key
 * for heartbeats, our own for tickles), verify the MAC, then the replay guard (only
 * authentic datagrams touch its state). Never throws; the caller counts drops by reason.
 */
export function openDatagram(
  buf: Buffer,
  keyFor: (sender: string) => Buffer | undefined,
  guard: ReplayGuard,
  now = Date.now(),
): OpenResult {
  const decoded = decodeDatagram(buf);
  if (!decoded.ok) return { ok: false, reason: decoded.error };
  const d = decoded.value;
  const key = keyFor(d.sender);
  if (!key) return { ok: false, reason: 'unknown-sender' };
  if (!verifyDatagram(d, key)) return { ok: false, reason: 'bad-mac' };
  const verdict = guard.check(d.sender, d.timestamp, d.seq, now);
  if (verdict !== 'ok') return { ok: false, reason: verdict };
  return { ok: true, value: d };
}
