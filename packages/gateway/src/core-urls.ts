import { GatewayError, GatewayErrors } from './errors.js';
import type { CoreResponse } from './core-client.js';

/** Answers that mean "this core cannot serve now, another may". */
const FAILOVER_STATUSES = new Set([502, 503, 504]);

/**
 * The URLs of one estate's cores (several active cores behind one database), used in
 * order: a call goes to the current URL; when it fails in transport or answers
 * 502/503/504 it goes to the next (each at most once per call), and the URL that
 * answered becomes the current one (sticky). When every URL fails, the error names each.
 */
export class CoreUrls {
  readonly urls: readonly string[];
  #current = 0;
  #failovers = 0;

  constructor(urls: readonly string[]) {
    if (urls.length === 0) throw new TypeError('CoreUrls: no core URL');
    this.urls = Object.freeze(urls.map((u) => u.replace(/\/+$/, '')));
  }

  /** The URL calls go to now. */
  get current(): string {
    return this.urls[this.#current] as string;
  }

  /** Times a call moved to another URL. */
  get failovers(): number {
    return this.#failovers;
  }

  /** `send` at each URL in turn from the current one; the first answer that is not 502/503/504 (or the last answer). */
  async call<T>(what: string, send: (url: string) => Promise<CoreResponse<T>>): Promise<CoreResponse<T>> {
    const n = this.urls.length;
    const tried: string[] = [];
    let lastAnswer: CoreResponse<T> | undefined;
    let lastError: unknown;
    for (let i = 0; i < n; i++) {
      const index = (this.#current + i) % n;
      const url = this.urls[index] as string;
      try {
        const res = await send(url);
        if (n > 1 && FAILOVER_STATUSES.has(res.status)) {
          const code = (res.body as { error?: { code?: unknown } } | undefined)?.error?.code;
          tried.push(`${url}: answered ${res.status}${typeof code === 'string' ? ` ${code}` : ''}`);
          lastAnswer = res;
          continue;
        }
        if (index !== this.#current) {
          this.#current = index;
          this.#failovers++;
        }
        return res;
      } catch (err) {
        if (n === 1) throw err;
        tried.push(`${url}: ${(err as Error).message}`);
        lastError = err;
      }
    }
    if (lastAnswer && tried.length === n && lastError === undefined) return lastAnswer;
    throw new GatewayError(GatewayErrors.CORE_LINK, `${what}: no core answered (${tried.join('; ')})`, { cause: lastError });
  }
}
