import { readJson, validate, z, type AppState } from '@outpost/common';
import { can, scopeOf, selfOnly, selfOr } from '../admins/guard.js';
import { agentInScope, siteServerInScope, siteServerVisible, sitesWithinScope } from '../admins/scope.js';
import type { Router } from '@koa/router';
import type { Registry } from '../registry.js';
import { agentListQuery, grantPatch, hostAddress, mac, name, services, tickleAddress } from './schemas.js';


const siteServerPatch = z.object({ sites: z.array(name).max(1000).optional(), services: services.optional(), name: name.optional(), grant: grantPatch.optional() }).strict();
/** Health and load a site server reports (shown to admins; changes nothing it may do). */
const siteHealth = z.strictObject({
  status: z.enum(['ok', 'degraded']),
  problems: z.array(z.string().max(200)).max(16).optional(),
  load: z
    .record(z.string().regex(/^[a-zA-Z][\w.]{0,39}$/), z.number().finite().nonnegative())
    .refine((o) => Object.keys(o).length <= 16, 'at most 16 load figures')
    .optional(),
});
const siteServerHeartbeat = z.object({ services: services.optional(), address: hostAddress.optional(), tickleAddress: tickleAddress.optional(), health: siteHealth.optional() }).strict();
const agentPatch = z
  .object({ name: name.optional(), macs: z.array(mac).max(64).optional(), ips: z.array(hostAddress).max(256).optional(), os: z.string().max(256).optional() })
  .strict();
const agentHeartbeat = z.object({ configSerial: z.string().max(64).optional(), ips: z.array(hostAddress).max(256).optional() }).strict();
const selectionQuery = z.object({ service: z.enum(['package', 'task', 'netboot', 'gateway']) }).strict();

/** Routes for site servers and agents (their own records; admin sees all). */
export function principalRoutes(router: Router<AppState>, registry: Registry): void {

  // ------------------------------------------------------------ site servers
  router.get('/api/v1/site-servers', can('site-servers.read'), (ctx) => {
    ctx.body = {
      items: [...registry.store.siteServers.values()]
        .filter((s) => siteServerVisible(ctx, registry, s.id))
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((s) => registry.siteServerView(s)),
    };
  });
  router.get('/api/v1/site-servers/:id', selfOr('site-servers.read', ['site-server']), (ctx) => {
    siteServerInScope(ctx, registry, ctx.params.id!);
    ctx.body = registry.siteServerView(registry.getSiteServer(ctx.params.id!));
  });
  router.patch('/api/v1/site-servers/:id', can('site-servers.write'), async (ctx) => {
    siteServerInScope(ctx, registry, ctx.params.id!);
    const body = await readJson(ctx, siteServerPatch);
    sitesWithinScope(ctx, body.sites ?? body.grant?.sites ?? undefined, 'site-servers.write');
    const before = registry.siteServerView(registry.getSiteServer(ctx.params.id!));
    ctx.body = registry.siteServerView(await registry.updateSiteServer(ctx.params.id!, body));
    ctx.state.audit = { object: `site-server:${ctx.params.id}`, before, after: ctx.body };
  });
  router.delete('/api/v1/site-servers/:id', can('site-servers.write'), async (ctx) => {
    siteServerInScope(ctx, registry, ctx.params.id!);
    ctx.state.audit = { object: `site-server:${ctx.params.id}`, before: registry.siteServerView(registry.getSiteServer(ctx.params.id!)) };
    await registry.deleteSiteServer(ctx.params.id!);
    ctx.status = 204;
  });
  router.post('/api/v1/site-servers/:id/heartbeat', selfOnly('site-server'), async (ctx) => {
    const body = await readJson(ctx, siteServerHeartbeat);
    // Health and load, and a restatement of what it was granted: never a claim (see Registry.heartbeatClaim).
    const ss = await registry.heartbeatClaim(ctx.params.id!, body);
    registry.touch(ss.id, 'http');
    const cfg = registry.siteServerConfig(ss);
    ctx.body = { configSerial: cfg.serial, heartbeatIntervalMs: cfg.heartbeatIntervalMs };
  });
  router.get('/api/v1/site-servers/:id/config', selfOr('site-servers.read', ['site-server']), (ctx) => {
    siteServerInScope(ctx, registry, ctx.params.id!);
    ctx.body = registry.siteServerConfig(registry.getSiteServer(ctx.params.id!));
  });

  // ------------------------------------------------------------ agents
  router.get('/api/v1/agents', can('agents.read'), (ctx) => {
    ctx.body = registry.listAgents({ ...validate(agentListQuery, ctx.query, 'query'), scope: scopeOf(ctx) });
  });
  router.get('/api/v1/agents/:id', selfOr('agents.read', ['agent']), (ctx) => {
    agentInScope(ctx, registry, ctx.params.id!);
    ctx.body = registry.agentView(registry.getAgent(ctx.params.id!));
  });
  router.patch('/api/v1/agents/:id', selfOr('agents.write', ['agent']), async (ctx) => {
    agentInScope(ctx, registry, ctx.params.id!);
    const body = await readJson(ctx, agentPatch);
    const before = registry.agentView(registry.getAgent(ctx.params.id!));
    ctx.body = registry.agentView(await registry.updateAgent(ctx.params.id!, body));
    ctx.state.audit = { object: `agent:${ctx.params.id}`, before, after: ctx.body };
  });
  router.delete('/api/v1/agents/:id', can('agents.write'), async (ctx) => {
    agentInScope(ctx, registry, ctx.params.id!);
    ctx.state.audit = { object: `agent:${ctx.params.id}`, before: registry.agentView(registry.getAgent(ctx.params.id!)) };
    await registry.deleteAgent(ctx.params.id!);
    ctx.status = 204;
  });
  router.post('/api/v1/agents/:id/heartbeat', selfOnly('agent'), async (ctx) => {
    const body = await readJson(ctx, agentHeartbeat);
    const id = ctx.params.id!;
    if (body.ips) await registry.updateAgent(id, { ips: body.ips });
    registry.touch(id, 'http', body.configSerial);
    ctx.body = { configSerial: registry.agentSerial(id), heartbeatIntervalMs: registry.agentConfig(id).heartbeatIntervalMs };
  });
  router.get('/api/v1/agents/:id/config', selfOr('agents.read', ['agent']), (ctx) => {
    agentInScope(ctx, registry, ctx.params.id!);
    ctx.body = registry.agentConfig(ctx.params.id!);
  });
  router.get('/api/v1/agents/:id/site-servers', selfOr('agents.read', ['agent']), (ctx) => {
    agentInScope(ctx, registry, ctx.params.id!);
    const { service } = validate(selectionQuery, ctx.query, 'query');
    const { reason, servers } = registry.selection(ctx.params.id!, service);
    ctx.body = {
      items: servers.map((c) => ({
        id: c.record.id,
        name: c.record.name,
        url: (c.record.services[service] as { url?: string } | undefined)?.url,
        services: c.record.services,
        state: c.online ? 'online' : 'offline',
        reason,
      })),
    };
  });
}
