import { randomBytes, timingSafeEqual } from 'node:crypto';
import { BoundedMap } from './limits.js';

/** What a script request's token proved: the boot we answered (`ok`), nothing (`absent`), or a wrong, used or expired token (`invalid`). */
export type BootTokenCheck = 'ok' | 'absent' | 'invalid';

/** A boot token as it appears in a script URL (`?b=`): 22 base64url characters (128 random bits). */
export const BOOT_TOKEN = /^[A-Za-z0-9_-]{22}$/;

/**
 * One-use boot tokens. When netboot answers an iPXE client's DHCP (proxyDHCP, full DHCP or
 * the 4011 boot server) the script URL it hands out carries a random token for that MAC
 * (`/boot/<mac>.ipxe?b=<token>`); only a script request with that token is the boot we
 * answered, and only it consumes the core's one-shot decision and records the boot. The
 * same token is handed out until it is used or expires (an OFFER, its ACK and the 4011
 * ACK of one exchange name the same URL), at most `max` MACs are tracked (the oldest
 * minted forgotten first), each for `ttlMs`.
 */
export class BootTokens {
  readonly #tokens: BoundedMap<string, { token: string; at: number }>;
  readonly counters = { minted: 0, used: 0, absent: 0, invalid: 0 };

  constructor(private readonly opts: { max: number; ttlMs: number; now: () => number }) {
    this.#tokens = new BoundedMap(opts.max);
  }

  /** The token to hand `mac` now: its live one, or a new one. */
  forMac(mac: string): string {
    const now = this.opts.now();
    const live = this.#tokens.get(mac);
    if (live && now - live.at < this.opts.ttlMs) return live.token;
    const token = randomBytes(16).toString('base64url');
    this.#tokens.set(mac, { token, at: now });
    this.counters.minted++;
    return token;
  }

  /**
   * Checks the token of a script request for `mac` and, when it is the live one, uses it
   * up. A wrong token leaves the live one alone (a guess cannot spoil the real boot).
   */
  take(mac: string, token: string | undefined): BootTokenCheck {
    if (token === undefined || token === '') {
      this.counters.absent++;
      return 'absent';
    }
    const live = this.#tokens.get(mac);
    const ok = live !== undefined && BOOT_TOKEN.test(token) && this.opts.now() - live.at < this.opts.ttlMs && timingSafeEqual(Buffer.from(token), Buffer.from(live.token));
    if (!ok) {
      this.counters.invalid++;
      return 'invalid';
    }
    this.#tokens.delete(mac);
    this.counters.used++;
    return 'ok';
  }

  get size(): number {
    return this.#tokens.size;
  }
}
