import { OutpostError, SiteLinkErrors, type SiteLinkErrorKey } from '../errors.js';
import { CoreJsonClient } from '../http/core-client.js';

/**
 * The authenticated JSON client a site service makes its core calls with (the link sets
 * its bearer). A failed call throws an error whose `details.status` is the core's HTTP
 * status when the core answered (none when it could not be reached) and whose
 * `details.coreCode` is the core's error code.
 */
export interface SiteLinkClient {
  bearer: string;
  /** The core URL calls go to now (one of several, after a failover), when the client knows. */
  readonly currentUrl?: string;
  /** Times calls moved to another core URL, when the client counts them. */
  readonly failovers?: number;
  call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T>;
}

/** A service's own codes for some link failures, where its README promises them. */
export type SiteLinkCodes = Partial<Record<SiteLinkErrorKey, string>>;

/** A link error: the service's code when it names one (the link's then in `details.linkCode`). */
export function siteLinkError(codes: SiteLinkCodes, key: SiteLinkErrorKey, message: string, options: { status?: number; cause?: unknown; details?: Record<string, unknown> } = {}): OutpostError {
  const own = codes[key];
  return new OutpostError(own ?? SiteLinkErrors[key], message, {
    ...options,
    ...(own || options.details ? { details: { ...options.details, ...(own ? { linkCode: SiteLinkErrors[key] } : {}) } } : {}),
  });
}

/** The core's HTTP status in a failed call's error, or undefined when there was no answer. */
export function answerStatus(err: unknown): number | undefined {
  const d = (err as { details?: { status?: unknown; httpStatus?: unknown } } | undefined)?.details;
  const s = d?.status ?? d?.httpStatus;
  return typeof s === 'number' ? s : undefined;
}

/** The core's error code in a failed call's error. */
export function answerCode(err: unknown): string | undefined {
  const d = (err as { details?: { coreCode?: unknown; code?: unknown } } | undefined)?.details;
  const c = d?.coreCode ?? d?.code;
  return typeof c === 'string' ? c : undefined;
}

/**
 * The default {@link SiteLinkClient}: common's {@link CoreJsonClient} over one core URL or
 * several (failing over between them), a transport failure (at every URL) is `SITE_LINK_CORE_UNREACHABLE`, an error answer `SITE_LINK_CORE_ERROR` (or the
 * service's codes for them), both status 502 with the call and its request id in the message.
 */
export function createSiteLinkClient(coreUrl: string | readonly string[], timeoutMs: number, codes: SiteLinkCodes = {}): CoreJsonClient {
  return new CoreJsonClient({
    coreUrls: typeof coreUrl === 'string' ? [coreUrl] : coreUrl,
    timeoutMs,
    errors: {
      unreachable: (f) => siteLinkError(codes, 'CORE_UNREACHABLE', `${f.method} ${f.path}: cannot reach the core at ${f.coreUrl} (${f.why})`, { status: 502, cause: f.cause }),
      answer: (f) =>
        siteLinkError(codes, 'CORE_ERROR', `${f.method} ${f.path}: the core answered ${f.status} ${f.code ?? ''} ${f.message ?? f.text.slice(0, 200)} (request ${f.requestId})`.replace(/ +/g, ' '), {
          status: 502,
          details: { status: f.status, coreCode: f.code, requestId: f.requestId },
        }),
    },
  });
}
