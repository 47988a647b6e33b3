import { randomBytes } from 'node:crypto';
import type { Logger } from '@outpost/common';
import type { BootEventOut } from './core-client.js';

/** A boot ends this long after its last event (the core's `bootGap` default). */
const BOOT_GAP_MS = 5 * 60_000;

/** Which part of netboot saw an event (the `part` of its log line). */
export function partOf(type: string): 'dhcp' | 'tftp' | 'http' {
  if (type.startsWith('tftp-')) return 'tftp';
  if (type === 'script' || type === 'handoff' || type === 'http') return 'http';
  return 'dhcp';
}

/**
 * Events logged at info: a few per boot, each after the reply limiter (a DISCOVER flood
 * logs its offers, not every DISCOVER); the rest at debug.
 */
const INFO = new Set(['offer', 'ack', 'pxe-ack', 'tftp-done', 'tftp-failed', 'script', 'other-proxy']);

/**
 * Boot ids: one per boot of one MAC, from its first event (a DISCOVER, or whatever
 * came first) until it was handed off and starts again, or went quiet for 5 min. The id
 * is on every netboot log line of that boot — DHCP, TFTP and HTTP — and on the events
 * sent to the core, which keeps it in its boot record (`netbootIds`), so one id finds a
 * boot in every log. Bounded: the oldest MACs are forgotten past `max`.
 */
export class BootIds {
  readonly #byMac = new Map<string, { id: string; lastAt: number; handedOff: boolean }>();

  constructor(
    private readonly max = 100_000,
    private readonly gapMs = BOOT_GAP_MS,
  ) {}

  /** The boot id of this event (a new boot when it starts one). */
  idFor(mac: string, at: number, type: string): string {
    let b = this.#byMac.get(mac);
    if (!b || at - b.lastAt > this.gapMs || (type === 'discover' && b.handedOff)) {
      b = { id: `nb_${at.toString(36)}_${randomBytes(4).toString('hex')}`, lastAt: at, handedOff: false };
      this.#byMac.delete(mac);
      if (this.#byMac.size >= this.max) this.#byMac.delete(this.#byMac.keys().next().value!);
      this.#byMac.set(mac, b);
    }
    b.lastAt = Math.max(b.lastAt, at);
    if (type === 'handoff') b.handedOff = true;
    return b.id;
  }
}

/** One log line for a boot event, with its boot id and the part that saw it. */
export function logBootEvent(log: Logger, e: BootEventOut, boot: string): void {
  const fields = { boot, part: partOf(e.type), mac: e.mac, event: e.type, ...(e.ip ? { ip: e.ip } : {}), ...(e.detail ? { detail: e.detail } : {}) };
  if (INFO.has(e.type)) log.info(fields, 'boot event');
  else log.debug(fields, 'boot event');
}
