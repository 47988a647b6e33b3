import { backoffDelay, type Logger } from '@outpost/common';
import type { CoreClient } from '../core-client.js';
import { isCoreHttpError } from '../errors.js';
import type { JournalStore, RunJournal } from './journal.js';

const BATCH = 200;

/**
 * Delivers journaled status events to the task server in batches. An event leaves its
 * journal only after the task server acknowledged it (it has then stored it); a run
 * whose events are all acknowledged and that is final is marked done. Failures retry
 * with backoff; a run the task server no longer knows (404) is dropped.
 */
export class Reporter {
  readonly stats = { sent: 0, batches: 0, failures: 0 };
  #timer: NodeJS.Timeout | undefined;
  #busy: Promise<void> | undefined;
  #failures = 0;
  #stopped = false;

  constructor(
    private readonly journals: Map<string, RunJournal>,
    private readonly store: JournalStore,
    private readonly client: () => { client: CoreClient; bearer: string } | undefined,
    private readonly log: Logger,
  ) {}

  /** Sends soon (coalesced). */
  kick(delayMs = 0): void {
    if (this.#stopped || this.#timer || this.#busy) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#busy = this.#flush().finally(() => {
        this.#busy = undefined;
      });
    }, delayMs);
  }

  async #flush(): Promise<void> {
    const c = this.client();
    const pending = [...this.journals.values()].filter((j) => j.outbox.length > 0);
    if (pending.length === 0) return;
    if (!c) return this.kick(1_000);
    const events = pending.flatMap((j) => j.outbox).slice(0, BATCH);
    try {
      await c.client.call('POST', '/agent/events', { bearer: c.bearer, body: { events } });
    } catch (err) {
      if (isCoreHttpError(err) && err.httpStatus === 404) {
        this.log.warn({ code: err.coreCode, events: events.length }, 'the task server does not know these runs any more; dropping their events');
      } else {
        this.stats.failures++;
        const delay = backoffDelay(this.#failures++, { baseMs: 500, capMs: 30_000 });
        this.log.debug({ message: (err as Error).message, retryInMs: delay }, 'reporting status failed');
        return this.kick(delay);
      }
    }
    this.#failures = 0;
    this.stats.sent += events.length;
    this.stats.batches++;
    const sent = new Set(events.map((e) => e.id));
    for (const j of pending) {
      const before = j.outbox.length;
      j.outbox = j.outbox.filter((e) => !sent.has(e.id));
      if (j.outbox.length === before) continue;
      if (j.final && j.outbox.length === 0) {
        await this.store.finish(j.run.id);
        this.journals.delete(j.run.id);
      } else {
        await this.store.save(j);
      }
    }
    if ([...this.journals.values()].some((j) => j.outbox.length > 0)) this.kick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#busy;
  }
}
