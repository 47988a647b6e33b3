import type { Logger } from '@outpost/common';

/**
 * Coalesces tickles: requests during one burst (until the next macrotask plus
 * `delayMs`) collapse to one send per target with the flags OR-ed together, so a run
 * that queues work for 50,000 agents sends each task server one datagram.
 */
export class Tickler {
  readonly #pending = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  sent = 0;

  constructor(
    private readonly send: (id: string, flags: number) => boolean,
    private readonly log: Logger,
    private readonly delayMs = 20,
  ) {}

  request(ids: Iterable<string>, flags: number): void {
    for (const id of ids) this.#pending.set(id, (this.#pending.get(id) ?? 0) | flags);
    if (!this.#timer && this.#pending.size > 0) {
      this.#timer = setTimeout(() => this.flush(), this.delayMs);
      this.#timer.unref();
    }
  }

  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = [...this.#pending];
    this.#pending.clear();
    for (const [id, flags] of batch) {
      if (this.send(id, flags)) this.sent++;
    }
    if (batch.length) this.log.debug({ targets: batch.length }, 'tickles sent');
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending.clear();
  }
}
