import { randomUUID } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { coreCallHeaders } from '@outpost/common/core-client';
import { GatewayError, GatewayErrors } from './errors.js';

export interface CoreResponse<T> {
  status: number;
  body: T | undefined;
  etag: string | undefined;
}

/** One JSON call to a core's `/api/v1`, bounded in time and answer size (16 MiB). */
export function callCore<T>(
  baseUrl: string,
  method: 'GET' | 'POST',
  path: string,
  opts: { bearer?: string | undefined; body?: unknown; ca?: string | undefined; timeoutMs: number; ifNoneMatch?: string | undefined },
): Promise<CoreResponse<T>> {
  const base = new URL(baseUrl);
  const secure = base.protocol === 'https:';
  const body = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  const headers = coreCallHeaders(randomUUID(), opts.bearer, body);
  if (opts.ifNoneMatch) headers['if-none-match'] = opts.ifNoneMatch;
  const send = secure ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      {
        protocol: base.protocol,
        hostname: base.hostname,
        port: base.port,
        method,
        path: `${base.pathname.replace(/\/+$/, '')}/api/v1${path}`,
        headers,
        timeout: opts.timeoutMs,
        agent: false,
        ...(secure && opts.ca ? { ca: opts.ca } : {}),
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 16 * 1024 * 1024) req.destroy(new Error('answer larger than 16 MiB'));
          else chunks.push(c);
        });
        res.on('error', (err) => reject(new GatewayError(GatewayErrors.CORE_LINK, `${method} ${path}: ${err.message}`, { cause: err })));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = text;
          }
          const etag = res.headers.etag;
          resolve({ status: res.statusCode ?? 0, body: parsed as T, etag: typeof etag === 'string' ? etag : undefined });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`)));
    req.on('error', (err) => reject(new GatewayError(GatewayErrors.CORE_LINK, `${method} ${path} at ${base.origin}: ${err.message}`, { cause: err })));
    req.end(body);
  });
}

/** Throws unless the status is 2xx, with the core's error code in the message. */
export function expectOk<T>(res: CoreResponse<T>, what: string): T {
  if (res.status >= 200 && res.status < 300) return res.body as T;
  const err = (res.body as { error?: { code?: string; message?: string } } | undefined)?.error;
  throw new GatewayError(GatewayErrors.CORE_LINK, `${what}: the core answered ${res.status} ${err?.code ?? ''} ${err?.message ?? ''}`.trim(), { details: { status: res.status, code: err?.code } });
}
