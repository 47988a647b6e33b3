import type { Middleware } from 'koa';
import { CommonErrors, OutpostError } from '../errors.js';
import type { AppState, Principal } from './context.js';

/**
 * Bearer authentication: `Authorization: Bearer <token>`; `verify` returns the
 * principal or undefined. Missing or wrong credentials: 401 `COMMON_UNAUTHORIZED`.
 */
export function bearerAuth(verify: (token: string) => Principal | undefined | Promise<Principal | undefined>): Middleware<AppState> {
  return async (ctx, next) => {
    const header = ctx.get('authorization');
    const match = /^Bearer\s+(\S{1,1024})$/i.exec(header);
    if (!match) {
      ctx.set('www-authenticate', 'Bearer');
      throw new OutpostError(CommonErrors.UNAUTHORIZED, 'a bearer credential is required (Authorization: Bearer ...)', { status: 401 });
    }
    const principal = await verify(match[1]!);
    if (!principal) {
      ctx.set('www-authenticate', 'Bearer error="invalid_token"');
      throw new OutpostError(CommonErrors.UNAUTHORIZED, 'the credential is not valid', { status: 401 });
    }
    ctx.state.principal = principal;
    await next();
  };
}

/**
 * What a route declares about who may call it, attached to its guard middleware so a
 * route table can be built from the router (and a test can fail on a route that declares
 * nothing): `kinds` for machine principals (agent, site-server), `permission` for
 * administrators, `public` for routes without a credential.
 */
export interface RouteDeclaration {
  kinds?: readonly string[];
  permission?: string;
  /** With `permission`: an administrator acting on their own account (`:name`) needs none. */
  self?: true;
  /** Any administrator, whatever their roles. */
  anyAdmin?: true;
  /** Any authenticated principal (agent, site server or administrator). */
  anyPrincipal?: true;
  public?: true;
}

export type DeclaredMiddleware = Middleware<AppState> & { declares: RouteDeclaration };

export function declare(mw: Middleware<AppState>, declares: RouteDeclaration): DeclaredMiddleware {
  return Object.assign(mw, { declares });
}

/** Marks a route as reachable without a credential (static files, enrollment, health). */
export function publicRoute(): DeclaredMiddleware {
  return declare(async (_ctx, next) => next(), { public: true });
}

/** Any authenticated principal: public facts a credential holder may read (the CA certificate). */
export function anyPrincipal(): DeclaredMiddleware {
  return declare(async (_ctx, next) => next(), { anyPrincipal: true });
}

/**
 * Allows only machine principals of the given kinds (403 `COMMON_FORBIDDEN` otherwise).
 * Administrators are let through by a permission (the core's `can`), never by kind.
 */
export function requireKind(...kinds: string[]): DeclaredMiddleware {
  return declare(async (ctx, next) => {
    const p = ctx.state.principal;
    if (!p || !kinds.includes(p.kind)) {
      throw new OutpostError(CommonErrors.FORBIDDEN, `this call needs a ${kinds.join(' or ')} credential`, { status: 403 });
    }
    await next();
  }, { kinds });
}
