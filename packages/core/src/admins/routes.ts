import type { Router } from '@koa/router';
import { noteAudit } from '../audit/note.js';
import { durationText } from '../routes/schemas.js';
import { OutpostError, publicRoute, readJson, validate, z, type AppState, type Principal, type RouteContext } from '@outpost/common';
import { AdminErrors } from './errors.js';
import type { SessionRecord } from './store.js';
import { anyAdmin, can, canOrSelf } from './guard.js';
import { sessionCookie } from './authenticate.js';
import { PERMISSIONS } from './permissions.js';
import { SESSION_COOKIE, type AdminsService } from './service.js';

const name = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'a lowercase name: letters, digits, . _ -');
const site = z.string().min(1).max(64);
const password = z.string().min(1).max(1024);

const addBody = z
  .object({
    name,
    roles: z.array(name).min(1).max(16),
    sites: z.array(site).min(1).max(1000).optional(),
    /** Without a password the answer carries a first API token (shown once). */
    password: password.optional(),
    tokenExpires: durationText.optional(),
  })
  .strict();
const setBody = z
  .object({ roles: z.array(name).min(1).max(16).optional(), sites: z.array(site).min(1).max(1000).nullable().optional() })
  .strict();
const passwordBody = z.object({ password, current: password.optional() }).strict();
const tokenBody = z.object({ name: z.string().min(1).max(64), expires: durationText.optional() }).strict();
const roleBody = z
  .object({ name, permissions: z.array(z.string().max(64)).min(1).max(64), description: z.string().max(256).optional() })
  .strict();
const signInBody = z.union([z.object({ name: z.string().min(1).max(64), password }).strict(), z.object({ token: z.string().min(1).max(1024) }).strict()]);

/** The caller as an administrator (the guards ran first). */
const me = (ctx: RouteContext) => ctx.state.principal!.admin!;


/** Administrators, roles, API tokens and console sign-in. */
export function adminsRoutes(router: Router<AppState>, admins: AdminsService): void {
  router.get('/api/v1/permissions', can('admins.read'), (ctx) => {
    ctx.body = { items: Object.entries(PERMISSIONS).map(([permission, description]) => ({ permission, description })) };
  });
  router.get('/api/v1/roles', can('admins.read'), (ctx) => {
    ctx.body = { items: admins.roles() };
  });
  router.post('/api/v1/roles', can('admins.write'), async (ctx) => {
    const body = await readJson(ctx, roleBody);
    const role = await admins.addRole(body, me(ctx));
    noteAudit(ctx, { object: `role:${role.name}`, after: role });
    ctx.status = 201;
    ctx.body = role;
  });
  router.delete('/api/v1/roles/:name', can('admins.write'), async (ctx) => {
    const before = await admins.removeRole(validate(name, ctx.params.name, 'role name'));
    noteAudit(ctx, { object: `role:${before.name}`, before });
    ctx.status = 204;
  });

  router.get('/api/v1/admins', can('admins.read'), (ctx) => {
    ctx.body = { items: admins.list() };
  });
  router.post('/api/v1/admins', can('admins.write'), async (ctx) => {
    const body = await readJson(ctx, addBody);
    const out = await admins.add({ name: body.name, roles: body.roles, sites: body.sites, password: body.password, tokenExpiresInMs: body.tokenExpires }, me(ctx));
    noteAudit(ctx, { object: `admin:${body.name}`, after: out.admin });
    ctx.status = 201;
    ctx.body = out;
  });
  router.get('/api/v1/admins/:name', canOrSelf('admins.read'), (ctx) => {
    ctx.body = admins.view(admins.get(validate(name, ctx.params.name, 'administrator name')));
  });
  router.patch('/api/v1/admins/:name', can('admins.write'), async (ctx) => {
    const body = await readJson(ctx, setBody);
    const { before, after } = await admins.set(validate(name, ctx.params.name, 'administrator name'), body, me(ctx));
    noteAudit(ctx, { object: `admin:${after.name}`, before, after });
    ctx.body = after;
  });
  router.delete('/api/v1/admins/:name', can('admins.write'), async (ctx) => {
    const before = await admins.remove(validate(name, ctx.params.name, 'administrator name'), me(ctx));
    noteAudit(ctx, { object: `admin:${before.name}`, before });
    ctx.status = 204;
  });
  router.put('/api/v1/admins/:name/password', canOrSelf('admins.write'), async (ctx) => {
    const target = validate(name, ctx.params.name, 'administrator name');
    const body = await readJson(ctx, passwordBody);
    // One's own password needs the current one, unless one may set anybody's and gives none.
    const own = target === me(ctx).name;
    await admins.setPassword(target, body.password, body.current, own && (body.current !== undefined || !me(ctx).permissions.has('admins.write')));
    noteAudit(ctx, { object: `admin:${target}`, after: { password: 'changed' } });
    ctx.status = 204;
  });
  router.post('/api/v1/admins/:name/tokens', canOrSelf('admins.write'), async (ctx) => {
    const target = validate(name, ctx.params.name, 'administrator name');
    const body = await readJson(ctx, tokenBody);
    const issued = await admins.createToken(target, body.name, body.expires);
    noteAudit(ctx, { object: `admin:${target}/token:${issued.id}`, after: { id: issued.id, name: issued.name, expiresAt: issued.expiresAt } });
    ctx.status = 201;
    ctx.body = issued;
  });
  router.delete('/api/v1/admins/:name/tokens/:id', canOrSelf('admins.write'), async (ctx) => {
    const target = validate(name, ctx.params.name, 'administrator name');
    const id = validate(z.string().min(1).max(64), ctx.params.id, 'token id');
    await admins.removeToken(target, id);
    noteAudit(ctx, { object: `admin:${target}/token:${id}` });
    ctx.status = 204;
  });

  // The console's session: who am I, sign out. Sign-in is public (publicSessionRoutes).
  router.get('/api/v1/session', anyAdmin(), (ctx) => {
    const a = me(ctx);
    const s = a.via === 'session' || a.via === 'sso' ? admins.store.sessions.get(a.credential) : undefined;
    ctx.body = {
      name: a.name,
      roles: a.roles,
      permissions: [...a.permissions].sort(),
      ...(a.sites ? { sites: a.sites } : {}),
      via: a.via,
      ...(s ? { expiresAt: new Date(Math.min(s.expiresAt, s.lastSeenAt + admins.config.session.idle)).toISOString() } : {}),
    };
  });
  router.delete('/api/v1/session', anyAdmin(), async (ctx) => {
    const a = me(ctx);
    if (a.via === 'session' || a.via === 'sso') await admins.signOut(a.credential);
    ctx.set('set-cookie', sessionCookie('', ctx.secure, 0));
    ctx.status = 204;
  });
}

/** Sign-in (no credential yet) and whether single sign-on is offered. */
export function publicSessionRoutes(
  router: Router<AppState>,
  admins: AdminsService,
  sso: () => { enabled: boolean; label?: string },
  /** The administrator behind an API token or the bootstrap owner's token, or undefined. */
  verifyAdminToken: (token: string) => Principal | undefined,
): void {
  router.post('/api/v1/session', publicRoute(), async (ctx) => {
    const body = await readJson(ctx, signInBody);
    let signedIn: { session: SessionRecord; cookie: string };
    let who: Principal;
    if ('token' in body) {
      const p = verifyAdminToken(body.token);
      if (p?.kind !== 'admin' || !p.admin) throw new OutpostError(AdminErrors.SIGN_IN_FAILED, 'the token is not an administrator token', { status: 401 });
      signedIn = await admins.tokenSignIn(p, ctx.ip);
      who = { ...p, admin: { ...p.admin, via: 'session', credential: signedIn.session.id } };
    } else {
      noteAudit(ctx, { object: `admin:${body.name}` });
      signedIn = await admins.signIn(body.name, body.password, ctx.ip);
      who = { kind: 'admin', id: body.name, admin: admins.identity(admins.get(body.name), 'session', signedIn.session.id) };
    }
    // Who signed in, for the audit log (the request had no principal until now).
    ctx.state.principal = who;
    noteAudit(ctx, { object: `admin:${who.id}` });
    ctx.set('set-cookie', sessionCookie(signedIn.cookie, ctx.secure));
    ctx.body = { name: who.id, expiresAt: new Date(signedIn.session.expiresAt).toISOString() };
  });
  router.get('/api/v1/session/sso', publicRoute(), (ctx) => {
    ctx.body = sso();
  });
}

export { SESSION_COOKIE };
