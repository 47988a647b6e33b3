import { hashSecret, hexEqual, newId, TokenBucket, newSecret, OutpostError, parseCredential, type AdminIdentity, type Logger, type Principal } from '@outpost/common';
import { CoreErrors } from '../errors.js';
import type { Clock } from '../registry.js';
import type { AdminsConfig } from './config.js';
import { AdminErrors } from './errors.js';
import { checkPasswordStrength, decoyHash, hashPassword, verifyPassword } from './passwords.js';
import { ALL_PERMISSIONS, BUILT_IN_ROLES, isPermission, type Permission } from './permissions.js';
import type { AdminRecord, AdminsStore, AdminTokenRecord, RoleRecord, SessionRecord } from './store.js';

/** The bootstrap owner: the token file the core writes on first start. */
export const BOOTSTRAP_ADMIN = 'admin';
export const SESSION_COOKIE = 'outpost_session';
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export interface AdminView {
  name: string;
  roles: string[];
  sites?: string[];
  password: boolean;
  sso: boolean;
  createdAt: string;
  updatedAt: string;
  lockedUntil?: string;
  tokens: { id: string; name: string; createdAt: string; expiresAt: string; expired: boolean }[];
}

export interface RoleView {
  name: string;
  builtIn: boolean;
  description?: string;
  permissions: string[];
}

export interface Issued {
  id: string;
  name: string;
  /** The bearer token, shown once. */
  token: string;
  expiresAt: string;
}

/**
 * Administrators, roles, their API tokens and console sessions. The bootstrap owner
 * (`admin`, the token file) is not stored here: it always exists, holds `owner`, and
 * cannot be removed, so nobody can lock the owner out.
 */
export class AdminsService {
  constructor(
    readonly store: AdminsStore,
    readonly config: AdminsConfig,
    readonly clock: Clock,
    readonly log: Logger,
    /** Sites that exist (a scope must name them). */
    readonly siteExists: (name: string) => boolean,
  ) {}

  // ---- roles and permissions

  rolePermissions(role: string): readonly string[] | undefined {
    return BUILT_IN_ROLES[role]?.permissions ?? this.store.roles.get(role)?.permissions;
  }

  /** Every permission the roles give (unknown roles give none). */
  permissionsOf(roles: readonly string[]): Set<string> {
    return new Set(roles.flatMap((r) => this.rolePermissions(r) ?? []));
  }

  identity(a: Pick<AdminRecord, 'name' | 'roles' | 'sites'>, via: AdminIdentity['via'], credential: string): AdminIdentity {
    return { name: a.name, roles: a.roles, permissions: this.permissionsOf(a.roles), sites: a.sites, via, credential };
  }

  roles(): RoleView[] {
    const builtIn = Object.entries(BUILT_IN_ROLES).map(([name, r]) => ({ name, builtIn: true, description: r.description, permissions: [...r.permissions] }));
    const custom = [...this.store.roles.values()].sort((a, b) => a.name.localeCompare(b.name)).map((r) => ({ name: r.name, builtIn: false, ...(r.description ? { description: r.description } : {}), permissions: r.permissions }));
    return [...builtIn, ...custom];
  }

  async addRole(input: { name: string; permissions: string[]; description?: string | undefined }, by: AdminIdentity): Promise<RoleView> {
    if (BUILT_IN_ROLES[input.name]) throw new OutpostError(AdminErrors.ROLE_BUILT_IN, `${input.name} is a built-in role`, { status: 409 });
    if (this.store.roles.has(input.name)) throw new OutpostError(AdminErrors.ROLE_EXISTS, `role ${input.name} exists`, { status: 409 });
    const unknown = input.permissions.filter((p) => !isPermission(p));
    if (unknown.length > 0) {
      throw new OutpostError(AdminErrors.UNKNOWN_PERMISSION, `unknown permission ${unknown.join(', ')}; the list: ${ALL_PERMISSIONS.join(', ')}`, { status: 400, details: { unknown } });
    }
    this.#noEscalation(input.permissions, by);
    const r: RoleRecord = { name: input.name, permissions: [...new Set(input.permissions)].sort(), createdAt: this.clock.now(), ...(input.description ? { description: input.description } : {}) };
    await this.store.write([this.store.putRole(r)]);
    return this.roles().find((x) => x.name === r.name)!;
  }

  async removeRole(name: string): Promise<RoleView> {
    if (BUILT_IN_ROLES[name]) throw new OutpostError(AdminErrors.ROLE_BUILT_IN, `${name} is a built-in role and cannot be removed`, { status: 409 });
    const before = this.roles().find((x) => x.name === name);
    if (!before) throw new OutpostError(AdminErrors.ROLE_NOT_FOUND, `no role ${name}`, { status: 404 });
    const users = [...this.store.admins.values()].filter((a) => a.roles.includes(name)).map((a) => a.name);
    if (users.length > 0) throw new OutpostError(AdminErrors.ROLE_IN_USE, `role ${name} is held by ${users.join(', ')}`, { status: 409, details: { admins: users } });
    await this.store.write([this.store.delRole(name)]);
    return before;
  }

  /** Nobody grants more than they hold: roles with permissions beyond the granter's, or a wider scope. */
  #noEscalation(permissions: readonly string[], by: AdminIdentity, sites?: readonly string[]): void {
    const beyond = permissions.filter((p) => !by.permissions.has(p));
    if (beyond.length > 0) {
      throw new OutpostError(AdminErrors.FORBIDDEN, `administrator ${by.name} cannot grant permissions it lacks: ${beyond.join(', ')}`, { status: 403, details: { permission: beyond[0] } });
    }
    if (by.sites) {
      const wider = sites === undefined ? ['every site'] : sites.filter((s) => !by.sites!.includes(s));
      if (wider.length > 0) {
        throw new OutpostError(AdminErrors.FORBIDDEN, `administrator ${by.name} is scoped to ${by.sites.join(', ')} and cannot grant ${wider.join(', ')}`, { status: 403, details: { permission: 'admins.write' } });
      }
    }
  }

  #checkRoles(roles: readonly string[], by: AdminIdentity, sites: readonly string[] | undefined): void {
    for (const r of roles) if (!this.rolePermissions(r)) throw new OutpostError(AdminErrors.ROLE_NOT_FOUND, `no role ${r}`, { status: 400 });
    for (const s of sites ?? []) if (!this.siteExists(s)) throw new OutpostError(CoreErrors.SITE_NOT_FOUND, `no site ${s}`, { status: 400 });
    this.#noEscalation([...this.permissionsOf(roles)], by, sites);
  }

  // ---- administrators

  get(name: string): AdminRecord {
    const a = this.store.admins.get(name);
    if (!a) throw new OutpostError(AdminErrors.ADMIN_NOT_FOUND, `no administrator ${name}`, { status: 404 });
    return a;
  }

  view(a: AdminRecord): AdminView {
    const now = this.clock.now();
    const iso = (t: number) => new Date(t).toISOString();
    return {
      name: a.name,
      roles: a.roles,
      ...(a.sites ? { sites: a.sites } : {}),
      password: a.passwordHash !== undefined,
      sso: a.sso === true,
      createdAt: iso(a.createdAt),
      updatedAt: iso(a.updatedAt),
      ...(a.lockedUntil && a.lockedUntil > now ? { lockedUntil: iso(a.lockedUntil) } : {}),
      tokens: [...this.store.tokens.values()]
        .filter((t) => t.admin === a.name)
        .sort((x, y) => x.createdAt - y.createdAt)
        .map((t) => ({ id: t.id, name: t.name, createdAt: iso(t.createdAt), expiresAt: iso(t.expiresAt), expired: t.expiresAt <= now })),
    };
  }

  list(): AdminView[] {
    return [...this.store.admins.values()].sort((a, b) => a.name.localeCompare(b.name)).map((a) => this.view(a));
  }

  /** Adds an administrator with a password, or else with a first API token (returned once). */
  async add(input: { name: string; roles: string[]; sites?: string[] | undefined; password?: string | undefined; tokenExpiresInMs?: number | undefined }, by: AdminIdentity): Promise<{ admin: AdminView; token?: Issued }> {
    if (!NAME.test(input.name)) throw new OutpostError(AdminErrors.ADMIN_NAME, `${JSON.stringify(input.name)} is not an administrator name (lowercase letters, digits, . _ -; up to 64)`, { status: 400 });
    if (input.name === BOOTSTRAP_ADMIN || this.store.admins.has(input.name)) {
      throw new OutpostError(AdminErrors.ADMIN_EXISTS, `administrator ${input.name} exists`, { status: 409 });
    }
    this.#checkRoles(input.roles, by, input.sites);
    const now = this.clock.now();
    const a: AdminRecord = { name: input.name, roles: [...new Set(input.roles)], createdAt: now, updatedAt: now, failures: 0, ...(input.sites ? { sites: [...new Set(input.sites)].sort() } : {}) };
    if (input.password !== undefined) {
      checkPasswordStrength(input.password, input.name, this.config.password.minLength);
      a.passwordHash = await hashPassword(input.password);
    }
    const ops = [this.store.putAdmin(a)];
    let token: Issued | undefined;
    if (input.password === undefined) {
      const t = this.#newToken(a.name, 'default', input.tokenExpiresInMs);
      ops.push(this.store.putToken(t.record));
      token = t.issued;
    }
    await this.store.write(ops);
    this.log.info({ admin: a.name, roles: a.roles, sites: a.sites, by: by.name }, 'administrator added');
    return { admin: this.view(a), ...(token ? { token } : {}) };
  }

  async set(name: string, patch: { roles?: string[] | undefined; sites?: string[] | null | undefined }, by: AdminIdentity): Promise<{ before: AdminView; after: AdminView }> {
    this.#notBootstrap(name);
    const a = this.get(name);
    const before = this.view(a);
    const roles = patch.roles ?? a.roles;
    const sites = patch.sites === null ? undefined : (patch.sites ?? a.sites);
    this.#checkRoles(roles, by, sites);
    // Changing someone wider than oneself is escalation too: their current grant must be within the granter's.
    this.#noEscalation([...this.permissionsOf(a.roles)], by, a.sites);
    const next: AdminRecord = { ...a, roles: [...new Set(roles)], updatedAt: this.clock.now() };
    if (sites) next.sites = [...new Set(sites)].sort();
    else delete next.sites;
    await this.store.write([this.store.putAdmin(next)]);
    return { before, after: this.view(next) };
  }

  async remove(name: string, by: AdminIdentity): Promise<AdminView> {
    this.#notBootstrap(name);
    const a = this.get(name);
    this.#noEscalation([...this.permissionsOf(a.roles)], by, a.sites);
    const before = this.view(a);
    const ops = [this.store.delAdmin(name)];
    for (const t of this.store.tokens.values()) if (t.admin === name) ops.push(this.store.delToken(t.id));
    for (const s of this.store.sessions.values()) if (s.admin === name) ops.push(this.store.delSession(s.id));
    await this.store.write(ops);
    this.log.info({ admin: name, by: by.name }, 'administrator removed');
    return before;
  }

  #notBootstrap(name: string): void {
    if (name === BOOTSTRAP_ADMIN) {
      throw new OutpostError(AdminErrors.ADMIN_PROTECTED, `${BOOTSTRAP_ADMIN} is the bootstrap owner (the core's admin-token file); rotate it by deleting the file and restarting`, { status: 409 });
    }
  }

  /** `checkCurrent`: the caller must give the account's current password (when it has one). */
  async setPassword(name: string, password: string, current: string | undefined, checkCurrent: boolean): Promise<void> {
    this.#notBootstrap(name);
    const a = this.get(name);
    if (a.sso) throw new OutpostError(AdminErrors.ADMIN_PROTECTED, `${name} signs in with single sign-on; its password is the provider's`, { status: 409 });
    if (checkCurrent && a.passwordHash && !(current !== undefined && (await verifyPassword(current, a.passwordHash)))) {
      throw new OutpostError(AdminErrors.SIGN_IN_FAILED, 'the current password is not right', { status: 403, details: { permission: 'admins.write' } });
    }
    checkPasswordStrength(password, name, this.config.password.minLength);
    const history = [a.passwordHash, ...(a.passwordHistory ?? [])].filter((h): h is string => h !== undefined).slice(0, this.config.password.history);
    for (const h of history) {
      if (await verifyPassword(password, h)) throw new OutpostError(AdminErrors.PASSWORD_REUSED, `the password was used before (the last ${this.config.password.history} may not be repeated)`, { status: 400 });
    }
    const next: AdminRecord = { ...a, passwordHash: await hashPassword(password), passwordHistory: history, failures: 0, updatedAt: this.clock.now() };
    delete next.lockedUntil;
    // A new password ends the account's other sessions.
    const ops = [this.store.putAdmin(next)];
    for (const s of this.store.sessions.values()) if (s.admin === name) ops.push(this.store.delSession(s.id));
    await this.store.write(ops);
  }

  // ---- API tokens

  #newToken(admin: string, name: string, expiresInMs: number | undefined): { record: AdminTokenRecord; issued: Issued } {
    const id = newId('at');
    const secret = newSecret();
    const now = this.clock.now();
    const record: AdminTokenRecord = { id, admin, name, hash: hashSecret(secret), createdAt: now, expiresAt: now + (expiresInMs ?? this.config.tokenExpiry) };
    return { record, issued: { id, name, token: `${id}.${secret}`, expiresAt: new Date(record.expiresAt).toISOString() } };
  }

  async createToken(admin: string, name: string, expiresInMs: number | undefined): Promise<Issued> {
    this.#notBootstrap(admin);
    this.get(admin);
    if ([...this.store.tokens.values()].filter((t) => t.admin === admin).length >= 100) {
      throw new OutpostError(AdminErrors.ADMIN_TOKEN_LIMIT, `${admin} has 100 tokens; remove some first`, { status: 409 });
    }
    const t = this.#newToken(admin, name, expiresInMs);
    await this.store.write([this.store.putToken(t.record)]);
    return t.issued;
  }

  async removeToken(admin: string, id: string): Promise<void> {
    const t = this.store.tokens.get(id);
    if (!t || t.admin !== admin) throw new OutpostError(AdminErrors.ADMIN_TOKEN_NOT_FOUND, `${admin} has no token ${id}`, { status: 404 });
    await this.store.write([this.store.delToken(id)]);
  }

  /**
   * The principal behind an administrator API token (`at_...`), undefined for a token
   * that is not one; an expired one is a 401 that says so.
   */
  verifyToken(token: string): Principal | undefined {
    const cred = parseCredential(token);
    if (!cred?.id.startsWith('at_')) return undefined;
    const t = this.store.tokens.get(cred.id);
    if (!t || !hexEqual(t.hash, hashSecret(cred.secret))) return undefined;
    const a = this.store.admins.get(t.admin);
    if (!a) return undefined;
    if (t.expiresAt <= this.clock.now()) {
      throw new OutpostError(AdminErrors.CREDENTIAL_EXPIRED, `the token ${t.name} (${t.id}) of ${a.name} expired at ${new Date(t.expiresAt).toISOString()}; create another with outpost admin token create`, { status: 401 });
    }
    return { kind: 'admin', id: a.name, admin: this.identity(a, 'token', t.id) };
  }

  bootstrapPrincipal(): Principal {
    return { kind: 'admin', id: BOOTSTRAP_ADMIN, admin: { name: BOOTSTRAP_ADMIN, roles: ['owner'], permissions: new Set<Permission>(ALL_PERMISSIONS), via: 'bootstrap', credential: 'admin-token' } };
  }

  // ---- password sign-in and sessions

  /**
   * Signs in with name and password. Unknown names cost as much as wrong passwords and
   * answer the same. After `lockout.after` failures in a row the account is locked for
   * `base · 2^(failures - after)`, capped at `max`; a right password during the lock is
   * refused too (`CORE_SIGN_IN_LOCKED`, with when to retry).
   */
  async signIn(name: string, password: string, address: string | undefined): Promise<{ session: SessionRecord; cookie: string }> {
    this.limitSignIn(address);
    const a = this.store.admins.get(name);
    const now = this.clock.now();
    if (a?.lockedUntil && a.lockedUntil > now) {
      const retryAfterS = Math.ceil((a.lockedUntil - now) / 1000);
      throw new OutpostError(AdminErrors.SIGN_IN_LOCKED, `too many failed sign-ins for ${name}: try again in ${retryAfterS} s`, { status: 429, details: { retryAfterS } });
    }
    const ok = a?.passwordHash ? await verifyPassword(password, a.passwordHash) : (await verifyPassword(password, await decoyHash())) && false;
    if (!a || !ok) {
      if (a) {
        const failures = a.failures + 1;
        const next: AdminRecord = { ...a, failures };
        const over = failures - this.config.lockout.after;
        if (over >= 0) next.lockedUntil = now + Math.min(this.config.lockout.max, this.config.lockout.base * 2 ** Math.min(over, 30));
        await this.store.write([this.store.putAdmin(next)]);
        if (next.lockedUntil) this.log.warn({ admin: name, failures, lockedUntil: new Date(next.lockedUntil).toISOString(), address }, 'administrator locked after failed sign-ins');
      }
      throw new OutpostError(AdminErrors.SIGN_IN_FAILED, 'wrong name or password', { status: 401 });
    }
    const ops = [];
    if (a.failures > 0 || a.lockedUntil) {
      const next = { ...a, failures: 0 };
      delete next.lockedUntil;
      ops.push(this.store.putAdmin(next));
    }
    const s = this.#newSession(a.name, 'session', address);
    ops.push(this.store.putSession(s.session));
    await this.store.write(ops);
    return s;
  }

  /**
   * A console session for an administrator who proved themselves with an API token (or
   * the bootstrap owner's token file): the owner has no password, and scripts' tokens
   * should not live in a browser's storage.
   */
  async tokenSignIn(principal: Principal, address: string | undefined): Promise<{ session: SessionRecord; cookie: string }> {
    const s = this.#newSession(principal.id, 'session', address);
    await this.store.write([this.store.putSession(s.session)]);
    return s;
  }

  /**
   * Sign-ins per source address (passwords, and single sign-on starts, whose pending
   * state is bounded), so one address cannot spray a password over every account (each
   * account's own lockout sees one failure only) or push real users' SSO sign-ins out. At most
   * `lockout.perAddressPerMinute` a minute, as a burst too; 10,000 addresses tracked.
   */
  readonly #addresses = new Map<string, TokenBucket>();
  limitSignIn(address: string | undefined): void {
    const key = address ?? '?';
    let bucket = this.#addresses.get(key);
    if (!bucket) {
      if (this.#addresses.size >= 10_000) this.#addresses.delete(this.#addresses.keys().next().value!);
      const perMinute = this.config.lockout.perAddressPerMinute;
      bucket = new TokenBucket(perMinute / 60, { burst: perMinute, now: () => this.clock.now() });
      this.#addresses.set(key, bucket);
    }
    if (!bucket.tryTake()) {
      const retryAfterS = Math.ceil(60 / this.config.lockout.perAddressPerMinute);
      throw new OutpostError(AdminErrors.SIGN_IN_LOCKED, `too many sign-ins from ${key}: try again in ${retryAfterS} s`, { status: 429, details: { retryAfterS } });
    }
  }

  /** A session for an administrator the identity provider vouched for (roles and scope from its groups). */
  async ssoSignIn(name: string, roles: string[], sites: string[] | undefined, address: string | undefined, subject?: string): Promise<{ session: SessionRecord; cookie: string }> {
    if (!NAME.test(name) || name === BOOTSTRAP_ADMIN) throw new OutpostError(AdminErrors.SSO_FAILED, `the provider's name ${JSON.stringify(name)} is not a usable administrator name`, { status: 403 });
    const existing = this.store.admins.get(name);
    if (existing && !existing.sso) {
      throw new OutpostError(AdminErrors.SSO_FAILED, `${name} is a local administrator; single sign-on cannot take it over`, { status: 403 });
    }
    if (existing?.ssoSubject !== undefined && subject !== undefined && existing.ssoSubject !== subject) {
      // The provider now gives this name to another identity: it does not inherit the account (its API tokens).
      this.log.warn({ admin: name, was: existing.ssoSubject, now: subject }, 'single sign-on: the name belongs to another identity of the provider; refused');
      throw new OutpostError(AdminErrors.SSO_FAILED, `${name} belongs to another identity of the provider; an owner must remove the old account first`, { status: 403 });
    }
    const now = this.clock.now();
    const a: AdminRecord = { name, roles, createdAt: existing?.createdAt ?? now, updatedAt: now, failures: 0, sso: true, ...(sites ? { sites } : {}), ...(subject ?? existing?.ssoSubject ? { ssoSubject: subject ?? existing?.ssoSubject } : {}) };
    const s = this.#newSession(name, 'sso', address);
    await this.store.write([this.store.putAdmin(a), this.store.putSession(s.session)]);
    return s;
  }

  #newSession(admin: string, via: SessionRecord['via'], address: string | undefined): { session: SessionRecord; cookie: string } {
    const id = newId('se');
    const secret = newSecret();
    const now = this.clock.now();
    const session: SessionRecord = { id, admin, hash: hashSecret(secret), via, createdAt: now, lastSeenAt: now, expiresAt: now + this.config.session.absolute, ...(address ? { address } : {}) };
    return { session, cookie: `${id}.${secret}` };
  }

  /** The principal behind a session cookie; an ended session is a 401 that says why. */
  async verifySession(cookie: string): Promise<Principal | undefined> {
    const cred = parseCredential(cookie);
    if (!cred?.id.startsWith('se_')) return undefined;
    const s = this.store.sessions.get(cred.id);
    if (!s || !hexEqual(s.hash, hashSecret(cred.secret))) return undefined;
    const a = s.admin === BOOTSTRAP_ADMIN ? { name: BOOTSTRAP_ADMIN, roles: ['owner'] } : this.store.admins.get(s.admin);
    const now = this.clock.now();
    if (!a) return undefined;
    if (now >= s.expiresAt || now - s.lastSeenAt >= this.config.session.idle) {
      await this.store.write([this.store.delSession(s.id)]);
      throw new OutpostError(AdminErrors.SESSION_EXPIRED, now >= s.expiresAt ? 'the session ended (signed in too long ago): sign in again' : 'the session ended (idle too long): sign in again', { status: 401 });
    }
    // Kept in memory at once, written at most once a minute (so a restart keeps sessions).
    const write = now - s.lastSeenAt > 60_000;
    s.lastSeenAt = now;
    if (write) await this.store.write([this.store.putSession(s)]);
    return { kind: 'admin', id: a.name, admin: this.identity(a, s.via, s.id) };
  }

  async signOut(sessionId: string): Promise<void> {
    if (this.store.sessions.has(sessionId)) await this.store.write([this.store.delSession(sessionId)]);
  }

  /** Removes ended sessions (called on a timer). */
  async sweep(): Promise<number> {
    const now = this.clock.now();
    const ended = [...this.store.sessions.values()].filter((s) => now >= s.expiresAt || now - s.lastSeenAt >= this.config.session.idle);
    await this.store.write(ended.map((s) => this.store.delSession(s.id)));
    return ended.length;
  }
}
