import { isOutpostError, OutpostError, type AppState, type Logger } from '@outpost/common';
import type { Middleware } from 'koa';
import { actionName } from './action.js';
import type { AuditActor, AuditDraft } from './entry.js';
import { resultOf } from './entry.js';
import { AuditErrors } from './errors.js';
import { recordable, recordableBody } from './redact.js';
import type { AuditStore } from './store.js';
import type { RefusalCoalescer } from './coalesce.js';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);
const SESSION_ROUTE = '/api/v1/session';

/** What a handler may add to its request's audit entry (`ctx.state.audit`): see AuditNote in @outpost/common. */
export type { AuditNote } from '@outpost/common';

/** The request state the audit middleware reads: the handler's note and the body text `readJson` read. */
type AuditState = AppState & { bodyText?: string };

interface LayerLike {
  methods: string[];
  path: string | RegExp;
}

export interface AuditMiddlewareDeps {
  store: () => AuditStore | undefined;
  maxFieldBytes: number;
  clock: { now(): number };
  log: Logger;
  counters: { written: number; appendFailures: number; coalesced: number };
  /** Identical refusals within a window are written once and counted (coalesce.ts). */
  coalescer?: RefusalCoalescer;
}

/** The route template koa-router matched (`/api/v1/sites/:name`): the first route layer for this method. */
export function matchedRoute(ctx: { matched?: LayerLike[]; method: string; path: string }): string {
  const method = ctx.method === 'HEAD' ? 'GET' : ctx.method;
  const layer = (ctx.matched ?? []).find((l) => l.methods.includes(method) && typeof l.path === 'string');
  return typeof layer?.path === 'string' ? layer.path : ctx.path;
}

/**
 * Whether a request is recorded: every 401 and 403 (any route, method and caller);
 * sign-in and sign-out (`POST`/`DELETE /api/v1/session`), whatever their outcome; and
 * every request of an administrator with a method other than GET, HEAD or OPTIONS.
 */
export function recorded(method: string, route: string, status: number, principalKind: string | undefined): boolean {
  if (status === 401 || status === 403) return true;
  if (route === SESSION_ROUTE && (method === 'POST' || method === 'DELETE')) return true;
  return principalKind === 'admin' && !SAFE.has(method);
}

/** The object a route acts on when the handler names none: the path after /api/v1 when the route has parameters. */
function defaultObject(route: string, path: string): string | undefined {
  if (!/[:*]/.test(route)) return undefined;
  const rest = path.startsWith('/api/v1/') ? path.slice('/api/v1/'.length) : path;
  try {
    return decodeURIComponent(rest).slice(0, 512);
  } catch {
    return rest.slice(0, 512);
  }
}

/**
 * The audit middleware, mounted on the core's router before every route (so it also
 * sees what authentication refuses). It runs the rest of the request, then appends the
 * entry, then lets the response go: a change is on disk in the log before it is
 * acknowledged. If the append fails the answer becomes 500 `CORE_AUDIT_UNAVAILABLE`
 * (the change itself may have been applied).
 */
export function auditMiddleware(deps: AuditMiddlewareDeps): Middleware<AppState> {
  return async (ctx, next) => {
    const route = matchedRoute(ctx as unknown as { matched?: LayerLike[]; method: string; path: string });
    let error: unknown;
    try {
      await next();
    } catch (err) {
      error = err;
    }
    const status = error === undefined ? ctx.status : isOutpostError(error) ? error.status : 500;
    const state = ctx.state as AuditState;
    const principal = state.principal;
    // A handler that names its action (single sign-on's GET callback) is recorded too.
    if (!recorded(ctx.method, route, status, principal?.kind) && state.audit?.action === undefined) {
      if (error !== undefined) throw error;
      return;
    }
    const store = deps.store();
    const note = state.audit ?? {};
    const request = recordableBody(state.bodyText, deps.maxFieldBytes);
    const code = isOutpostError(error) ? error.code : error !== undefined ? 'COMMON_INTERNAL' : (note.refused ?? errorCode(ctx.body));
    const draft: AuditDraft = {
      at: new Date(deps.clock.now()).toISOString(),
      actor: actorOf(principal, route, ctx.method, request),
      from: { address: ctx.ip, requestId: state.requestId },
      action: note.action ?? actionName(ctx.method, route),
      method: ctx.method,
      route,
      ...(note.object !== undefined ? { object: note.object } : withObject(defaultObject(route, ctx.path))),
      ...(request === undefined ? {} : { request }),
      ...(note.before === undefined ? {} : { before: recordable(note.before, deps.maxFieldBytes) }),
      ...(note.after === undefined ? {} : { after: recordable(note.after, deps.maxFieldBytes) }),
      outcome: { status, ...(code === undefined ? {} : { code }), result: note.refused !== undefined ? 'refused' : resultOf(status) },
    };
    try {
      if (!store) throw new Error('the audit log is not open');
      const refusal = status === 401 || status === 403;
      const { write, due } = refusal && deps.coalescer ? deps.coalescer.admit(draft) : { write: true, due: [] };
      for (const summary of due) await store.append(summary);
      deps.counters.written += due.length;
      if (write) {
        await store.append(draft);
        deps.counters.written++;
      } else deps.counters.coalesced++;
    } catch (err) {
      deps.counters.appendFailures++;
      state.log.error({ err, action: draft.action, status }, 'appending to the audit log failed');
      // A refused or failed request acknowledged nothing: its own error stands (a store
      // that is down answers 503 CORE_STORE_UNAVAILABLE, not an audit error).
      if (error !== undefined) throw error;
      throw new OutpostError(AuditErrors.UNAVAILABLE, `the audit log cannot be written, so the answer is withheld (request id ${state.requestId}); the change may have been applied`, {
        status: 500,
        cause: err,
      });
    }
    if (error !== undefined) throw error;
  };
}

const withObject = (object: string | undefined): { object?: string } => (object === undefined ? {} : { object });

function errorCode(body: unknown): string | undefined {
  const code = (body as { error?: { code?: unknown } } | null | undefined)?.error?.code;
  return typeof code === 'string' ? code : undefined;
}

function actorOf(p: AppState['principal'], route: string, method: string, request: unknown): AuditActor {
  if (p?.kind === 'admin') {
    return { kind: 'admin', admin: p.admin?.name ?? p.id, ...(p.admin ? { via: p.admin.via, credential: p.admin.credential } : {}) };
  }
  if (p) return { kind: p.kind, id: p.id };
  // A failed sign-in: the name that was tried.
  const tried = (request as { name?: unknown } | undefined)?.name;
  if (route === SESSION_ROUTE && method === 'POST' && typeof tried === 'string') return { kind: 'anonymous', admin: tried.slice(0, 64) };
  return { kind: 'anonymous' };
}
