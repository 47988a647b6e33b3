import type { ServerResponse } from 'node:http';
import { openEventStream } from '../sse.js';
import type { AuditEntry } from './entry.js';

/** A stream whose socket holds more than this unsent is too slow: it is ended. */
const MAX_BUFFERED = 1024 * 1024;

/**
 * The live audit streams: server-sent events, one `event: audit` per committed entry
 * (`id:` its seq). Bounded in clients; a client that cannot keep up is ended rather than
 * buffered without limit (it reconnects and queries what it missed).
 */
export class AuditStreams {
  readonly #clients = new Set<ServerResponse>();
  #keepAlive: NodeJS.Timeout | undefined;
  readonly stats = { opened: 0, sent: 0, dropped: 0 };

  constructor(private readonly keepAliveMs: number) {}

  get clients(): number {
    return this.#clients.size;
  }

  add(res: ServerResponse): void {
    openEventStream(res);
    this.#clients.add(res);
    this.stats.opened++;
    res.on('close', () => {
      this.#clients.delete(res);
      if (this.#clients.size === 0) {
        clearInterval(this.#keepAlive);
        this.#keepAlive = undefined;
      }
    });
    if (!this.#keepAlive) {
      this.#keepAlive = setInterval(() => {
        for (const c of this.#clients) c.write(': keep-alive\n\n');
      }, this.keepAliveMs);
      this.#keepAlive.unref();
    }
  }

  publish(e: AuditEntry): void {
    if (this.#clients.size === 0) return;
    const frame = `event: audit\nid: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`;
    for (const c of this.#clients) {
      if (c.writableLength > MAX_BUFFERED) {
        this.stats.dropped++;
        this.#clients.delete(c);
        c.destroy();
        continue;
      }
      c.write(frame);
      this.stats.sent++;
    }
  }

  /** Ends every stream (the core is stopping). */
  close(): void {
    clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
    for (const c of this.#clients) {
      const socket = c.socket;
      c.end(() => socket?.destroySoon());
    }
    this.#clients.clear();
  }
}
