import { allValues, DURABLE, sublevel, type BatchOp, type Database, type Sublevel } from '@outpost/common';

export interface AdminRecord {
  name: string;
  roles: string[];
  /** Site scope; absent: every site. */
  sites?: string[];
  createdAt: number;
  updatedAt: number;
  /** scrypt hash (passwords.ts); absent: no password sign-in. */
  passwordHash?: string;
  /** Earlier password hashes, newest first (a new password may not repeat them). */
  passwordHistory?: string[];
  /** Made by single sign-on: roles and scope come from the provider's groups at each sign-in. */
  sso?: boolean;
  /** The provider's identity of it (`issuer#sub`): the name alone may be given to someone else later. */
  ssoSubject?: string;
  /** Failed sign-ins in a row, and the lock they caused. */
  failures: number;
  lockedUntil?: number;
}

export interface AdminTokenRecord {
  id: string;
  admin: string;
  name: string;
  /** hashSecret of the secret; the secret is shown once. */
  hash: string;
  createdAt: number;
  expiresAt: number;
}

export interface RoleRecord {
  name: string;
  description?: string;
  permissions: string[];
  createdAt: number;
}

export interface SessionRecord {
  id: string;
  admin: string;
  hash: string;
  via: 'session' | 'sso';
  createdAt: number;
  lastSeenAt: number;
  /** Absolute end. */
  expiresAt: number;
  address?: string;
}

/**
 * The administrators module's sublevels: `admins` (name → account), `admin-tokens`
 * (id → token), `admin-roles` (name → custom role), `admin-sessions` (id → console
 * session). All held in memory too: they are few.
 */
export class AdminsStore {
  readonly admins = new Map<string, AdminRecord>();
  readonly tokens = new Map<string, AdminTokenRecord>();
  readonly roles = new Map<string, RoleRecord>();
  readonly sessions = new Map<string, SessionRecord>();
  readonly #admins: Sublevel<AdminRecord>;
  readonly #tokens: Sublevel<AdminTokenRecord>;
  readonly #roles: Sublevel<RoleRecord>;
  readonly #sessions: Sublevel<SessionRecord>;

  constructor(readonly db: Database) {
    this.#admins = sublevel(db, 'admins');
    this.#tokens = sublevel(db, 'admin-tokens');
    this.#roles = sublevel(db, 'admin-roles');
    this.#sessions = sublevel(db, 'admin-sessions');
  }

  async load(): Promise<void> {
    for (const a of await allValues(this.#admins)) this.admins.set(a.name, a);
    for (const t of await allValues(this.#tokens)) this.tokens.set(t.id, t);
    for (const r of await allValues(this.#roles)) this.roles.set(r.name, r);
    for (const s of await allValues(this.#sessions)) this.sessions.set(s.id, s);
  }

  putAdmin(a: AdminRecord): BatchOp {
    this.admins.set(a.name, a);
    return { type: 'put', sublevel: this.#admins, key: a.name, value: a };
  }

  delAdmin(name: string): BatchOp {
    this.admins.delete(name);
    return { type: 'del', sublevel: this.#admins, key: name };
  }

  putToken(t: AdminTokenRecord): BatchOp {
    this.tokens.set(t.id, t);
    return { type: 'put', sublevel: this.#tokens, key: t.id, value: t };
  }

  delToken(id: string): BatchOp {
    this.tokens.delete(id);
    return { type: 'del', sublevel: this.#tokens, key: id };
  }

  putRole(r: RoleRecord): BatchOp {
    this.roles.set(r.name, r);
    return { type: 'put', sublevel: this.#roles, key: r.name, value: r };
  }

  delRole(name: string): BatchOp {
    this.roles.delete(name);
    return { type: 'del', sublevel: this.#roles, key: name };
  }

  putSession(s: SessionRecord): BatchOp {
    this.sessions.set(s.id, s);
    return { type: 'put', sublevel: this.#sessions, key: s.id, value: s };
  }

  delSession(id: string): BatchOp {
    this.sessions.delete(id);
    return { type: 'del', sublevel: this.#sessions, key: id };
  }

  async write(ops: BatchOp[]): Promise<void> {
    if (ops.length > 0) await this.db.batch(ops, DURABLE);
  }
}
