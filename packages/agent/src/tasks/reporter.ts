import { backoffDelay, type Logger } from '@outpost/common';
import type { CoreClient } from '../core-client.js';
import { isCoreHttpError } from '../errors.js';
import type { JournalStore, RunJournal } from './journal.js';
import type { StatusEvent } from './types.js';

/** Status events kept in memory only (refused work: never journaled), sent before the journals'. */
export interface EventSource {
  pending(): StatusEvent[];
  acked(ids: Set<string>): void;
}

const BATCH = 200;

/**
 * Delivers journaled status events (and refusals of work) to the task server in batches,
 * each with the agent's MAC added as it is sent (`mac`): the core checks it, so the
 * task server cannot forge or alter a result. An event leaves its
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
  /** A kick that came while a flush was in flight (its delay): taken when that flush ends. */
  #again: number | undefined;

  constructor(
    private readonly journals: Map<string, RunJournal>,
    private readonly store: JournalStore,
    private readonly client: () => { client: CoreClient; bearer: string } | undefined,
    private readonly log: Logger,
    /** Adds the agent's MAC to an event (undefined: not enrolled, nothing is sent). */
    private readonly mac: () => ((e: StatusEvent) => StatusEvent & { mac: string }) | undefined,
    private readonly extra: EventSource = { pending: () => [], acked: () => undefined },
  ) {}

  /**
   * Sends soon (coalesced). A kick while a batch is in flight is kept and taken when it
   * ends (events reported meanwhile, or a retry the flush asked for): never dropped.
   */
  kick(delayMs = 0): void {
    if (this.#stopped) return;
    if (this.#busy) {
      this.#again = Math.min(this.#again ?? delayMs, delayMs);
      return;
    }
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#busy = this.#flush()
        .catch((err: unknown) => {
          // A journal that cannot be saved: the events stay in memory and go with the next try.
          this.stats.failures++;
          this.log.warn({ err }, 'reporting status failed');
          this.#again ??= backoffDelay(this.#failures++, { baseMs: 500, capMs: 30_000 });
        })
        .finally(() => {
          this.#busy = undefined;
          const again = this.#again;
          this.#again = undefined;
          if (again !== undefined) this.kick(again);
        });
    }, delayMs);
  }

  async #flush(): Promise<void> {
    const c = this.client();
    const mac = this.mac();
    const pending = [...this.journals.values()].filter((j) => j.outbox.length > 0);
    const extra = this.extra.pending();
    if (pending.length === 0 && extra.length === 0) return;
    if (!c || !mac) return this.kick(1_000);
    // Refusals go alone: a run the task server does not know (404) drops only them.
    const events = (extra.length > 0 ? extra : pending.flatMap((j) => j.outbox)).slice(0, BATCH);
    try {
      await c.client.call('POST', '/agent/events', { bearer: c.bearer, body: { events: events.map(mac) } });
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
    this.extra.acked(sent);
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
    if (this.extra.pending().length > 0 || [...this.journals.values()].some((j) => j.outbox.length > 0)) this.kick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#busy;
  }
}
