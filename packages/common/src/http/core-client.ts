import { randomUUID } from 'node:crypto';

/** What every failed call names: the call and the `x-request-id` it carried. */
export interface CoreCall {
  method: string;
  path: string;
  requestId: string;
}

/** One URL a call tried and why it moved on (a transport failure, or a 502/503/504 answer). */
export interface CoreAttempt {
  url: string;
  why: string;
}

/** The core could not be reached, timed out, or broke off a 2xx answer (at every URL). */
export interface CoreUnreachable extends CoreCall {
  /** The core's base URL as configured; with several, all of them joined by `, `. */
  coreUrl: string;
  /**
   * The transport's error code (`ECONNREFUSED`…) or, lacking one, its message; with
   * several URLs, each URL and why, joined by `; `.
   */
  why: string;
  /** Each URL tried, in order, and why it failed. */
  tried: CoreAttempt[];
  cause: unknown;
}

/** The core answered with a non-2xx status. */
export interface CoreErrorAnswer extends CoreCall {
  status: number;
  /** `error.code` of the `{ error: { code, message } }` body, when there is one. */
  code: string | undefined;
  /** `error.message` of that body, when there is one. */
  message: string | undefined;
  /** The raw body (empty when it could not be read). */
  text: string;
  /** The URL that answered. */
  coreUrl: string;
}

interface CoreJsonClientCommon {
  /** Bound of each call (connect + full answer), ms; a call may pass its own. */
  timeoutMs: number;
  /** Turns a failure into the service's typed error, with the service's own codes. */
  errors: {
    unreachable(failure: CoreUnreachable): Error;
    answer(failure: CoreErrorAnswer): Error;
    /** A 2xx answer whose body is not JSON (an HTTP server that is no core); without it such an answer resolves undefined. */
    notJson?(failure: CoreNotJson): Error;
  };
}

/** A 2xx answer whose body is not JSON. */
export interface CoreNotJson extends CoreCall {
  status: number;
  text: string;
  coreUrl: string;
}

export type CoreJsonClientOptions = CoreJsonClientCommon &
  (
    | {
        /**
         * The cores' base URLs, e.g. `['http://core-a:8080', 'http://core-b:8080']` (no
         * `/api/v1`): several active cores of one estate. A call goes to the current one
         * and moves on to the next when it fails (see {@link CoreJsonClient}).
         */
        coreUrls: readonly string[];
      }
    | {
        /** One core's base URL: the same as `coreUrls: [coreUrl]`. */
        coreUrl: string;
      }
  );

/** Answers that mean "this core cannot serve now, another may": a proxy's or a core's store being down. */
const FAILOVER_STATUSES = new Set([502, 503, 504]);

/**
 * The headers of one JSON call to the core (or a site server): `accept`, the call's own
 * `x-request-id` (the callee logs the call under it), the bearer when there is one and,
 * with a body, its type and length.
 */
export function coreCallHeaders(requestId: string, bearer: string | undefined, body: Buffer | undefined): Record<string, string> {
  return {
    accept: 'application/json',
    'x-request-id': requestId,
    ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
    ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}),
  };
}

const trimUrl = (url: string): string => url.replace(/\/+$/, '');

/** The methods a call may use. */
export type CoreMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * JSON calls to the core's `/api/v1` (fetch), as the site servers make them: an
 * `x-request-id` of its own on each call (the core logs the call under it), the
 * `bearer` when set, each call bounded by `timeoutMs`. Resolves with the parsed JSON
 * answer (undefined for an empty body); a failure throws what `errors` makes of it.
 *
 * With several core URLs a call goes to the current one; when that fails in transport
 * (refused, reset, timeout, DNS) or answers 502/503/504, the call moves on to the next
 * URL, each tried at most once per call, and the URL that answers becomes the current
 * one (sticky: a healthy core keeps the traffic). When every URL fails, the error names
 * each and why (`errors.answer` of the last answer when every URL answered 502/503/504).
 */
export class CoreJsonClient {
  /** The credential sent as `Authorization: Bearer …`; none while empty. */
  bearer = '';
  /** The cores' base URLs as configured (trailing slashes dropped), in order. */
  readonly coreUrls: readonly string[];
  readonly #timeoutMs: number;
  readonly #errors: CoreJsonClientCommon['errors'];
  #current = 0;
  #failovers = 0;

  constructor(options: CoreJsonClientOptions) {
    const urls = 'coreUrls' in options ? options.coreUrls : [options.coreUrl];
    if (urls.length === 0) throw new TypeError('CoreJsonClient: no core URL');
    this.coreUrls = Object.freeze(urls.map(trimUrl));
    this.#timeoutMs = options.timeoutMs;
    this.#errors = options.errors;
  }

  /** The URL calls go to now: the last that answered (the first until one fails). */
  get currentUrl(): string {
    return this.coreUrls[this.#current] as string;
  }

  /** `<currentUrl>/api/v1`, without a trailing slash. */
  get apiBase(): string {
    return `${this.currentUrl}/api/v1`;
  }

  /** Times a call moved the traffic to another core URL (for a metric). */
  get failovers(): number {
    return this.#failovers;
  }

  async call<T>(method: CoreMethod, path: string, body?: unknown, timeoutMs = this.#timeoutMs): Promise<T> {
    const requestId = randomUUID();
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const tried: CoreAttempt[] = [];
    let lastCause: unknown;
    let lastAnswer: CoreErrorAnswer | undefined;
    let answered = 0;
    const n = this.coreUrls.length;
    for (let i = 0; i < n; i++) {
      const index = (this.#current + i) % n;
      const url = this.coreUrls[index] as string;
      const r = await this.#once(url, method, path, requestId, payload, timeoutMs);
      if (r.kind === 'unreachable') {
        tried.push({ url, why: r.why });
        lastCause = r.cause;
        continue;
      }
      if (r.kind === 'answer' && FAILOVER_STATUSES.has(r.failure.status) && n > 1) {
        tried.push({ url, why: `answered ${r.failure.status}${r.failure.code ? ` ${r.failure.code}` : ''}` });
        lastAnswer = r.failure;
        answered++;
        continue;
      }
      if (index !== this.#current) {
        this.#current = index;
        this.#failovers++;
      }
      if (r.kind === 'answer') throw this.#errors.answer(r.failure);
      if (r.kind === 'not-json') throw this.#errors.notJson!(r.failure);
      return r.value as T;
    }
    if (lastAnswer && answered === n) throw this.#errors.answer(lastAnswer);
    const single = n === 1 && tried[0];
    throw this.#errors.unreachable({
      method,
      path,
      requestId,
      coreUrl: single ? single.url : this.coreUrls.join(', '),
      why: single ? single.why : tried.map((t) => `${t.url}: ${t.why}`).join('; '),
      tried,
      cause: lastCause,
    });
  }

  /** One try at one URL: the parsed 2xx answer, the error answer, or why it could not be had. */
  async #once(
    url: string,
    method: string,
    path: string,
    requestId: string,
    payload: Buffer | undefined,
    timeoutMs: number,
  ): Promise<{ kind: 'ok'; value: unknown } | { kind: 'answer'; failure: CoreErrorAnswer } | { kind: 'not-json'; failure: CoreNotJson } | { kind: 'unreachable'; why: string; cause: unknown }> {
    const unreachable = (cause: unknown) => ({ kind: 'unreachable' as const, why: (cause as { cause?: { code?: string } }).cause?.code ?? (cause as Error).message, cause });
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${url}/api/v1${path}`, {
        method,
        headers: coreCallHeaders(requestId, this.bearer, payload),
        ...(payload ? { body: payload } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (cause) {
      return unreachable(cause);
    }
    try {
      text = await res.text();
    } catch (cause) {
      if (res.ok) return unreachable(cause);
      text = '';
    }
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      if (res.ok && this.#errors.notJson) return { kind: 'not-json', failure: { method, path, requestId, status: res.status, text, coreUrl: url } };
      parsed = undefined;
    }
    if (res.ok) return { kind: 'ok', value: parsed };
    const err = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    return {
      kind: 'answer',
      failure: {
        method,
        path,
        requestId,
        status: res.status,
        code: typeof err?.code === 'string' ? err.code : undefined,
        message: typeof err?.message === 'string' ? err.message : undefined,
        text,
        coreUrl: url,
      },
    };
  }
}
