import { OutpostError, type RouteContext } from '@outpost/common';
import { agentNotFound, siteNotFound, siteServerNotFound } from '../errors.js';
import type { Registry } from '../registry.js';
import { AdminErrors } from './errors.js';
import { inScope, scopeOf } from './guard.js';

/*
 * Site scopes. A scoped administrator sees and acts only on agents, site servers, sites,
 * computers and runs of their sites. Out-of-scope objects answer exactly what a missing
 * one answers (the same 404 code and message), so a scope leaks no existence; lists leave
 * them out. Objects that belong to no site (packages, tasks, jobs, boot images, the CA,
 * enrollment tokens) are governed by permissions alone.
 */

export function agentVisible(ctx: Pick<RouteContext, 'state'>, registry: Registry, id: string): boolean {
  const scope = scopeOf(ctx);
  return scope === undefined || (registry.store.agents.has(id) && inScope(scope, registry.agentSites(id)));
}

/** Throws the registry's own "no such agent" 404 for an agent outside the caller's scope. */
export function agentInScope(ctx: Pick<RouteContext, 'state'>, registry: Registry, id: string): void {
  if (!agentVisible(ctx, registry, id)) throw agentNotFound(id);
}

export function siteServerVisible(ctx: Pick<RouteContext, 'state'>, registry: Registry, id: string): boolean {
  const scope = scopeOf(ctx);
  if (scope === undefined) return true;
  const ss = registry.store.siteServers.get(id);
  return ss !== undefined && inScope(scope, ss.sites);
}

export function siteServerInScope(ctx: Pick<RouteContext, 'state'>, registry: Registry, id: string): void {
  if (!siteServerVisible(ctx, registry, id)) throw siteServerNotFound(id);
}

export function siteVisible(ctx: Pick<RouteContext, 'state'>, name: string): boolean {
  const scope = scopeOf(ctx);
  return scope === undefined || scope.includes(name);
}

export function siteInScope(ctx: Pick<RouteContext, 'state'>, name: string): void {
  if (!siteVisible(ctx, name)) throw siteNotFound(name);
}

/** Sites named in a change must all be inside the caller's scope. */
export function sitesWithinScope(ctx: Pick<RouteContext, 'state'>, sites: readonly string[] | undefined, permission: string): void {
  const scope = scopeOf(ctx);
  if (scope === undefined) return;
  const outside = (sites ?? []).filter((s) => !scope.includes(s));
  if (outside.length > 0) {
    throw new OutpostError(AdminErrors.FORBIDDEN, `a scoped administrator cannot name sites outside the scope (${outside.join(', ')})`, { status: 403, details: { permission } });
  }
}

/**
 * Refuses a scoped administrator an action that reaches beyond any one site (adding a
 * site, a computer that belongs to no agent yet): 403 naming the permission.
 */
export function unscopedOnly(ctx: Pick<RouteContext, 'state'>, permission: string, what: string): void {
  if (scopeOf(ctx) !== undefined) {
    throw new OutpostError(AdminErrors.FORBIDDEN, `${what} needs an administrator without a site scope`, { status: 403, details: { permission } });
  }
}
