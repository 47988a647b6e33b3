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

/** Allows only principals of the given kinds (403 `COMMON_FORBIDDEN` otherwise). */
export function requireKind(...kinds: string[]): Middleware<AppState> {
  return async (ctx, next) => {
    const p = ctx.state.principal;
    if (!p || !kinds.includes(p.kind)) {
      throw new OutpostError(CommonErrors.FORBIDDEN, `this call needs a ${kinds.join(' or ')} credential`, { status: 403 });
    }
    await next();
  };
}
