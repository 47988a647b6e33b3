/**
 * The base of every error Outpost raises on purpose. `code` is stable and prefixed by
 * package (`COMMON_`, `CORE_`, `TFTP_`, ...): callers match on it, never on the message.
 * `status` is the HTTP status the error middleware answers with (500 when unset).
 */
export class OutpostError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: string,
    message: string,
    options: { status?: number; cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OutpostError';
    this.code = code;
    this.status = options.status ?? 500;
    this.details = options.details;
  }
}

export function isOutpostError(err: unknown): err is OutpostError {
  return err instanceof OutpostError;
}

/** Codes raised by @outpost/common. Each is documented in the package README. */
export const CommonErrors = {
  CONFIG_FILE_UNREADABLE: 'COMMON_CONFIG_FILE_UNREADABLE',
  CONFIG_PARSE: 'COMMON_CONFIG_PARSE',
  CONFIG_INVALID: 'COMMON_CONFIG_INVALID',
  DB_LOCKED: 'COMMON_DB_LOCKED',
  DB_OPEN: 'COMMON_DB_OPEN',
  BAD_JSON: 'COMMON_BAD_JSON',
  BODY_TOO_LARGE: 'COMMON_BODY_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'COMMON_UNSUPPORTED_MEDIA_TYPE',
  VALIDATION: 'COMMON_VALIDATION',
  UNAUTHORIZED: 'COMMON_UNAUTHORIZED',
  FORBIDDEN: 'COMMON_FORBIDDEN',
  NOT_FOUND: 'COMMON_NOT_FOUND',
  METHOD_NOT_ALLOWED: 'COMMON_METHOD_NOT_ALLOWED',
  INTERNAL: 'COMMON_INTERNAL',
  BAD_CIDR: 'COMMON_BAD_CIDR',
  BAD_DURATION: 'COMMON_BAD_DURATION',
} as const;

/**
 * Codes raised by the site link (`@outpost/common/site-link`): a site service's
 * enrollment, identity, heartbeat and calls to the core. A service may name its own code
 * for some of them (`SiteLinkOptions.codes`) where its README promises one; the link's
 * code then stays in `details.linkCode`. Each is documented in the package README.
 */
export const SiteLinkErrors = {
  IDENTITY_CORRUPT: 'SITE_LINK_IDENTITY_CORRUPT',
  IDENTITY_WRITE: 'SITE_LINK_IDENTITY_WRITE',
  NO_ENROLL_TOKEN: 'SITE_LINK_NO_ENROLL_TOKEN',
  ENROLL_REJECTED: 'SITE_LINK_ENROLL_REJECTED',
  CORE_UNREACHABLE: 'SITE_LINK_CORE_UNREACHABLE',
  CORE_ERROR: 'SITE_LINK_CORE_ERROR',
  IDENTITY_UNKNOWN: 'SITE_LINK_IDENTITY_UNKNOWN',
  HEARTBEAT_REFUSED: 'SITE_LINK_HEARTBEAT_REFUSED',
} as const;

export type SiteLinkErrorKey = keyof typeof SiteLinkErrors;
