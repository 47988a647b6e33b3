import { declare, OutpostError, type AppState, type DeclaredMiddleware, type Principal, type RouteContext } from '@outpost/common';
import { AdminErrors } from './errors.js';
import type { Permission } from './permissions.js';

/**
 * The guard of an admin API route: the caller must be an administrator holding
 * `permission`, or (with `kinds`) a machine principal of one of those kinds. Anything
 * else: 403 `CORE_FORBIDDEN` naming the permission, before the handler reads a byte of
 * the body. The declaration rides on the middleware, so the route table (and the
 * permission matrix test) is generated from the router itself.
 */
export function can(permission: Permission, options: { kinds?: readonly string[] } = {}): DeclaredMiddleware {
  const kinds = options.kinds ?? [];
  return declare(
    async (ctx, next) => {
      const p = ctx.state.principal;
      if (p && kinds.includes(p.kind)) return next();
      if (p?.kind === 'admin' && p.admin?.permissions.has(permission)) return next();
      throw forbidden(permission, p);
    },
    { permission, ...(kinds.length > 0 ? { kinds } : {}) },
  );
}

export function forbidden(permission: string, p: Principal | undefined): OutpostError {
  const who = p?.kind === 'admin' ? `administrator ${p.id} (${p.admin?.roles.join(', ') ?? 'no role'})` : `a ${p?.kind ?? 'anonymous'} credential`;
  return new OutpostError(AdminErrors.FORBIDDEN, `${who} lacks the permission ${permission}`, { status: 403, details: { permission } });
}

/**
 * The sites a request's administrator is scoped to, or undefined for every site (also
 * for machine principals, whose own routes check what they may see).
 */
export function scopeOf(ctx: Pick<RouteContext, 'state'> | { state: AppState }): readonly string[] | undefined {
  const p = ctx.state.principal;
  return p?.kind === 'admin' ? p.admin?.sites : undefined;
}

/** True when an object in `sites` is visible to the scope (no scope: everything is). */
export function inScope(scope: readonly string[] | undefined, sites: readonly string[] | undefined): boolean {
  if (!scope) return true;
  return (sites ?? []).some((s) => scope.includes(s));
}

/**
 * An administrator acting on their own account (`:name` is the caller) needs no
 * permission; on anyone else's, `permission`. Declared as `permission` with `self`.
 */
export function canOrSelf(permission: Permission): DeclaredMiddleware {
  return declare(
    async (ctx, next) => {
      const p = ctx.state.principal;
      const params = (ctx as { params?: Record<string, string> }).params;
      if (p?.kind === 'admin' && (params?.name === p.id || p.admin?.permissions.has(permission))) return next();
      throw forbidden(permission, p);
    },
    { permission, self: true },
  );
}

/** Any signed-in administrator, whatever their roles (their own session, sign-out). */
export function anyAdmin(): DeclaredMiddleware {
  return declare(
    async (ctx, next) => {
      if (ctx.state.principal?.kind === 'admin') return next();
      throw new OutpostError(AdminErrors.FORBIDDEN, `this call is for administrators, not a ${ctx.state.principal?.kind ?? 'anonymous'} credential`, { status: 403 });
    },
    { anyAdmin: true },
  );
}

/**
 * A machine principal of `kinds` acting on its own record (`:id` is its id), or an
 * administrator holding `permission` (anyone else: 403 `CORE_FORBIDDEN`).
 */
export function selfOr(permission: Permission, kinds: readonly string[], param = 'id'): DeclaredMiddleware {
  return declare(
    async (ctx, next) => {
      const p = ctx.state.principal;
      const params = (ctx as { params?: Record<string, string> }).params;
      if (p && kinds.includes(p.kind) && params?.[param] === p.id) return next();
      if (p?.kind === 'admin' && p.admin?.permissions.has(permission)) return next();
      if (p && kinds.includes(p.kind)) throw new OutpostError(AdminErrors.FORBIDDEN, 'this credential may only read or change its own record', { status: 403, details: { permission } });
      throw forbidden(permission, p);
    },
    { permission, kinds, self: true },
  );
}

/** A machine principal of `kind` acting on its own record only (heartbeats). */
export function selfOnly(kind: string, param = 'id'): DeclaredMiddleware {
  return declare(
    async (ctx, next) => {
      const p = ctx.state.principal;
      const params = (ctx as { params?: Record<string, string> }).params;
      if (p?.kind === kind && params?.[param] === p.id) return next();
      throw new OutpostError(AdminErrors.FORBIDDEN, `this call is for the ${kind} the path names, with its own credential`, { status: 403, details: { permission: `${kind}:self` } });
    },
    { kinds: [kind] },
  );
}
