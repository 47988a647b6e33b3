import type { ParameterizedContext } from 'koa';
import type { RouterContext } from '@koa/router';
import type { Logger } from 'pino';

/** Who made an authenticated request. Services define their own kinds. */
/** How an administrator proved who they are. */
export type AdminVia = 'bootstrap' | 'token' | 'session' | 'sso';

/** An administrator behind a request: who, with what, allowed to do what, where. */
export interface AdminIdentity {
  name: string;
  roles: readonly string[];
  permissions: ReadonlySet<string>;
  /** The sites this administrator is scoped to; undefined: every site. */
  sites?: readonly string[] | undefined;
  via: AdminVia;
  /** The token id or session id (never its secret), for the audit log. */
  credential: string;
}

export interface Principal {
  kind: string;
  /** For an administrator: the administrator's name. */
  id: string;
  /** Set for kind `admin`. */
  admin?: AdminIdentity;
}

/** What a handler tells the audit log about its change (the core's audit module reads it). */
export interface AuditNote {
  /** Overrides the action named from the route. */
  action?: string;
  /** The object changed, e.g. `site:hq`, `admin:alice`. */
  object?: string;
  before?: unknown;
  after?: unknown;
  /**
   * The request was refused though it answers with a success status (a browser flow that
   * redirects to an error page): the code, recorded as the outcome.
   */
  refused?: string;
}

export interface AppState {
  requestId: string;
  log: Logger;
  principal?: Principal;
  audit?: AuditNote;
}

export type AppContext = ParameterizedContext<AppState>;
export type RouteContext = RouterContext<AppState>;
