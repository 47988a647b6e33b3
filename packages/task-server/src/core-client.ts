import { CoreJsonClient, OutpostError } from '@outpost/common';
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
  return new CoreJsonClient({
    coreUrl,
    timeoutMs,
    errors: {
      unreachable: (f) => new OutpostError(TaskServerErrors.CORE_UNREACHABLE, `${f.method} ${f.path}: cannot reach the core at ${base} (${f.why})`, { cause: f.cause, status: 502 }),
      answer: (f) =>
        new OutpostError(TaskServerErrors.CORE_ERROR, `${f.method} ${f.path}: the core answered ${f.status} ${f.code ?? ''} ${f.message ?? ''} (request ${f.requestId})`.replace(/ +/g, ' '), {
          status: 502,
          details: { status: f.status, coreCode: f.code, requestId: f.requestId },
        }),
    },
  });
}
