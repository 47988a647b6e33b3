import { randomUUID } from 'node:crypto';
import { OutpostError } from '@outpost/common';
import { PackageServerErrors } from './errors.js';

/** A non-2xx answer from the core. */
export class CoreAnswerError extends OutpostError {
  constructor(
    readonly httpStatus: number,
    readonly coreCode: string | undefined,
    message: string,
  ) {
    super(PackageServerErrors.CORE_ERROR, message, { status: 502, details: { httpStatus, coreCode } });
  }
}

export interface CoreClient {
  call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T>;
  bearer: string;
}

/** JSON calls to the core's `/api/v1`, bounded by `timeoutMs`. */
export function createCoreClient(coreUrl: string, timeoutMs: number): CoreClient {
  const base = `${coreUrl.replace(/\/+$/, '')}/api/v1`;
  const client: CoreClient = {
    bearer: '',
    async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
      let res: Response;
      // The core logs the call under this id (its reqId); an error answer names it too.
      const requestId = randomUUID();
      try {
        res = await fetch(`${base}${path}`, {
          method,
          headers: {
            accept: 'application/json',
            'x-request-id': requestId,
            ...(client.bearer ? { authorization: `Bearer ${client.bearer}` } : {}),
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (cause) {
        const why = (cause as { cause?: { code?: string } }).cause?.code ?? (cause as Error).message;
        throw new OutpostError(PackageServerErrors.CORE_UNREACHABLE, `${method} ${path}: cannot reach the core at ${coreUrl}: ${why}`, { status: 502, cause });
      }
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      if (!res.ok) {
        const err = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
        throw new CoreAnswerError(res.status, err?.code, `${method} ${path}: ${res.status} ${err?.code ?? ''} ${err?.message ?? text.slice(0, 200)} (request ${requestId})`);
      }
      return parsed as T;
    },
  };
  return client;
}
