import type { Logger } from '@outpost/common';
import type { BootBackend, BootDecision } from './core-client.js';
import { BoundedMap, TokenBucket } from './limits.js';

/** Served when the core does not answer in time and nothing is cached: the local disk. */
export const FALLBACK_SCRIPT = '#!ipxe\necho Outpost: no boot decision (the core did not answer); booting from the local disk\nsleep 3\nexit 1\n';

/**
 * Served to a script request without a valid boot token instead of a one-shot decision
 * (the one-shot stays pending for the boot that carries the token, and a machine never
 * boots an image once without using it up), or when such requests come faster than
 * `untokenedPerSecond` (they do not reach the core).
 */
export const UNTOKENED_SCRIPT = '#!ipxe\necho Outpost: this boot was not answered by this server (no valid boot token); booting from the local disk\nsleep 3\nexit 1\n';

export type DecisionSource = 'core' | 'cache' | 'fallback';

/**
 * Boot decisions per MAC from the core, reused for their TTL. A script request waits at
 * most `timeoutMs` for the core, then serves the last decision it has (or the
 * fallback). One-shot decisions (ttl 0) are never reused.
 */
export class DecisionCache {
  readonly #cache: BoundedMap<string, { d: BootDecision; at: number }>;
  readonly #inflight = new Map<string, Promise<BootDecision>>();
  /** Script requests without a valid boot token that may ask the core (a flood of them must not queue the real boots' decisions). */
  readonly #untokened: TokenBucket;
  readonly counters = { fromCore: 0, fromCache: 0, fallback: 0, coreErrors: 0, prefetches: 0, untokenedLimited: 0 };

  constructor(
    private readonly backend: BootBackend,
    private readonly opts: { ttlMs: number; timeoutMs: number; max: number; untokenedPerSecond: number; now: () => number },
    private readonly log: Logger,
  ) {
    this.#cache = new BoundedMap(opts.max);
    this.#untokened = new TokenBucket(opts.untokenedPerSecond, Math.max(1, Math.ceil(opts.untokenedPerSecond)), opts.now());
  }

  #remember(mac: string, d: BootDecision): void {
    if (d.ttlMs > 0) this.#cache.set(mac, { d, at: this.opts.now() });
    else this.#cache.delete(mac);
  }

  /** Warms the cache on DISCOVER (not consuming anything), so a slow core costs nothing later. */
  prefetch(mac: string, uuid: string | undefined, arch: number | undefined): void {
    const hit = this.#cache.get(mac);
    if ((hit && this.opts.now() - hit.at < hit.d.ttlMs) || this.#inflight.has(mac) || this.#inflight.size > 1000) return;
    this.counters.prefetches++;
    const p = this.backend.decide({ mac, uuid, arch, consume: false });
    this.#inflight.set(mac, p);
    p.then(
      (d) => this.#remember(mac, d),
      (err: unknown) => {
        this.counters.coreErrors++;
        this.log.debug({ err, mac }, 'decision prefetch failed');
      },
    ).finally(() => this.#inflight.delete(mac));
  }

  /** The decision to serve now, consuming one-shots at the core (a boot we answered: its token was right). */
  forScript(mac: string, uuid: string | undefined, arch: number | undefined): Promise<{ decision: BootDecision; source: DecisionSource }> {
    return this.#ask({ mac, uuid, arch, consume: true });
  }

  /**
   * The decision for a script request without a valid boot token: nothing is consumed or
   * recorded at the core (a fresh cached decision is reused), and a one-shot is not served
   * ({@link UNTOKENED_SCRIPT} instead); beyond `untokenedPerSecond` such requests get
   * that script without asking the core.
   */
  async forUntokened(mac: string, uuid: string | undefined, arch: number | undefined): Promise<{ decision: BootDecision; source: DecisionSource }> {
    const hit = this.#cache.get(mac);
    if (hit && this.opts.now() - hit.at < hit.d.ttlMs) return { decision: hit.d, source: 'cache' };
    if (!this.#untokened.take(this.opts.now())) {
      this.counters.untokenedLimited++;
      return { decision: { mac, kind: 'unknown', script: UNTOKENED_SCRIPT, ttlMs: 0 }, source: 'fallback' };
    }
    const r = await this.#ask({ mac, uuid, arch, consume: false });
    if (r.decision.ttlMs > 0 || r.source === 'fallback') return r;
    return { decision: { mac, kind: r.decision.kind, script: UNTOKENED_SCRIPT, ttlMs: 0 }, source: r.source };
  }

  async #ask(input: { mac: string; uuid: string | undefined; arch: number | undefined; consume: boolean }): Promise<{ decision: BootDecision; source: DecisionSource }> {
    const { mac } = input;
    const call = this.backend.decide(input);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.opts.timeoutMs);
    });
    try {
      const r = await Promise.race([call, timeout]);
      if (r !== 'timeout') {
        this.counters.fromCore++;
        this.#remember(mac, r);
        return { decision: r, source: 'core' };
      }
      this.log.warn({ mac, timeoutMs: this.opts.timeoutMs }, 'the core is slow: serving the cached boot decision');
    } catch (err) {
      this.counters.coreErrors++;
      this.log.warn({ err, mac }, 'the core did not decide: serving the cached boot decision');
    } finally {
      clearTimeout(timer);
    }
    call.then((d) => this.#remember(mac, d)).catch(() => undefined);
    const hit = this.#cache.get(mac);
    if (hit) {
      this.counters.fromCache++;
      return { decision: hit.d, source: 'cache' };
    }
    this.counters.fallback++;
    return { decision: { mac, kind: 'unknown', script: FALLBACK_SCRIPT, ttlMs: 0 }, source: 'fallback' };
  }
}
