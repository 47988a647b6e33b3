import { randomUUID } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { coreCallHeaders, OutpostError } from '@outpost/common';
import { AgentErrors, CoreHttpError } from './errors.js';

export interface CoreClientOptions {
  /** The core's base URL, e.g. `http://127.0.0.1:8080` (no `/api/v1`). */
  coreUrl: string;
  /** Most connections kept open to the core. @default 4 */
  maxSockets?: number;
  /** Per-request timeout (connect + answer), ms. @default 10_000 */
  timeoutMs?: number;
  /** CA certificates to trust for an `https:` URL (the core's CA from enrollment). @default the system's */
  ca?: string[];
  /**
   * Where each call goes, asked per call: a base URL and the node:http(s) Agent to reach
   * it (the agent's transport: direct, or a tunnel through a gateway). @default coreUrl over a pool of its own
   */
  route?: () => { base: string; agent: HttpAgent };
}

export interface CoreClient {
  /** `METHOD /api/v1<path>`; resolves with the parsed JSON body (undefined for 204). */
  call<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, options?: { bearer?: string; body?: unknown }): Promise<T>;
  /** Closes idle keep-alive connections. */
  close(): void;
  /** Requests answered (any status) and requests that failed before an answer. */
  readonly counters: { answered: number; failed: number };
}

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
  const base = new URL(options.coreUrl);
  const secure = base.protocol === 'https:';
  const prefix = `${base.pathname.replace(/\/+$/, '')}/api/v1`;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 4, keepAliveMsecs: 1_000, scheduling: 'lifo' as const };
  const pool = secure ? new HttpsAgent({ ...agentOptions, ...(options.ca?.length ? { ca: options.ca } : {}) }) : new HttpAgent(agentOptions);
  const counters = { answered: 0, failed: 0 };

  function call<T>(method: string, path: string, opts: { bearer?: string; body?: unknown } = {}): Promise<T> {
    const body = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers = coreCallHeaders(randomUUID(), opts.bearer, body);
    const r = options.route?.();
    const to = r ? new URL(r.base) : base;
    const fullPath = `${r ? `${to.pathname.replace(/\/+$/, '')}/api/v1` : prefix}${path}`;
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
        { protocol: to.protocol, hostname: to.hostname, port: to.port, method, path: fullPath, headers, agent: r?.agent ?? pool, timeout: timeoutMs },
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
    close: () => pool.destroy(),
    counters,
  };
}
