import type { Logger } from '@outpost/common';
import type { BootBackend, BootEventOut } from './core-client.js';

const MAX_QUEUED = 20_000;
const BATCH = 1000;

/**
 * Boot events for the core's timeline, sent in batches every `intervalMs`. The queue is
 * bounded (oldest dropped and counted) so a flood or a core outage cannot grow memory.
 */
export class EventReporter {
  #queue: BootEventOut[] = [];
  #timer: NodeJS.Timeout | undefined;
  #sending: Promise<void> = Promise.resolve();
  readonly counters = { queued: 0, sent: 0, dropped: 0, failures: 0 };

  constructor(
    private readonly backend: BootBackend,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  push(e: BootEventOut): void {
    this.counters.queued++;
    this.#queue.push(e);
    if (this.#queue.length > MAX_QUEUED) {
      this.#queue.shift();
      this.counters.dropped++;
    }
  }

  start(): void {
    this.#timer = setInterval(() => void this.flush(), this.intervalMs);
    this.#timer.unref();
  }

  /** Sends what is queued (one batch at a time); failed batches are put back. */
  flush(): Promise<void> {
    this.#sending = this.#sending.then(async () => {
      // Bounded: at most MAX_QUEUED / BATCH batches per flush.
      for (let n = 0; n < MAX_QUEUED / BATCH && this.#queue.length > 0; n++) {
        const batch = this.#queue.splice(0, BATCH);
        try {
          await this.backend.events(batch);
          this.counters.sent += batch.length;
        } catch (err) {
          this.counters.failures++;
          this.#queue.unshift(...batch.slice(0, Math.max(0, MAX_QUEUED - this.#queue.length)));
          this.log.debug({ err, events: batch.length }, 'sending boot events to the core failed; kept for the next try');
          return;
        }
      }
    });
    return this.#sending;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
