import type { Clock } from '../registry.js';

/** One browser's sign-in between `/sso/start` and `/sso/callback`. */
export interface PendingSignIn {
  /** The `state` sent to the provider; also in the browser's `outpost_sso` cookie. */
  state: string;
  nonce: string;
  /** The PKCE verifier; only its S256 challenge left this server. */
  verifier: string;
  /** The redirect URI of the authorization request (the code exchange repeats it). */
  redirectUri: string;
  createdAt: number;
}

/**
 * Sign-ins waiting for the provider to send the browser back, keyed by `state`: each is
 * taken once (a second callback with the same state finds nothing), ends after `ttlMs`,
 * and at most `max` wait at once (then the oldest is dropped, so a flood of `/sso/start`
 * costs memory no longer than a bounded map).
 */
export class PendingSignIns {
  readonly #byState = new Map<string, PendingSignIn>();

  constructor(
    private readonly clock: Clock,
    readonly ttlMs = 10 * 60_000,
    readonly max = 1_000,
  ) {}

  get size(): number {
    return this.#byState.size;
  }

  /** Keeps `p`; answers how many older sign-ins had to be dropped to make room. */
  add(p: PendingSignIn): number {
    this.prune();
    let dropped = 0;
    while (this.#byState.size >= this.max) {
      const oldest = this.#byState.keys().next().value;
      if (oldest === undefined) break;
      this.#byState.delete(oldest);
      dropped++;
    }
    this.#byState.set(p.state, p);
    return dropped;
  }

  /** The sign-in for `state`, removed; undefined when unknown, taken already or expired. */
  take(state: string): PendingSignIn | undefined {
    const p = this.#byState.get(state);
    if (!p) return undefined;
    this.#byState.delete(state);
    return this.clock.now() - p.createdAt < this.ttlMs ? p : undefined;
  }

  /** Drops expired sign-ins (oldest first: the map keeps insertion order). */
  prune(): void {
    const now = this.clock.now();
    for (const [state, p] of this.#byState) {
      if (now - p.createdAt < this.ttlMs) break;
      this.#byState.delete(state);
    }
  }
}
