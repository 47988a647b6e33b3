import { createHmac, timingSafeEqual } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';

/**
 * Keys an agent shares with the core alone, both derived from its datagram key
 * (`datagramKey(secret)`: the core stores it, the agent computes it). A task server holds
 * only `agentTaskKey` (another derivation), so it can neither mint work tickets nor MAC
 * status events.
 *
 *   workTicketKey = HMAC-SHA256(datagramKey, 'outpost-work')
 *   ticket        = base64url(HMAC-SHA256(workTicketKey, runDigest + '\0' + agentId))
 *   eventKey      = HMAC-SHA256(datagramKey, 'outpost-events')
 *   mac           = base64url(HMAC-SHA256(eventKey, canonicalJson(event without mac)))
 */
export function workTicketKey(agentDatagramKey: Buffer): Buffer {
  return createHmac('sha256', agentDatagramKey).update('outpost-work').digest();
}

export function eventKey(agentDatagramKey: Buffer): Buffer {
  return createHmac('sha256', agentDatagramKey).update('outpost-events').digest();
}

/** The ticket that addresses a signed run (by its digest) to one agent. */
export function workTicket(ticketKey: Buffer, digest: string, agentId: string): string {
  return createHmac('sha256', ticketKey).update(`${digest}\0${agentId}`).digest('base64url');
}

const MAC_RE = /^[A-Za-z0-9_-]{43}$/;

/** Constant-time comparison of two base64url HMACs; false for anything malformed. */
function macEqual(expected: string, given: unknown): boolean {
  if (typeof given !== 'string' || !MAC_RE.test(given)) return false;
  return timingSafeEqual(Buffer.from(expected, 'base64url'), Buffer.from(given, 'base64url'));
}

export function verifyTicket(ticketKey: Buffer, digest: string, agentId: string, ticket: unknown): boolean {
  return macEqual(workTicket(ticketKey, digest, agentId), ticket);
}

/** The MAC of a status event (every member but `mac` itself); undefined for a value that is not plain JSON. */
export function eventMac(key: Buffer, event: object): string | undefined {
  const { mac: _mac, ...rest } = event as { mac?: unknown };
  const body = canonicalJson(rest);
  return body === undefined ? undefined : createHmac('sha256', key).update(body).digest('base64url');
}

/** The event with its MAC added. */
export function withMac<E extends object>(key: Buffer, event: E): E & { mac: string } {
  return { ...event, mac: eventMac(key, event)! };
}

/** Whether the event carries the right MAC. */
export function verifyEventMac(key: Buffer, event: object): boolean {
  const mac = eventMac(key, event);
  return mac !== undefined && macEqual(mac, (event as { mac?: unknown }).mac);
}

/**
 * Derived keys cached per datagram key (the registry hands out the same Buffer for an
 * agent until it re-enrolls): a 50,000-agent page costs one HMAC per agent, not two.
 */
export class DerivedKeyCache {
  readonly #keys = new WeakMap<Buffer, Buffer>();
  constructor(private readonly derive: (datagramKey: Buffer) => Buffer) {}

  of(datagramKey: Buffer): Buffer {
    let k = this.#keys.get(datagramKey);
    if (!k) this.#keys.set(datagramKey, (k = this.derive(datagramKey)));
    return k;
  }
}
