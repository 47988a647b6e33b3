import { OutpostError } from '@outpost/common';

/** Codes raised by @outpost/core. Each is documented in the package README. */
export const CoreErrors = {
  ENROLL_TOKEN_INVALID: 'CORE_ENROLL_TOKEN_INVALID',
  ENROLL_TOKEN_EXPIRED: 'CORE_ENROLL_TOKEN_EXPIRED',
  ENROLL_TOKEN_USED_UP: 'CORE_ENROLL_TOKEN_USED_UP',
  ENROLL_KIND_MISMATCH: 'CORE_ENROLL_KIND_MISMATCH',
  TOKEN_NOT_FOUND: 'CORE_TOKEN_NOT_FOUND',
  SITE_EXISTS: 'CORE_SITE_EXISTS',
  SITE_NOT_FOUND: 'CORE_SITE_NOT_FOUND',
  SUBNET_TAKEN: 'CORE_SUBNET_TAKEN',
  SITE_SERVER_NOT_FOUND: 'CORE_SITE_SERVER_NOT_FOUND',
  AGENT_NOT_FOUND: 'CORE_AGENT_NOT_FOUND',
  ADMIN_TOKEN_FILE: 'CORE_ADMIN_TOKEN_FILE',
  GRANT_REQUIRED: 'CORE_GRANT_REQUIRED',
  GRANT_NOT_ALLOWED: 'CORE_GRANT_NOT_ALLOWED',
  GRANT_EXCEEDED: 'CORE_GRANT_EXCEEDED',
  CLAIM_REFUSED: 'CORE_CLAIM_REFUSED',
  STORE_UNREACHABLE: 'CORE_STORE_UNREACHABLE',
  JOURNAL_CORRUPT: 'CORE_JOURNAL_CORRUPT',
  STORE_UNAVAILABLE: 'CORE_STORE_UNAVAILABLE',
  STORE_CONFLICT: 'CORE_STORE_CONFLICT',
  FILES_DIFFER: 'CORE_FILES_DIFFER',
  MIGRATE_TARGET_NOT_EMPTY: 'CORE_MIGRATE_TARGET_NOT_EMPTY',
  MIGRATE_MISMATCH: 'CORE_MIGRATE_MISMATCH',
} as const;

/*
 * The "not found" of the records everyone looks up, in one wording: a scoped
 * administrator's out-of-scope object must answer exactly like a missing one.
 */
export const agentNotFound = (id: string): OutpostError => new OutpostError(CoreErrors.AGENT_NOT_FOUND, `no agent with id '${id}'`, { status: 404 });
export const siteServerNotFound = (id: string): OutpostError => new OutpostError(CoreErrors.SITE_SERVER_NOT_FOUND, `no site server with id '${id}'`, { status: 404 });
export const siteNotFound = (name: string): OutpostError => new OutpostError(CoreErrors.SITE_NOT_FOUND, `no site named '${name}'`, { status: 404 });
