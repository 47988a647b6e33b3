import { CommonErrors, OutpostError, type AppState, type Principal } from '@outpost/common';
import type { Middleware } from 'koa';
import { AdminErrors } from './errors.js';
import { SESSION_COOKIE, type AdminsService } from './service.js';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Who is calling: `Authorization: Bearer <token>` (administrator API tokens, the
 * bootstrap owner, agents, site servers; `verifyBearer`), else the console's session
 * cookie. A cookie-authenticated change must come from the core's own pages: a browser
 * sends `Origin` with every such request, and one naming another host is refused
 * (`CORE_SESSION_ORIGIN`) on top of the cookie's SameSite=Strict.
 */
export function authenticate(verifyBearer: (token: string) => Principal | undefined, admins: AdminsService): Middleware<AppState> {
  return async (ctx, next) => {
    const header = ctx.get('authorization');
    if (header) {
      const match = /^Bearer\s+(\S{1,1024})$/i.exec(header);
      const principal = match ? verifyBearer(match[1]!) : undefined;
      if (!principal) {
        ctx.set('www-authenticate', 'Bearer error="invalid_token"');
        throw new OutpostError(CommonErrors.UNAUTHORIZED, match ? 'the credential is not valid' : 'the Authorization header is not `Bearer <token>`', { status: 401 });
      }
      ctx.state.principal = principal;
      return next();
    }
    const cookie = ctx.cookies.get(SESSION_COOKIE);
    if (cookie) {
      const principal = await admins.verifySession(cookie);
      if (!principal) throw new OutpostError(CommonErrors.UNAUTHORIZED, 'the session is not valid: sign in again', { status: 401 });
      if (!SAFE.has(ctx.method)) {
        const origin = ctx.get('origin');
        if (origin && safeHost(origin) !== ctx.host) {
          throw new OutpostError(AdminErrors.SESSION_ORIGIN, `a change with the session cookie from ${origin} (not this core's own pages) is refused`, { status: 403, details: { permission: 'same-origin' } });
        }
      }
      ctx.state.principal = principal;
      return next();
    }
    ctx.set('www-authenticate', 'Bearer');
    throw new OutpostError(CommonErrors.UNAUTHORIZED, 'a bearer credential is required (Authorization: Bearer ...), or a console session', { status: 401 });
  };
}

function safeHost(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

/** The Set-Cookie value for a session: HttpOnly, SameSite=Strict, Secure over HTTPS. */
export function sessionCookie(value: string, secure: boolean, maxAgeS?: number): string {
  return [`${SESSION_COOKIE}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Strict', ...(secure ? ['Secure'] : []), ...(maxAgeS !== undefined ? [`Max-Age=${maxAgeS}`] : [])].join('; ');
}
