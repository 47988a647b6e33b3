import { readJson, validate, z, type AppState } from '@outpost/common';
import { can, scopeOf } from '../admins/guard.js';
import { siteInScope, siteVisible, sitesWithinScope, unscopedOnly } from '../admins/scope.js';
import type { Router } from '@koa/router';
import type { Enrollment } from '../enrollment.js';
import type { Registry } from '../registry.js';
import type { DatagramServer } from '../datagram-server.js';
import { durationText, grant, name } from './schemas.js';

const tokenBody = z
  .object({
    for: z.enum(['agent', 'site-server']),
    uses: z.number().int().min(1).max(10_000_000).optional(),
    expires: durationText.optional(),
    note: z.string().max(256).optional(),
    /** Required for `site-server`, refused for `agent`. */
    grant: grant.optional(),
    /** `agent` only: the site the machines are for (the install link downloads from its package servers). */
    site: name.optional(),
  })
  .strict();

const siteBody = z
  .object({ name, subnets: z.array(z.string().max(64)).max(10_000), description: z.string().max(1024).optional() })
  .strict();
const sitePatch = z.object({ subnets: z.array(z.string().max(64)).max(10_000).optional(), description: z.string().max(1024).optional() }).strict();

/** Admin-only routes: enrollment tokens, sites, statistics. */
export function adminRoutes(router: Router<AppState>, deps: { registry: Registry; enrollment: Enrollment; datagrams: DatagramServer; stats: () => Record<string, unknown> }): void {
  const { registry, enrollment } = deps;

  router.post('/api/v1/tokens', can('tokens.write'), async (ctx) => {
    const body = await readJson(ctx, tokenBody);
    // A scoped administrator enrolls site servers only into its own sites.
    if (body.for === 'site-server') sitesWithinScope(ctx, body.grant?.sites ?? (scopeOf(ctx) ? ['(no sites: every subnet)'] : undefined), 'tokens.write');
    if (body.site !== undefined) sitesWithinScope(ctx, [body.site], 'tokens.write');
    ctx.status = 201;
    ctx.body = await enrollment.createToken({ for: body.for, uses: body.uses, expiresInMs: body.expires, note: body.note, grant: body.grant, site: body.site });
  });
  router.get('/api/v1/tokens', can('tokens.read'), (ctx) => {
    ctx.body = { items: enrollment.listTokens() };
  });
  router.delete('/api/v1/tokens/:id', can('tokens.write'), async (ctx) => {
    await enrollment.deleteToken(ctx.params.id!);
    ctx.status = 204;
  });

  router.post('/api/v1/sites', can('sites.write'), async (ctx) => {
    unscopedOnly(ctx, 'sites.write', 'adding a site');
    const body = await readJson(ctx, siteBody);
    const site = await registry.addSite(body);
    ctx.status = 201;
    ctx.body = registry.siteView(site);
  });
  router.get('/api/v1/sites', can('sites.read'), (ctx) => {
    ctx.body = { items: [...registry.store.sites.values()].filter((s) => siteVisible(ctx, s.name)).sort((a, b) => a.name.localeCompare(b.name)).map((s) => registry.siteView(s)) };
  });
  router.get('/api/v1/sites/:name', can('sites.read'), (ctx) => {
    const site = validate(name, ctx.params.name, 'site name');
    siteInScope(ctx, site);
    ctx.body = registry.siteView(registry.getSite(site));
  });
  router.patch('/api/v1/sites/:name', can('sites.write'), async (ctx) => {
    siteInScope(ctx, ctx.params.name!);
    const body = await readJson(ctx, sitePatch);
    const before = registry.siteView(registry.getSite(ctx.params.name!));
    ctx.body = registry.siteView(await registry.updateSite(ctx.params.name!, body));
    ctx.state.audit = { object: `site:${ctx.params.name}`, before, after: ctx.body };
  });
  router.delete('/api/v1/sites/:name', can('sites.write'), async (ctx) => {
    unscopedOnly(ctx, 'sites.write', 'removing a site');
    const before = registry.siteView(registry.getSite(ctx.params.name!));
    await registry.deleteSite(ctx.params.name!);
    ctx.state.audit = { object: `site:${ctx.params.name}`, before };
    ctx.status = 204;
  });

  router.get('/api/v1/stats', can('stats.read'), (ctx) => {
    ctx.body = deps.stats();
  });
}
