/** Who made a recorded request. */
export interface AuditActor {
  /** `admin`, `agent`, `site-server`, or `anonymous` (no valid credential). */
  kind: string;
  /** The administrator's name; for a failed sign-in, the name that was tried. */
  admin?: string;
  /** A machine principal's id (agent, site server). */
  id?: string;
  /** How the administrator proved who they are: bootstrap, token, session, sso. */
  via?: string;
  /** The token id or session id (never a secret). */
  credential?: string;
}

export type AuditResult = 'ok' | 'refused' | 'failed';

/** One audit log entry, as stored, exported and answered. See README.md. */
export interface AuditEntry {
  seq: number;
  /** ISO 8601 time the response was decided. */
  at: string;
  actor: AuditActor;
  from: { address: string; requestId: string };
  action: string;
  method: string;
  /** The route template (`/api/v1/sites/:name`). */
  route: string;
  /** What was acted on (`admin:alice`, `sites/hq`). */
  object?: string;
  /** The request body, redacted and bounded. */
  request?: unknown;
  before?: unknown;
  after?: unknown;
  outcome: { status: number; code?: string; result: AuditResult };
  /** The previous entry's hash (64 zeros before the first). */
  prev: string;
  /** sha256(prev + canonical JSON of this entry without `hash`), hex. */
  hash: string;
}

/** An entry before the log gives it its place in the chain. */
export type AuditDraft = Omit<AuditEntry, 'seq' | 'prev' | 'hash'>;

/** The `prev` of the first entry ever written. */
export const GENESIS = '0'.repeat(64);

/** The result an HTTP status stands for: refused (401, 403, 429), failed (other 4xx/5xx), ok. */
export function resultOf(status: number): AuditResult {
  if (status === 401 || status === 403 || status === 429) return 'refused';
  return status >= 400 ? 'failed' : 'ok';
}
