import { randomUUID } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { coreCallHeaders, isOutpostError, OutpostError } from '@outpost/common';
import { AgentErrors, CoreHttpError } from './errors.js';

export interface CoreClientOptions {
  /**
   * The core's base URL, e.g. `http://127.0.0.1:8080` (no `/api/v1`), or several: active
   * cores of one estate. A call goes to the current one; on a transport failure or a
   * 502/503/504 answer it moves on to the next (each at most once per call), and the one
   * that answers becomes the current one.
   */
  coreUrl: string | readonly string[];
  /** Most connections kept open to the core. @default 4 */
  maxSockets?: number;
  /** Per-request timeout (connect + answer), ms. @default 10_000 */
  timeoutMs?: number;
  /** CA certificates to trust for an `https:` URL (the core's CA from enrollment). @default the system's */
  ca?: string[];
  /**
   * Where a call to core URL `coreUrl` goes, asked per try: a base URL and the node:http(s)
   * Agent to reach it (the agent's transport: direct, or a tunnel through a gateway).
   * @default the core URL over a pool of its own
   */
  route?: (coreUrl: string) => { base: string; agent: HttpAgent };
  /** Called when a call moved the traffic to another core URL. */
  onFailover?: (from: string, to: string) => void;
}

export interface CoreClient {
  /** `METHOD /api/v1<path>`; resolves with the parsed JSON body (undefined for 204). */
  call<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, options?: { bearer?: string; body?: unknown }): Promise<T>;
  /** Closes idle keep-alive connections. */
  close(): void;
  /** Requests answered (any status) and requests that failed before an answer. */
  readonly counters: { answered: number; failed: number };
  /** The core URL calls go to now: the last that answered (the first until one fails). */
  readonly currentUrl: string;
  /** Times a call moved the traffic to another core URL. */
  readonly failovers: number;
}

/** Answers that mean "this core cannot serve now, another may". */
const FAILOVER_STATUSES = new Set([502, 503, 504]);

interface ErrorBody {
  error?: { code?: unknown; message?: unknown };
}

/**
 * A small JSON client for the core's `/api/v1` over a keep-alive connection pool
 * (node:http `Agent`, so no extra dependency). A non-2xx answer throws
 * {@link CoreHttpError} with the core's error code; a transport failure throws
 * `AGENT_CORE_UNREACHABLE`.
 */
export function createCoreClient(options: CoreClientOptions): CoreClient {
  const coreUrls = (typeof options.coreUrl === 'string' ? [options.coreUrl] : [...options.coreUrl]).map((u) => u.replace(/\/+$/, ''));
  if (coreUrls.length === 0) throw new TypeError('createCoreClient: no core URL');
  const secure = coreUrls.some((u) => new URL(u).protocol === 'https:');
  const timeoutMs = options.timeoutMs ?? 10_000;
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 4, keepAliveMsecs: 1_000, scheduling: 'lifo' as const };
  const pool = secure ? new HttpsAgent({ ...agentOptions, ...(options.ca?.length ? { ca: options.ca } : {}) }) : new HttpAgent(agentOptions);
  const plainPool = secure && coreUrls.some((u) => new URL(u).protocol === 'http:') ? new HttpAgent(agentOptions) : undefined;
  const counters = { answered: 0, failed: 0 };
  let current = 0;
  let failovers = 0;

  /**
   * The call at each core URL in turn from the current one, until one answers other than
   * 502/503/504; that one becomes current. Tries that reach the same base (a gateway's
   * tunnel) are made once. The last failure is thrown.
   */
  async function call<T>(method: string, path: string, opts: { bearer?: string; body?: unknown } = {}): Promise<T> {
    const n = coreUrls.length;
    const bases = new Set<string>();
    const failures: string[] = [];
    let last: unknown;
    for (let i = 0; i < n; i++) {
      const index = (current + i) % n;
      const url = coreUrls[index] as string;
      const r = options.route?.(url);
      const base = r?.base ?? url;
      if (bases.has(base)) continue;
      bases.add(base);
      try {
        const value = await callOnce<T>(method, path, opts, base, r?.agent);
        moveTo(index);
        return value;
      } catch (err) {
        const status = err instanceof CoreHttpError ? err.httpStatus : undefined;
        const transport = isOutpostError(err) && err.code === AgentErrors.CORE_UNREACHABLE;
        if (n === 1 || !(transport || (status !== undefined && FAILOVER_STATUSES.has(status)))) {
          if (status !== undefined) moveTo(index);
          throw err;
        }
        failures.push(`${url}: ${(err as Error).message}`);
        last = err;
      }
    }
    if (last instanceof CoreHttpError || failures.length <= 1) throw last;
    throw new OutpostError(AgentErrors.CORE_UNREACHABLE, `${method} ${path}: no core answered (${failures.join('; ')})`, { status: 502, cause: last });
  }

  function moveTo(index: number): void {
    if (index === current) return;
    const from = coreUrls[current] as string;
    current = index;
    failovers++;
    options.onFailover?.(from, coreUrls[index] as string);
  }

  /** One try at one base URL, over `agent` (else the client's own pool). */
  function callOnce<T>(method: string, path: string, opts: { bearer?: string; body?: unknown }, baseUrl: string, agent: HttpAgent | undefined): Promise<T> {
    const body = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers = coreCallHeaders(randomUUID(), opts.bearer, body);
    const to = new URL(baseUrl);
    const fullPath = `${to.pathname.replace(/\/+$/, '')}/api/v1${path}`;
    const send = to.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        counters.failed++;
        reject(
          new OutpostError(AgentErrors.CORE_UNREACHABLE, `${method} ${fullPath}: cannot reach the core at ${to.origin}: ${err.message}`, {
            status: 502,
            cause: err,
          }),
        );
      };
      const req = send(
        { protocol: to.protocol, hostname: to.hostname, port: to.port, method, path: fullPath, headers, agent: agent ?? (to.protocol === 'http:' && plainPool ? plainPool : pool), timeout: timeoutMs },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', fail);
          res.on('end', () => {
            if (settled) return;
            settled = true;
            counters.answered++;
            const status = res.statusCode ?? 0;
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = text.length > 0 ? JSON.parse(text) : undefined;
            } catch {
              parsed = undefined;
              if (status >= 200 && status < 300) {
                reject(new OutpostError(AgentErrors.CORE_BAD_RESPONSE, `${method} ${fullPath}: the core answered ${status} with a body that is not JSON`, { status: 502 }));
                return;
              }
            }
            if (status >= 200 && status < 300) {
              resolve(parsed as T);
              return;
            }
            const err = (parsed as ErrorBody | undefined)?.error;
            reject(
              new CoreHttpError(
                method,
                fullPath,
                status,
                typeof err?.code === 'string' ? err.code : undefined,
                typeof err?.message === 'string' ? err.message : undefined,
              ),
            );
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', fail);
      req.end(body);
    });
  }

  return {
    call,
    close: () => {
      pool.destroy();
      plainPool?.destroy();
    },
    counters,
    get currentUrl() {
      return coreUrls[current] as string;
    },
    get failovers() {
      return failovers;
    },
  };
}
