import { STATUS_CODES } from 'node:http';
import { CoreJsonClient, OutpostError, z, type CoreMethod } from '@outpost/common';
import { ApplianceErrors } from '../errors.js';

/** Where the core is and the admin credential to use there. */
export interface Target {
  /** Base URL, e.g. `http://127.0.0.1:8080` (no trailing slash): the core calls go to now (after a failover, the one that answered). */
  url: string;
  /** Every core URL given (`OUTPOST_URL=a,b`, `--url a --url b`), in order; calls fail over between them. @default [url] */
  urls?: readonly string[];
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

/** One client per target, so that the core that answered keeps the calls that follow. */
const clients = new WeakMap<Target, CoreJsonClient>();

function clientFor(target: Target): CoreJsonClient {
  let c = clients.get(target);
  if (c) return c;
  const urls = target.urls?.length ? [target.url, ...target.urls.filter((u) => u !== target.url)] : [target.url];
  c = new CoreJsonClient({
    coreUrls: urls,
    timeoutMs: 30_000,
    errors: {
      unreachable: (f) =>
        new OutpostError(
          ApplianceErrors.CORE_UNREACHABLE,
          `cannot reach the core at ${f.coreUrl} (${f.why}); is it running? (URL${f.tried.length > 1 ? 's' : ''} from ${target.source})`,
          { cause: f.cause },
        ),
      notJson: (f) => new OutpostError(ApplianceErrors.BAD_RESPONSE, `${f.method} ${f.coreUrl}/api/v1${f.path}: ${f.status}, not JSON (is ${f.coreUrl} an Outpost core?): ${f.text.slice(0, 120)}`),
      answer: (f) => {
        const plain = new ApiError(`HTTP_${f.status}`, `${f.method} ${f.path}: ${f.status} ${STATUS_CODES[f.status] ?? ''}`.trimEnd(), f.status);
        if (f.text === '') return plain;
        let parsed: unknown;
        try {
          parsed = JSON.parse(f.text);
        } catch {
          return new OutpostError(ApplianceErrors.BAD_RESPONSE, `${f.method} ${f.coreUrl}/api/v1${f.path}: ${f.status}, not JSON (is ${f.coreUrl} an Outpost core?): ${f.text.slice(0, 120)}`);
        }
        const e = errorBody.safeParse(parsed);
        return e.success ? new ApiError(e.data.error.code, e.data.error.message, f.status, e.data.error.details) : plain;
      },
    },
  });
  c.bearer = target.token;
  clients.set(target, c);
  return c;
}

/**
 * One call to the core's `/api/v1` (common's CoreJsonClient: with several core URLs it
 * fails over to the next on a transport failure or a 502/503/504, and `target.url`
 * follows the core that answered). Bounded in time: never waits more than `timeoutMs` per URL.
 */
export async function callApi(target: Target, method: CoreMethod, path: string, body?: unknown, timeoutMs = 30_000): Promise<unknown> {
  const c = clientFor(target);
  try {
    return await c.call<unknown>(method, path, body, timeoutMs);
  } finally {
    target.url = c.currentUrl;
  }
}

/** Checks a response against the shape a command relies on (extra fields are kept). */
export function expectShape<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const where = r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ');
  throw new OutpostError(ApplianceErrors.BAD_RESPONSE, `unexpected ${what} from the core: ${where}`);
}
