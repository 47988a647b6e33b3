import { timingSafeEqual } from 'node:crypto';
import { noteAudit } from '../audit/note.js';
import type { Router } from '@koa/router';
import { isOutpostError, OutpostError, publicRoute, type AppState, type RouteContext } from '@outpost/common';
import { sessionCookie } from './authenticate.js';
import { AdminErrors } from './errors.js';
import { grantOf } from './oidc-claims.js';
import type { OidcClient } from './oidc.js';
import type { AdminsService } from './service.js';

/** The browser's half of a pending sign-in: its state, for the callback only, 10 minutes. */
export const SSO_COOKIE = 'outpost_sso';
export const SSO_CALLBACK_PATH = '/api/v1/session/sso/callback';
const COOKIE_PATH = '/api/v1/session/sso';
/** Where the browser lands: the console, which shows `sso_error` when present. */
const CONSOLE = '/console/';

/**
 * The state cookie: HttpOnly, and SameSite=Lax, not Strict: the provider sends the browser
 * back with a cross-site top-level navigation, which carries Lax cookies and not Strict ones.
 */
export function ssoStateCookie(state: string, secure: boolean, maxAgeS: number): string {
  return [`${SSO_COOKIE}=${state}`, `Path=${COOKIE_PATH}`, 'HttpOnly', 'SameSite=Lax', ...(secure ? ['Secure'] : []), `Max-Age=${maxAgeS}`].join('; ');
}


function sameState(a: string, b: string): boolean {
  const ba = Buffer.from(a);
  const bb = Buffer.from(b);
  return ba.length === bb.length && timingSafeEqual(ba, bb);
}

/**
 * Single sign-on: `/sso/start` sends the browser to the provider, `/sso/callback` signs it
 * in. Both are browser navigations, so every failure lands on `/console/?sso_error=CODE`
 * (logged with the reason) rather than on a JSON page. `oidc` is undefined when
 * `core.admins.oidc` is not configured.
 */
export function ssoRoutes(router: Router<AppState>, admins: AdminsService, oidc: OidcClient | undefined, baseUrl: () => string): void {
  const redirectUri = () => oidc?.config.redirectUrl ?? `${baseUrl().replace(/\/+$/, '')}${SSO_CALLBACK_PATH}`;

  const land = (ctx: RouteContext, err: unknown) => {
    const e = isOutpostError(err) ? err : new OutpostError(AdminErrors.SSO_FAILED, 'single sign-on failed', { status: 403, cause: err });
    if (!isOutpostError(err)) ctx.state.log.error({ err }, 'single sign-on failed unexpectedly');
    else ctx.state.log.warn({ code: e.code, reason: e.message, address: ctx.ip }, 'single sign-on refused');
    noteAudit(ctx, { action: 'session.sso', refused: e.code });
    ctx.set('cache-control', 'no-store');
    ctx.redirect(`${CONSOLE}?sso_error=${encodeURIComponent(e.code)}`);
  };

  router.get('/api/v1/session/sso/start', publicRoute(), async (ctx) => {
    try {
      if (!oidc) throw new OutpostError(AdminErrors.SSO_NOT_CONFIGURED, 'single sign-on is not configured (core.admins.oidc)', { status: 404 });
      admins.limitSignIn(ctx.ip);
      const { url, state } = await oidc.begin(redirectUri());
      ctx.append('set-cookie', ssoStateCookie(state, ctx.secure, Math.floor(oidc.pending.ttlMs / 1000)));
      ctx.set('cache-control', 'no-store');
      ctx.redirect(url.href);
    } catch (err) {
      land(ctx, err);
    }
  });

  router.get(SSO_CALLBACK_PATH, publicRoute(), async (ctx) => {
    // The state cookie is single use whatever happens next.
    ctx.append('set-cookie', ssoStateCookie('', ctx.secure, 0));
    try {
      if (!oidc) throw new OutpostError(AdminErrors.SSO_NOT_CONFIGURED, 'single sign-on is not configured (core.admins.oidc)', { status: 404 });
      const query = new URLSearchParams(ctx.querystring);
      const state = query.get('state') ?? '';
      const cookie = ctx.cookies.get(SSO_COOKIE) ?? '';
      if (state === '' || cookie === '' || !sameState(state, cookie)) {
        // A state from another browser (or none) is spent too, so it cannot be tried again.
        if (state !== '') oidc.pending.take(state);
        throw new OutpostError(AdminErrors.SSO_FAILED, cookie === '' ? 'this browser started no sign-in (no state cookie): start again' : 'the state does not match the one this browser started with', { status: 403 });
      }
      const user = await oidc.finish(state, query);
      noteAudit(ctx, { object: `admin:${user.name}` });
      const grant = grantOf(oidc.config.groups, user.groups);
      const roles = (grant?.roles ?? []).filter((r) => {
        if (admins.rolePermissions(r)) return true;
        ctx.state.log.warn({ role: r, groups: grant?.groups }, 'core.admins.oidc.groups maps to a role that does not exist: left out');
        return false;
      });
      if (!grant || roles.length === 0) {
        ctx.state.log.info({ name: user.name, groups: user.groups.slice(0, 50) }, 'single sign-on: in no mapped group');
        throw new OutpostError(AdminErrors.SSO_NO_ROLE, `${user.name} is in no group that core.admins.oidc.groups maps to a role`, { status: 403 });
      }
      const signedIn = await admins.ssoSignIn(user.name, roles, grant.sites, ctx.ip, `${oidc.config.issuer}#${user.subject}`);
      // Who signed in, for the audit log (the request had no principal until now).
      ctx.state.principal = { kind: 'admin', id: user.name, admin: admins.identity(admins.get(user.name), 'sso', signedIn.session.id) };
      noteAudit(ctx, { action: 'session.sso', object: `admin:${user.name}`, after: { roles, ...(grant.sites ? { sites: grant.sites } : {}), groups: grant.groups } });
      ctx.state.log.info({ name: user.name, roles, sites: grant.sites, session: signedIn.session.id }, 'signed in with single sign-on');
      ctx.append('set-cookie', sessionCookie(signedIn.cookie, ctx.secure));
      ctx.set('cache-control', 'no-store');
      ctx.redirect(CONSOLE);
    } catch (err) {
      land(ctx, err);
    }
  });
}
