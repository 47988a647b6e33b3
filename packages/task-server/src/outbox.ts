import { backoffDelay, type BatchOp, type Logger } from '@outpost/common';
import type { CoreClient } from './core-client.js';
import type { StatusEvent } from './protocol.js';
import type { TsStore } from './store.js';

export interface OutboxOptions {
  batchSize: number;
  maxBytes: number;
  retryBase: number;
  retryCap: number;
}

/** Ids forwarded lately, so an agent's redelivery is not forwarded again. */
const RECENT = 200_000;

/**
 * Status events on their way to the core. `add` writes them to level (the caller acks
 * the agent only after that); the forwarder sends them in batches, deletes a batch
 * only after the core acknowledged it, and retries with backoff while the core is
 * away. The event id is the level key, so an event re-sent before it left is stored
 * once; one re-sent after it left is recognised (recent ids) and dropped.
 */
export class Outbox {
  readonly stats = { received: 0, duplicates: 0, forwarded: 0, batches: 0, failures: 0, pending: 0 };
  readonly #recent = new Set<string>();
  /** Events stored and not yet acknowledged by the core, oldest first (a copy of the level sublevel). */
  readonly #queued = new Map<string, StatusEvent>();
  /** Writes waiting for the next group commit. */
  #commit: Array<{ ops: BatchOp[]; done: (err?: unknown) => void }> = [];
  #commitScheduled = false;
  #wake: (() => void) | undefined;
  #running = false;
  #loop: Promise<void> = Promise.resolve();
  #failures = 0;

  constructor(
    private readonly store: TsStore,
    private readonly core: CoreClient,
    private readonly options: OutboxOptions,
    private readonly log: Logger,
  ) {}

  async load(): Promise<void> {
    for await (const [k, e] of this.store.outbox.iterator()) this.#queued.set(k, e);
    this.stats.pending = this.#queued.size;
  }

  /**
   * Group commit: every write asked for in one turn of the event loop goes to level in
   * one batch; each caller's promise settles when that batch is on disk.
   */
  #write(ops: BatchOp[]): Promise<void> {
    if (ops.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#commit.push({ ops, done: (err) => (err === undefined ? resolve() : reject(err)) });
      if (this.#commitScheduled) return;
      this.#commitScheduled = true;
      setImmediate(() => {
        this.#commitScheduled = false;
        const group = this.#commit;
        this.#commit = [];
        this.store.write(group.flatMap((g) => g.ops)).then(
          () => group.forEach((g) => g.done()),
          (err: unknown) => group.forEach((g) => g.done(err ?? new Error('write failed'))),
        );
      });
    });
  }

  /** Events to store, plus other writes that must land in the same batch. */
  async add(events: StatusEvent[], ops: BatchOp[] = []): Promise<number> {
    let added = 0;
    const all = [...ops];
    for (const e of events) {
      this.stats.received++;
      if (this.#recent.has(e.id) || this.#queued.has(e.id)) {
        this.stats.duplicates++;
        continue;
      }
      all.push(this.store.put(this.store.outbox, e.id, e));
      this.#queued.set(e.id, e);
      added++;
    }
    try {
      await this.#write(all);
    } catch (err) {
      for (const e of events) this.#queued.delete(e.id);
      throw err;
    }
    this.stats.pending = this.#queued.size;
    if (added) this.#wake?.();
    return added;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop;
  }

  async #sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.#wake = done;
    });
    this.#wake = undefined;
  }

  async #run(): Promise<void> {
    while (this.#running) {
      if (this.#queued.size === 0) {
        await this.#sleep(60_000);
        continue;
      }
      const batch: StatusEvent[] = [];
      let bytes = 0;
      for (const e of this.#queued.values()) {
        bytes += (e.output?.length ?? 0) + 200;
        if (batch.length >= this.options.batchSize || (batch.length > 0 && bytes > this.options.maxBytes)) break;
        batch.push(e);
      }
      try {
        await this.core.call('POST', '/task-service/events', { events: batch });
      } catch (err) {
        this.stats.failures++;
        const delay = backoffDelay(this.#failures++, { baseMs: this.options.retryBase, capMs: this.options.retryCap });
        if (this.#failures <= 3 || this.#failures % 20 === 0) this.log.warn({ code: (err as { code?: string }).code, pending: this.#queued.size, retryInMs: delay }, 'forwarding status events failed; retrying');
        await this.#sleep(delay);
        continue;
      }
      this.#failures = 0;
      await this.#write(batch.map((e) => this.store.del(this.store.outbox, e.id)));
      for (const e of batch) {
        this.#queued.delete(e.id);
        this.#recent.add(e.id);
      }
      if (this.#recent.size > RECENT) {
        let drop = this.#recent.size - RECENT;
        for (const id of this.#recent) {
          if (drop-- <= 0) break;
          this.#recent.delete(id);
        }
      }
      this.stats.forwarded += batch.length;
      this.stats.batches++;
      this.stats.pending = this.#queued.size;
    }
  }
}
