import { DatagramType, decodeDatagram, encodeDatagram, verifyDatagram, type DecodedDatagram } from '@outpost/common';

/**
 * Heartbeat datagrams, agent ⇄ core, in the envelope of @outpost/common's datagram codec
 * (magic, version, type, flags, timestamp, seq, sender, payload, HMAC-SHA256).
 *
 * ```
 *  HEARTBEAT       agent → core   sender = agent id, HMAC with the agent's datagram key
 *                  payload JSON   {"s": <configSerial the agent has>}   (or {} before it has one)
 *                  The serial is opaque: the core sends a string (a hash of the config);
 *                  a number is accepted too.
 *  HEARTBEAT_ACK   core → agent   sender = "core", HMAC with the agent's datagram key
 *                  payload JSON   {"a": "<agent id>", "s": <current configSerial>}
 * ```
 *
 * `a` lets a receiver that shares one socket among many agents (the swarm) pick the key
 * before checking the MAC. Decoders never throw: they return a reason the caller counts.
 */

export interface HeartbeatStamp {
  timestamp: number;
  seq: number;
}

/** A config serial as the core gives it: opaque, compared for equality only. */
export type ConfigSerial = string | number;

export function encodeHeartbeat(agentId: string, key: Buffer, configSerial: ConfigSerial | undefined, stamp: HeartbeatStamp): Buffer {
  const payload = Buffer.from(configSerial === undefined ? '{}' : JSON.stringify({ s: configSerial }), 'utf8');
  return encodeDatagram({ type: DatagramType.HEARTBEAT, flags: 0, timestamp: stamp.timestamp, seq: stamp.seq, sender: agentId, payload }, key);
}

export interface HeartbeatAck {
  /** The agent the ack is for. */
  agentId: string;
  /** The agent's current config serial at the core. */
  configSerial: ConfigSerial | undefined;
  timestamp: number;
  seq: number;
}

export type AckDropReason = 'not-a-datagram' | 'not-an-ack' | 'bad-sender' | 'bad-payload' | 'unknown-agent' | 'bad-mac';

export type AckResult = { ok: true; value: HeartbeatAck } | { ok: false; reason: AckDropReason };

/** The `a` and `s` of an ack payload, or undefined when it is not `{"a": string, "s"?: string | int}`. */
export function parseAckPayload(payload: Buffer): { a: string; s: ConfigSerial | undefined } | undefined {
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const { a, s } = v as { a?: unknown; s?: unknown };
  if (typeof a !== 'string' || a.length === 0) return undefined;
  if (s !== undefined && typeof s !== 'string' && !(typeof s === 'number' && Number.isInteger(s))) return undefined;
  return { a, s };
}

/**
 * Decodes and authenticates a HEARTBEAT_ACK: structure, type, sender `core`, payload,
 * then the MAC with the key of the agent the payload names (`keyFor` returns undefined
 * for agents this receiver does not know). Replays are the caller's business: an ack is
 * only meaningful for a heartbeat still waiting for one.
 */
export function openHeartbeatAck(buf: Buffer, keyFor: (agentId: string) => Buffer | undefined): AckResult {
  const decoded = decodeDatagram(buf);
  if (!decoded.ok) return { ok: false, reason: 'not-a-datagram' };
  const d: DecodedDatagram = decoded.value;
  if (d.type !== DatagramType.HEARTBEAT_ACK) return { ok: false, reason: 'not-an-ack' };
  if (d.sender !== 'core') return { ok: false, reason: 'bad-sender' };
  const p = parseAckPayload(d.payload);
  if (!p) return { ok: false, reason: 'bad-payload' };
  const key = keyFor(p.a);
  if (!key) return { ok: false, reason: 'unknown-agent' };
  if (!verifyDatagram(d, key)) return { ok: false, reason: 'bad-mac' };
  return { ok: true, value: { agentId: p.a, configSerial: p.s, timestamp: d.timestamp, seq: d.seq } };
}
