import { backoffDelay, eventsAnswerSchema, type BatchOp, type Logger } from '@outpost/common';
import type { CoreClient } from './core-client.js';
import type { StatusEvent } from './protocol.js';
import type { TsStore } from './store.js';

export interface OutboxOptions {
  batchSize: number;
  maxBytes: number;
  retryBase: number;
  retryCap: number;
  /** How long a batch smaller than `batchSize` waits for more events after its oldest one was written, ms (0: it goes at once). */
  linger: number;
}

/** Ids forwarded lately, so an agent's redelivery is not forwarded again. */
const RECENT = 200_000;

/** Placeholder group of an event between `add` and its commit (not sent before it is on disk). */
const PENDING: Group = { key: '', events: [], left: 0, at: 0 };

/** A group commit's events as stored: one level record for all of them. */
interface Group {
  key: string;
  events: StatusEvent[];
  /** Events of the group the core has not acknowledged yet. */
  left: number;
  /** When it was written (ms; 0 when loaded at start: it goes without lingering). */
  at: number;
}

/**
 * Status events on their way to the core. `add` writes them to level (the caller acks
 * the agent only after that); the forwarder sends them in batches, deletes them only
 * after the core acknowledged them, and retries with backoff while the core is away.
 * Writes are group-committed: every `add` of one turn of the event loop goes to level
 * in one batch, its events as **one record** (key: a sequence number), so 50,000
 * agents' statuses are a few hundred level writes, not hundreds of thousands. A record
 * is deleted once all its events are acknowledged, rewritten with the rest when only
 * some are. An event re-sent before it left is kept once (its id is still queued); one
 * re-sent after it left is recognised (recent ids) and dropped.
 */
export class Outbox {
  readonly stats = { received: 0, duplicates: 0, forwarded: 0, batches: 0, failures: 0, pending: 0, groups: 0, refusedByCore: 0, rejectedByCore: 0 };
  readonly #recent = new Set<string>();
  /** Events stored and not yet acknowledged by the core, oldest first, with their group. */
  readonly #queued = new Map<string, [StatusEvent, Group]>();
  /** Writes waiting for the next group commit. */
  #commit: Array<{ ops: BatchOp[]; events: StatusEvent[]; done: (err?: unknown) => void }> = [];
  #commitScheduled = false;
  #groupSeq = 0;
  #wake: (() => void) | undefined;
  /** The forwarder waits for a batch to fill (an add wakes it only once a batch is full). */
  #lingering = false;
  #running = false;
  #loop: Promise<void> = Promise.resolve();
  #failures = 0;
  /**
   * After the core rejected a whole batch as malformed (400/413), the next this-many events
   * go one by one, so the one it cannot take is found and dropped and the rest go on.
   */
  #isolate = 0;

  constructor(
    private readonly store: TsStore,
    private readonly core: CoreClient,
    private readonly options: OutboxOptions,
    private readonly log: Logger,
  ) {}

  async load(): Promise<void> {
    for await (const [key, events] of this.store.outboxGroups.iterator()) {
      const g: Group = { key, events, left: 0, at: 0 };
      for (const e of events) {
        if (this.#queued.has(e.id)) continue;
        this.#queued.set(e.id, [e, g]);
        g.left++;
      }
      this.#groupSeq = Math.max(this.#groupSeq, Number.parseInt(key, 36) || 0);
    }
    // Events stored one per record by earlier versions: queue them, rewritten as a group.
    const legacy: StatusEvent[] = [];
    const ops: BatchOp[] = [];
    for await (const [id, e] of this.store.outbox.iterator()) {
      ops.push(this.store.del(this.store.outbox, id));
      if (!this.#queued.has(e.id)) legacy.push(e);
    }
    if (ops.length) {
      const g = this.#group(legacy);
      for (const e of legacy) this.#queued.set(e.id, [e, g]);
      ops.push(this.store.put(this.store.outboxGroups, g.key, legacy));
      await this.store.write(ops);
    }
    this.stats.pending = this.#queued.size;
  }

  #group(events: StatusEvent[]): Group {
    this.stats.groups++;
    return { key: (++this.#groupSeq).toString(36).padStart(11, '0'), events, left: events.length, at: Date.now() };
  }

  /**
   * Group commit: every write asked for in one turn of the event loop goes to level in
   * one batch (its events in one record); each caller's promise settles when that batch
   * is on disk.
   */
  #write(ops: BatchOp[], events: StatusEvent[] = []): Promise<void> {
    if (ops.length === 0 && events.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#commit.push({ ops, events, done: (err) => (err === undefined ? resolve() : reject(err)) });
      if (this.#commitScheduled) return;
      this.#commitScheduled = true;
      setImmediate(() => {
        this.#commitScheduled = false;
        const turn = this.#commit;
        this.#commit = [];
        const all = turn.flatMap((t) => t.ops);
        const events = turn.flatMap((t) => t.events);
        let g: Group | undefined;
        if (events.length) {
          g = this.#group(events);
          for (const e of events) {
            const q = this.#queued.get(e.id);
            if (q) q[1] = g;
          }
          all.push(this.store.put(this.store.outboxGroups, g.key, events));
        }
        this.store.write(all).then(
          () => turn.forEach((t) => t.done()),
          (err: unknown) => turn.forEach((t) => t.done(err ?? new Error('write failed'))),
        );
      });
    });
  }

  /** Events to store, plus other writes that must land in the same batch. */
  async add(events: StatusEvent[], ops: BatchOp[] = []): Promise<number> {
    const fresh: StatusEvent[] = [];
    for (const e of events) {
      this.stats.received++;
      if (this.#recent.has(e.id) || this.#queued.has(e.id)) {
        this.stats.duplicates++;
        continue;
      }
      // Queued now (a redelivery in the same turn is a duplicate); its group is set at commit.
      this.#queued.set(e.id, [e, PENDING]);
      fresh.push(e);
    }
    try {
      await this.#write(ops, fresh);
    } catch (err) {
      for (const e of fresh) this.#queued.delete(e.id);
      throw err;
    }
    this.stats.pending = this.#queued.size;
    if (fresh.length && (!this.#lingering || this.#queued.size >= this.options.batchSize)) this.#wake?.();
    return fresh.length;
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
      for (const [e, g] of this.#queued.values()) {
        if (g === PENDING) break;
        bytes += (e.output?.length ?? 0) + 200;
        if (batch.length >= (this.#isolate > 0 ? 1 : this.options.batchSize) || (batch.length > 0 && bytes > this.options.maxBytes)) break;
        batch.push(e);
      }
      if (batch.length === 0) {
        await this.#sleep(5);
        continue;
      }
      // A batch that is not full waits for more, up to `linger` after its oldest event was
      // written: while the core answers fast, each answer would otherwise send the few events
      // that came in meanwhile, and every call costs both sides the same whatever its size.
      const wait = this.#isolate > 0 || batch.length >= this.options.batchSize || bytes > this.options.maxBytes ? 0 : (this.#queued.get(batch[0]!.id)?.[1].at ?? 0) + this.options.linger - Date.now();
      if (wait > 0) {
        this.#lingering = true;
        await this.#sleep(wait);
        this.#lingering = false;
        continue;
      }
      try {
        // Events the core refused (a missing or wrong agent MAC, an agent not served
        // here) are acknowledged as refused: counted and dropped, never sent again.
        const answer = eventsAnswerSchema.safeParse(await this.core.call('POST', '/task-service/events', { events: batch }));
        if (answer.success && answer.data.refused > 0) {
          this.stats.refusedByCore += answer.data.refused;
          this.log.warn({ refused: answer.data.refused, batch: batch.length }, 'the core refused status events (no or a wrong agent MAC, or an agent not served here)');
        }
        if (this.#isolate > 0) this.#isolate--;
      } catch (err) {
        const status = (err as { details?: { status?: unknown } }).details?.status;
        if (status === 400 || status === 413) {
          // The core will never take this batch as it is: retrying it forever would stop
          // every status behind it. Find the event it cannot take, drop it, send the rest.
          if (batch.length > 1) {
            this.#isolate = batch.length;
            continue;
          }
          this.#isolate = Math.max(0, this.#isolate - 1);
          this.stats.rejectedByCore++;
          const e = batch[0]!;
          this.log.error({ err, event: e.id, agent: e.agent, run: e.run }, 'the core rejected a status event as malformed; dropped');
        } else {
          this.stats.failures++;
          const delay = backoffDelay(this.#failures++, { baseMs: this.options.retryBase, capMs: this.options.retryCap });
          if (this.#failures <= 3 || this.#failures % 20 === 0) this.log.warn({ code: (err as { code?: string }).code, pending: this.#queued.size, retryInMs: delay }, 'forwarding status events failed; retrying');
          await this.#sleep(delay);
          continue;
        }
      }
      this.#failures = 0;
      const touched = new Set<Group>();
      for (const e of batch) {
        const q = this.#queued.get(e.id);
        if (!q) continue;
        this.#queued.delete(e.id);
        this.#recent.add(e.id);
        q[1].left--;
        touched.add(q[1]);
      }
      const ops: BatchOp[] = [];
      for (const g of touched) {
        if (g.left <= 0) ops.push(this.store.del(this.store.outboxGroups, g.key));
        else {
          g.events = g.events.filter((e) => this.#queued.get(e.id)?.[1] === g);
          ops.push(this.store.put(this.store.outboxGroups, g.key, g.events));
        }
      }
      await this.#write(ops);
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
