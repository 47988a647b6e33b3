import { CoreJsonClient, OutpostError } from '@outpost/common';
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
  return new CoreJsonClient({
    coreUrl,
    timeoutMs,
    errors: {
      unreachable: (f) => new OutpostError(PackageServerErrors.CORE_UNREACHABLE, `${f.method} ${f.path}: cannot reach the core at ${f.coreUrl}: ${f.why}`, { status: 502, cause: f.cause }),
      answer: (f) => new CoreAnswerError(f.status, f.code, `${f.method} ${f.path}: ${f.status} ${f.code ?? ''} ${f.message ?? f.text.slice(0, 200)} (request ${f.requestId})`),
    },
  });
}
