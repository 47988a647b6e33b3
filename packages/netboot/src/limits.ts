/** A Map that forgets its least recently set entries beyond `max` (bounded memory under floods). */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(readonly max: number) {
    super();
  }

  override set(key: K, value: V): this {
    if (super.has(key)) super.delete(key);
    super.set(key, value);
    // Bounded: at most one eviction per insert beyond the cap.
    if (super.size > this.max) {
      const oldest = super.keys().next();
      if (!oldest.done) super.delete(oldest.value);
    }
    return this;
  }
}

/** Token bucket: `rate` tokens per second, up to `burst`. */
export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    now: number,
  ) {
    this.#tokens = burst;
    this.#last = now;
  }

  take(now: number): boolean {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.rate);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/** Global and per-MAC reply budgets: a flood from many MACs gets a bounded reply rate. */
export class ReplyLimiter {
  readonly #global: TokenBucket;
  readonly #perMac: BoundedMap<string, TokenBucket>;

  constructor(
    private readonly cfg: { perSecond: number; perMacPerSecond: number; trackedMacs: number },
    now: number,
  ) {
    this.#global = new TokenBucket(cfg.perSecond, cfg.perSecond, now);
    this.#perMac = new BoundedMap(cfg.trackedMacs);
  }

  /** 'ok', or why the reply is not sent. */
  allow(mac: string, now: number): 'ok' | 'mac-rate' | 'global-rate' {
    let b = this.#perMac.get(mac);
    if (!b) {
      b = new TokenBucket(this.cfg.perMacPerSecond, Math.max(2, Math.ceil(this.cfg.perMacPerSecond)), now);
      this.#perMac.set(mac, b);
    }
    if (!b.take(now)) return 'mac-rate';
    return this.#global.take(now) ? 'ok' : 'global-rate';
  }

  get tracked(): number {
    return this.#perMac.size;
  }
}

/**
 * A counting semaphore with a bounded FIFO queue and a bounded wait: beyond `max`
 * holders, callers wait (answered later, not dropped) up to `maxWaitMs`; beyond `queue`
 * waiters, `acquire` resolves false at once.
 */
export class Slots {
  #held = 0;
  readonly #waiters: Array<{ resolve: (ok: boolean) => void; timer: NodeJS.Timeout }> = [];
  peakWaiting = 0;

  constructor(
    readonly max: number,
    readonly queue: number,
    readonly maxWaitMs: number,
  ) {}

  get held(): number {
    return this.#held;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  acquire(): Promise<boolean> {
    if (this.#held < this.max) {
      this.#held++;
      return Promise.resolve(true);
    }
    if (this.#waiters.length >= this.queue) return Promise.resolve(false);
    return new Promise((resolve) => {
      const w = {
        resolve,
        timer: setTimeout(() => {
          const i = this.#waiters.indexOf(w);
          if (i >= 0) this.#waiters.splice(i, 1);
          resolve(false);
        }, this.maxWaitMs),
      };
      w.timer.unref();
      this.#waiters.push(w);
      this.peakWaiting = Math.max(this.peakWaiting, this.#waiters.length);
    });
  }

  release(): void {
    const next = this.#waiters.shift();
    if (next) {
      clearTimeout(next.timer);
      next.resolve(true);
      return;
    }
    if (this.#held > 0) this.#held--;
  }

  /** Wakes every waiter with false (stop). */
  drain(): void {
    for (const w of this.#waiters.splice(0)) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
  }
}
