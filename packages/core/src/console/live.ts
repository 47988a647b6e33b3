import type { ServerResponse } from 'node:http';
import { openEventStream } from '../sse.js';
import type { Logger } from '@outpost/common';

/** One open live feed: a server-sent events response. */
interface Client {
  res: ServerResponse;
  /** The last data sent could not be written at once: skip until it drains. */
  blocked: boolean;
  /** What this client may see of a snapshot (a site-scoped administrator); undefined: all. */
  view: ((snapshot: unknown) => unknown) | undefined;
  /** Data it missed while blocked (only the newest is kept: coalesced). */
  missed: string | undefined;
}

/**
 * Server-sent events with coalescing: the snapshot is built at most once per `intervalMs`,
 * only while someone listens, and sent only when it changed. A slow client gets the
 * newest snapshot when its socket drains, never a backlog.
 */
export class LiveFeed<T> {
  readonly #clients = new Set<Client>();
  #lastSnapshot: T | undefined;
  #timer: NodeJS.Timeout | undefined;
  #keepAlive: NodeJS.Timeout | undefined;
  #last = '';
  #lastData = '';
  readonly stats = { opened: 0, sent: 0, snapshots: 0, skipped: 0 };

  constructor(
    private readonly build: () => T,
    private readonly options: { intervalMs: number; keepAliveMs: number; log: Logger },
  ) {}

  get clients(): number {
    return this.#clients.size;
  }

  /** Adds a response (headers not yet sent) as a client; it gets the current snapshot at once. */
  add(res: ServerResponse, view?: (snapshot: T) => unknown): void {
    openEventStream(res);
    const client: Client = { res, blocked: false, missed: undefined, view: view as ((snapshot: unknown) => unknown) | undefined };
    this.#clients.add(client);
    this.stats.opened++;
    res.on('close', () => {
      this.#clients.delete(client);
      if (this.#clients.size === 0) this.#idle();
    });
    res.on('drain', () => {
      client.blocked = false;
      const missed = client.missed;
      client.missed = undefined;
      if (missed !== undefined) this.#write(client, missed);
    });
    const data = this.#lastData !== '' && this.#timer ? this.#lastData : this.#frame(this.#snapshot());
    this.#write(client, client.view ? this.#viewFrame(client) : data);
    this.#ensureTimers();
  }

  /**
   * Ends every feed (the core is stopping): the stream ends cleanly (its last chunk sent)
   * and the connection closes, so the HTTP listener's close does not wait for it.
   */
  close(): void {
    this.#idle();
    for (const c of this.#clients) {
      const socket = c.res.socket;
      c.res.end(() => socket?.destroySoon());
    }
    this.#clients.clear();
  }

  #ensureTimers(): void {
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#tick(), this.options.intervalMs);
      this.#timer.unref();
    }
    if (!this.#keepAlive) {
      this.#keepAlive = setInterval(() => {
        for (const c of this.#clients) if (!c.blocked) c.res.write(': keep-alive\n\n');
      }, this.options.keepAliveMs);
      this.#keepAlive.unref();
    }
  }

  #idle(): void {
    clearInterval(this.#timer);
    clearInterval(this.#keepAlive);
    this.#timer = undefined;
    this.#keepAlive = undefined;
    this.#last = '';
    this.#lastData = '';
  }

  #snapshot(): string {
    this.stats.snapshots++;
    this.#lastSnapshot = this.build();
    return JSON.stringify(this.#lastSnapshot);
  }

  #viewFrame(c: Client): string {
    return `event: snapshot\ndata: ${JSON.stringify(c.view!(this.#lastSnapshot))}\n\n`;
  }

  #frame(json: string): string {
    this.#last = json;
    this.#lastData = `event: snapshot\ndata: ${json}\n\n`;
    return this.#lastData;
  }

  #tick(): void {
    let json: string;
    try {
      json = this.#snapshot();
    } catch (err) {
      this.options.log.error({ err }, 'building the console snapshot failed');
      return;
    }
    if (json === this.#last) {
      this.stats.skipped++;
      return;
    }
    const data = this.#frame(json);
    for (const c of this.#clients) this.#write(c, c.view ? this.#viewFrame(c) : data);
  }

  #write(c: Client, data: string): void {
    if (c.blocked) {
      c.missed = data;
      return;
    }
    this.stats.sent++;
    if (!c.res.write(data)) c.blocked = true;
  }
}
