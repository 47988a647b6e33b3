import { randomUUID } from 'node:crypto';
import { OutpostError } from '@outpost/common';
import { TaskServerErrors } from './errors.js';

export interface CoreClient {
  /** `METHOD <core>/api/v1<path>`; the parsed JSON answer (undefined for 204). */
  call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown>;
  bearer: string;
}

/**
 * The task server's client for the core's API. A transport failure is
 * `TASK_CORE_UNREACHABLE`; an error answer is `TASK_CORE_ERROR` with the core's code in
 * `details.coreCode` and its status in `details.status`. Bounded by `timeoutMs`.
 */
export function createCoreClient(coreUrl: string, timeoutMs: number): CoreClient {
  const base = coreUrl.replace(/\/+$/, '');
  const client: CoreClient = {
    bearer: '',
    async call(method, path, body) {
      let res: Response;
      // The core logs the call under this id (its reqId); an error answer names it too.
      const requestId = randomUUID();
      try {
        res = await fetch(`${base}/api/v1${path}`, {
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
        throw new OutpostError(TaskServerErrors.CORE_UNREACHABLE, `${method} ${path}: cannot reach the core at ${base} (${why})`, { cause, status: 502 });
      }
      const text = await res.text().catch(() => '');
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      if (res.ok) return parsed;
      const err = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new OutpostError(TaskServerErrors.CORE_ERROR, `${method} ${path}: the core answered ${res.status} ${err?.code ?? ''} ${err?.message ?? ''} (request ${requestId})`.replace(/ +/g, ' '), {
        status: 502,
        details: { status: res.status, coreCode: err?.code, requestId },
      });
    },
  };
  return client;
}

export const coreStatus = (err: unknown): number | undefined => {
  const d = (err as { details?: { status?: unknown } }).details;
  return typeof d?.status === 'number' ? d.status : undefined;
};
