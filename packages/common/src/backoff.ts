export interface BackoffOptions {
  /** Delay after the first failure. @default 180_000 (3 minutes) */
  baseMs?: number;
  /** Largest delay; once reached, retries stay at this interval. @default 86_400_000 (24 h) */
  capMs?: number;
  /** Relative jitter, ±: 0.1 spreads a delay over ±10 %. @default 0.1 */
  jitter?: number;
  /** Source of randomness in [0, 1). @default Math.random */
  random?: () => number;
}

/**
 * Delay before retry number `attempt` (0 for the retry after the first failure):
 * `base · 2^attempt`, capped at `cap` (so after the cap, retries are every `cap`), with
 * ±jitter so many clients that failed together do not retry together. With the defaults:
 * 3, 6, 12, 24 ... minutes, then every 24 h.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const base = options.baseMs ?? 180_000;
  const cap = options.capMs ?? 86_400_000;
  const jitter = options.jitter ?? 0.1;
  const random = options.random ?? Math.random;
  const exp = Math.min(Math.max(0, Math.floor(attempt) || 0), 60);
  const raw = Math.min(cap, base * 2 ** exp);
  const spread = raw * jitter * (2 * random() - 1);
  return Math.max(0, Math.round(Math.min(cap * (1 + jitter), raw + spread)));
}
