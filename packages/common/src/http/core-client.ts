import { randomUUID } from 'node:crypto';

/** What every failed call names: the call and the `x-request-id` it carried. */
export interface CoreCall {
  method: string;
  path: string;
  requestId: string;
}

/** The core could not be reached, timed out, or broke off a 2xx answer. */
export interface CoreUnreachable extends CoreCall {
  /** The core's base URL as configured. */
  coreUrl: string;
  /** The transport's error code (`ECONNREFUSED`…) or, lacking one, its message. */
  why: string;
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
}

export interface CoreJsonClientOptions {
  /** The core's base URL, e.g. `http://127.0.0.1:8080` (no `/api/v1`). */
  coreUrl: string;
  /** Bound of each call (connect + full answer), ms; a call may pass its own. */
  timeoutMs: number;
  /** Turns a failure into the service's typed error, with the service's own codes. */
  errors: {
    unreachable(failure: CoreUnreachable): Error;
    answer(failure: CoreErrorAnswer): Error;
  };
}

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

/**
 * JSON calls to the core's `/api/v1` (fetch), as the site servers make them: an
 * `x-request-id` of its own on each call (the core logs the call under it), the
 * `bearer` when set, each call bounded by `timeoutMs`. Resolves with the parsed JSON
 * answer (undefined for an empty body); a failure throws what `errors` makes of it.
 */
export class CoreJsonClient {
  /** The credential sent as `Authorization: Bearer …`; none while empty. */
  bearer = '';
  readonly coreUrl: string;
  /** `<coreUrl>/api/v1`, without a trailing slash. */
  readonly apiBase: string;
  readonly #timeoutMs: number;
  readonly #errors: CoreJsonClientOptions['errors'];

  constructor(options: CoreJsonClientOptions) {
    this.coreUrl = options.coreUrl;
    this.apiBase = `${options.coreUrl.replace(/\/+$/, '')}/api/v1`;
    this.#timeoutMs = options.timeoutMs;
    this.#errors = options.errors;
  }

  async call<T>(method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = this.#timeoutMs): Promise<T> {
    const requestId = randomUUID();
    const unreachable = (cause: unknown): Error => {
      const why = (cause as { cause?: { code?: string } }).cause?.code ?? (cause as Error).message;
      return this.#errors.unreachable({ method, path, requestId, coreUrl: this.coreUrl, why, cause });
    };
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${this.apiBase}${path}`, {
        method,
        headers: coreCallHeaders(requestId, this.bearer, payload),
        ...(payload ? { body: payload } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (cause) {
      throw unreachable(cause);
    }
    try {
      text = await res.text();
    } catch (cause) {
      if (res.ok) throw unreachable(cause);
      text = '';
    }
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (res.ok) return parsed as T;
    const err = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    throw this.#errors.answer({
      method,
      path,
      requestId,
      status: res.status,
      code: typeof err?.code === 'string' ? err.code : undefined,
      message: typeof err?.message === 'string' ? err.message : undefined,
      text,
    });
  }
}
