// The audit log as the console reads it (packages/core/src/audit/README.md):
// `GET /api/v1/audit` pages newest first, `/audit/stream` sends each new entry as it is
// recorded, `/audit/verify` checks the hash chain.

// The entry as the core records it: one type, from the core (a type import, nothing at run time).
import type { AuditEntry } from '@outpost/core';
export type { AuditEntry };

export interface AuditVerify {
  ok: boolean;
  entries: number;
  first?: number;
  last?: number;
  broken?: { seq: number; reason: string };
}

/** The page's filters, as the query of `#/audit?…` and of `GET /audit`. */
export interface AuditFilter {
  admin: string;
  action: string;
  result: string;
  /** An ISO time, or empty. */
  since: string;
}

export function filterFrom(query: URLSearchParams): AuditFilter {
  return { admin: query.get('admin') ?? '', action: query.get('action') ?? '', result: query.get('result') ?? '', since: query.get('since') ?? '' };
}

/** The non-empty filters as query parameters. */
export function filterQuery(f: AuditFilter): URLSearchParams {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) p.set(k, v);
  return p;
}

/** Whether a streamed entry belongs in the list the filters show (the server applies the same to pages). */
export function matches(e: AuditEntry, f: AuditFilter): boolean {
  if (f.admin && e.actor.admin !== f.admin) return false;
  if (f.action && !e.action.startsWith(f.action)) return false;
  if (f.result && e.outcome.result !== f.result) return false;
  if (f.since && Date.parse(e.at) < Date.parse(f.since)) return false;
  return true;
}

/** Newest first, one row per sequence number. */
export function merge(a: readonly AuditEntry[], b: readonly AuditEntry[]): AuditEntry[] {
  const bySeq = new Map<number, AuditEntry>();
  for (const e of [...a, ...b]) bySeq.set(e.seq, e);
  return [...bySeq.values()].sort((x, y) => y.seq - x.seq);
}

/** Who did it, in a word: the administrator, else the kind of credential. */
export function actorText(e: AuditEntry): string {
  return e.actor.admin ?? e.actor.kind;
}
