import { MAX_BLKSIZE, MIN_BLKSIZE, DEFAULT_BLKSIZE } from './packet/opcodes.js';

/*
 * Option negotiation, server side (RFC 2347, 2348, 2349, 7440).
 *
 * Only options the client asked for and we accept go into the OACK, in the client's
 * order. A value we cannot use is ignored (the option is left out of the OACK) rather than
 * refused with ERROR 8, which lets the client carry on with defaults:
 *   blksize    8..65464, answered with min(asked, maxBlksize); below 8 ignored
 *   tsize      RRQ: asked as 0, answered with the size when known; WRQ: echoed, and
 *              over the write limit the request is refused (ERROR 3)
 *   timeout    1..min(255, maxTimeoutMs / 1000) seconds, echoed; outside ignored (a
 *              hostile client must not make a never-ACKed transfer hold its slot for
 *              minutes: the server's own retransmit timer is used instead)
 *   windowsize 1..65535, answered with min(asked, maxWindowsize); 0 ignored
 * Names are matched case-insensitively; the first occurrence of a name wins.
 */

export interface NegotiationLimits {
  maxBlksize: number;
  maxWindowsize: number;
  /** Largest timeout option granted, in ms; larger asks are left out of the OACK. @default 255000 */
  maxTimeoutMs?: number;
}

export interface Negotiated {
  blksize: number;
  windowsize: number;
  /** Retransmit timeout the client asked for, in ms; undefined for the server default. */
  timeoutMs: number | undefined;
  /** tsize the client sent (WRQ); undefined when not asked. */
  clientTsize: number | undefined;
  /** True when the client asked for tsize (RRQ: we answer it when the size is known). */
  tsizeAsked: boolean;
  /** The OACK to send, without tsize for RRQ (added once the size is known). */
  oack: Array<[string, string]>;
}

const DIGITS = /^[0-9]{1,20}$/;

function parseUint(value: string): number | undefined {
  if (!DIGITS.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : Number.MAX_SAFE_INTEGER;
}

export function negotiateOptions(
  requested: ReadonlyArray<readonly [string, string]>,
  limits: NegotiationLimits,
): Negotiated {
  const out: Negotiated = {
    blksize: DEFAULT_BLKSIZE,
    windowsize: 1,
    timeoutMs: undefined,
    clientTsize: undefined,
    tsizeAsked: false,
    oack: [],
  };
  const seen = new Set<string>();
  for (const [name, value] of requested) {
    if (seen.has(name)) continue;
    seen.add(name);
    const n = parseUint(value);
    if (n === undefined) continue;
    switch (name) {
      case 'blksize': {
        if (n < MIN_BLKSIZE) break;
        out.blksize = Math.min(n, limits.maxBlksize, MAX_BLKSIZE);
        out.oack.push(['blksize', String(out.blksize)]);
        break;
      }
      case 'windowsize': {
        if (n < 1) break;
        out.windowsize = Math.min(n, limits.maxWindowsize, 65535);
        out.oack.push(['windowsize', String(out.windowsize)]);
        break;
      }
      case 'timeout': {
        if (n < 1 || n > 255 || n * 1000 > (limits.maxTimeoutMs ?? 255_000)) break;
        out.timeoutMs = n * 1000;
        out.oack.push(['timeout', String(n)]);
        break;
      }
      case 'tsize': {
        out.tsizeAsked = true;
        out.clientTsize = n;
        break;
      }
      default:
        break;
    }
  }
  return out;
}
