import { OutpostError, z } from '@outpost/common';
import { ApplianceErrors } from '../errors.js';

/** Where the core is and the admin credential to use there. */
export interface Target {
  /** Base URL, e.g. `http://127.0.0.1:8080` (no trailing slash). */
  url: string;
  /** `admin.<secret>` */
  token: string;
  /** How they were found, for error messages (`OUTPOST_URL`, `configs/all-in-one.yaml`, ...). */
  source: string;
}

/** An error the core answered with: `{ error: { code, message } }` and its status. */
export class ApiError extends OutpostError {
  constructor(code: string, message: string, status: number, details?: Record<string, unknown>) {
    super(code, message, details ? { status, details } : { status });
    this.name = 'ApiError';
  }
}

const errorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }),
});

/** One call to the core's `/api/v1`. Bounded in time: never waits more than `timeoutMs`. */
export async function callApi(
  target: Target,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  path: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<unknown> {
  const url = `${target.url}/api/v1${path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${target.token}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (cause) {
    const reason = (cause as { cause?: { code?: string; message?: string } }).cause;
    const why = reason?.code ?? reason?.message ?? (cause as Error).message;
    throw new OutpostError(
      ApplianceErrors.CORE_UNREACHABLE,
      `cannot reach the core at ${target.url} (${why}); is it running? (URL from ${target.source})`,
      { cause },
    );
  }
  const text = await res.text();
  if (res.status === 204 || text === '') {
    if (res.ok) return undefined;
    throw new ApiError(`HTTP_${res.status}`, `${method} ${path}: ${res.status} ${res.statusText}`, res.status);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new OutpostError(
      ApplianceErrors.BAD_RESPONSE,
      `${method} ${url}: ${res.status}, not JSON (is ${target.url} an Outpost core?): ${text.slice(0, 120)}`,
      { cause },
    );
  }
  if (!res.ok) {
    const e = errorBody.safeParse(parsed);
    if (e.success) throw new ApiError(e.data.error.code, e.data.error.message, res.status, e.data.error.details);
    throw new ApiError(`HTTP_${res.status}`, `${method} ${path}: ${res.status} ${res.statusText}`, res.status);
  }
  return parsed;
}

/** Checks a response against the shape a command relies on (extra fields are kept). */
export function expectShape<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const where = r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ');
  throw new OutpostError(ApplianceErrors.BAD_RESPONSE, `unexpected ${what} from the core: ${where}`);
}
