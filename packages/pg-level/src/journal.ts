import pg from 'pg';
import type { PgLevel } from './pg-level.js';

/** Journal rows read at once. */
const PAGE = 500;

/**
 * The reading side of a shared table's journal: a connection of its own LISTENs on the
 * table's channel (a write notifies its seq when it commits) and every notification, or
 * the reconnection of a listener that dropped (what came meanwhile), reads the entries after
 * the last one applied, in seq order, and hands each to the opener. Journal order is commit
 * order (writers append under one transaction lock), so reading "after the last seq"
 * misses nothing. Entries older than the retention are deleted by whichever opener gets
 * there; an opener cut off for longer than that emits `journal-behind` (its memory may have
 * missed changes: restart it).
 */
export class Journal {
  readonly channel: string;
  #listener: pg.Client | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = true;
  #after = 0;
  #lastRead = Date.now();
  #lastSweep = 0;

  constructor(
    private readonly db: PgLevel,
    private readonly pollMs: number,
    private readonly retentionMs: number,
  ) {
    this.channel = `${db.table}_changes`;
  }

  /** Starts after the newest entry: the opener loads its state after this (and re-reading an entry is harmless). */
  async start(): Promise<void> {
    this.#stopped = false;
    const rows = await this.db.query<{ v: string | null }>(`SELECT max(seq) AS v FROM ${this.db.table}_journal`);
    this.#after = Number(rows[0]?.v ?? 0);
    this.db.sharing.lastSeq = this.#after;
    this.#lastRead = Date.now();
    if (this.#following) this.#follow();
  }

  #following = false;

  /**
   * Listens from now on (called when the opener gets its first `change` listener, so an
   * opener nobody follows holds no connection). The poll only reconnects a listener that
   * dropped (server restart, failover) and then reads what came meanwhile: while connected,
   * every commit's notification arrives.
   */
  follow(): void {
    this.#following = true;
    if (!this.#stopped) this.#follow();
  }

  #follow(): void {
    if (this.#timer) return;
    this.poke();
    this.#timer = setInterval(() => {
      if (!this.#listener) this.poke();
    }, this.pollMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    const l = this.#listener;
    this.#listener = undefined;
    await l?.end().catch(() => undefined);
    await this.#running?.catch(() => undefined);
  }

  async #listen(): Promise<void> {
    if (this.#stopped || this.#listener) return;
    const client = new pg.Client({ connectionString: this.db.url });
    client.on('error', () => undefined);
    client.on('notification', () => this.poke());
    client.once('end', () => {
      if (this.#listener === client) this.#listener = undefined;
    });
    await client.connect();
    await client.query(`LISTEN ${this.channel}`);
    if (this.#stopped) return void (await client.end().catch(() => undefined));
    this.#listener = client;
  }

  /** Reads what is new now and resolves after (a read in progress is followed by another). */
  async readNow(): Promise<void> {
    if (this.#stopped || !this.#following) return;
    while (this.#running) await this.#running;
    this.poke();
    await this.#running;
  }

  /** Reads what is new (once at a time; a poke while reading reads again after). */
  poke(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#read()
      .catch(() => undefined)
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.poke();
        }
      });
  }

  async #read(): Promise<void> {
    if (!this.#listener) {
      await this.#listen().catch(() => undefined);
    }
    for (;;) {
      const rows = await this.db.query<{ seq: string; origin: string; keys: Buffer[]; vals: Array<Buffer | null> }>(
        `SELECT seq, origin, keys, vals FROM ${this.db.table}_journal WHERE seq > $1 ORDER BY seq LIMIT ${PAGE}`,
        [this.#after],
      );
      const now = Date.now();
      if (now - this.#lastRead > this.retentionMs) this.db.emit('journal-behind', { after: this.#after, silentMs: now - this.#lastRead });
      this.#lastRead = now;
      for (const r of rows) {
        const seq = Number(r.seq);
        this.#after = seq;
        this.db._applyEntry(seq, r.origin, r.keys, r.vals);
      }
      if (rows.length < PAGE) break;
    }
    if (Date.now() - this.#lastSweep > 60_000) {
      this.#lastSweep = Date.now();
      await this.db.query(`DELETE FROM ${this.db.table}_journal WHERE at < now() - $1::interval`, [`${Math.round(this.retentionMs / 1000)} seconds`]);
    }
  }
}
