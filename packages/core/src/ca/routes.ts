import { anyPrincipal, CommonErrors, declare, GATEWAY_REPORT_MAX_BYTES, gatewayReportSchema, OutpostError, readJson, requireKind, validate, z, type AppState, type DeclaredMiddleware } from '@outpost/common';
import { can, forbidden } from '../admins/guard.js';
import type { Router } from '@koa/router';
import type { Registry, Clock } from '../registry.js';
import type { ConnectionTables } from './connections.js';
import { CaErrors } from './errors.js';
import { routingTable } from './routing-table.js';
import type { CertificateService } from './service.js';

const csrBody = z.object({ csr: z.string().min(1).max(16_384) }).strict();
const reasonBody = z.object({ reason: z.string().max(256).optional() }).strict();
const revokeBody = z.object({ serial: z.string().regex(/^[0-9a-fA-F:]{1,128}$/), reason: z.string().max(256).optional() }).strict();
const feedQuery = z.object({ since: z.coerce.number().int().min(0).default(0), limit: z.coerce.number().int().min(1).max(100_000).default(10_000) }).strict();
const probeQuery = z.object({ nonce: z.string().regex(/^[\w-]{8,128}$/) }).strict();
const idParam = z.string().regex(/^[\w.-]{1,128}$/);
const connectionsQuery = z.object({ principal: z.string().max(128).optional() }).strict();

const PEM_TYPE = 'application/x-pem-file';

/** Admin, or a site server GRANTED the gateway service (403 `CORE_CA_NOT_A_GATEWAY` otherwise). */
function gatewayOnly(registry: Registry, allowAdmin: boolean): DeclaredMiddleware {
  return declare(
    async (ctx, next) => {
      const p = ctx.state.principal;
      if (allowAdmin && p?.kind === 'admin') {
        if (!p.admin?.permissions.has('ca.read')) throw forbidden('ca.read', p);
        return next();
      }
      if (p?.kind !== 'site-server' || !registry.granted(p.id, 'gateway')) {
        throw new OutpostError(CaErrors.NOT_A_GATEWAY, 'only a site server granted the gateway service may call this', { status: 403 });
      }
      await next();
    },
    { kinds: ['site-server'], ...(allowAdmin ? { permission: 'ca.read' } : {}) },
  );
}

/** Routes of the certificate authority and of the gateway coordination (all behind bearer auth). */
export function caRoutes(
  router: Router<AppState>,
  deps: { ca: CertificateService; registry: Registry; clock: Clock; coreUrl: () => string; tables: ConnectionTables },
): void {
  const { ca, registry, tables } = deps;
  const gateway = gatewayOnly(registry, true);
  const holder = requireKind('agent', 'site-server');

  router.get('/api/v1/ca/certificate', anyPrincipal(), (ctx) => {
    ctx.type = PEM_TYPE;
    ctx.body = ca.authority.certPem;
  });
  router.get('/api/v1/ca/crl', anyPrincipal(), async (ctx) => {
    const der = await ca.crlDer();
    if (ctx.query.format === 'pem') {
      ctx.type = 'application/x-pem-file';
      ctx.body = `-----BEGIN X509 CRL-----\n${(der.toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END X509 CRL-----\n`;
    } else {
      ctx.type = 'application/pkix-crl';
      ctx.body = der;
    }
  });
  router.get('/api/v1/ca/revocations', gateway, (ctx) => {
    const q = validate(feedQuery, ctx.query, 'query');
    ctx.body = { coreId: ca.authority.coreId, ...ca.events(q.since, q.limit) };
  });
  router.get('/api/v1/ca/probe', anyPrincipal(), (ctx) => {
    const { nonce } = validate(probeQuery, ctx.query, 'query');
    ctx.body = { coreId: ca.authority.coreId, nonce, signature: ca.signProbe(nonce) };
  });
  router.post('/api/v1/ca/renew', holder, async (ctx) => {
    const { csr } = await readJson(ctx, csrBody);
    const p = ctx.state.principal!;
    ctx.status = 201;
    ctx.body = await ca.renew(p.id, p.kind === 'agent' ? 'agent' : 'site-server', csr);
  });
  router.get('/api/v1/ca/certificates', can('ca.read'), (ctx) => {
    const principal = typeof ctx.query.principal === 'string' ? ctx.query.principal : undefined;
    const items = [...ca.store.certs.values()]
      .filter((c) => !principal || c.principal === principal)
      .sort((a, b) => a.issuedAt - b.issuedAt)
      .slice(0, 10_000)
      .map((c) => ({
        serial: c.serial,
        principal: c.principal,
        kind: c.kind,
        issuedAt: new Date(c.issuedAt).toISOString(),
        notAfter: new Date(c.notAfter).toISOString(),
        state: c.revokedAt !== undefined ? 'revoked' : c.held ? 'held' : 'valid',
        ...(c.revokedAt !== undefined ? { revokedAt: new Date(c.revokedAt).toISOString(), reason: c.reason } : {}),
      }));
    ctx.body = { items };
  });
  router.post('/api/v1/ca/revoke', can('ca.write'), async (ctx) => {
    const body = await readJson(ctx, revokeBody);
    const rec = await ca.revokeSerial(body.serial, body.reason ?? 'revoked by admin');
    ctx.body = { serial: rec.serial, principal: rec.principal, revokedAt: new Date(rec.revokedAt!).toISOString() };
  });
  router.post('/api/v1/ca/principals/:id/block', can('ca.write'), async (ctx) => {
    const id = validate(idParam, ctx.params.id, 'id');
    const body = await readJson(ctx, reasonBody);
    if (!registry.store.agents.has(id) && !registry.store.siteServers.has(id) && !ca.store.byPrincipal.has(id)) {
      throw new OutpostError(CommonErrors.NOT_FOUND, `no agent, site server or certificate holder with id '${id}'`, { status: 404 });
    }
    ctx.body = { id, blocked: true, revoked: await ca.block(id, body.reason ?? 'blocked by admin') };
  });
  router.delete('/api/v1/ca/principals/:id/block', can('ca.write'), async (ctx) => {
    const id = validate(idParam, ctx.params.id, 'id');
    await ca.unblock(id);
    ctx.status = 204;
  });
  router.get('/api/v1/ca/blocked', can('ca.read'), (ctx) => {
    ctx.body = { items: [...ca.store.blocked.values()].map((b) => ({ id: b.id, at: new Date(b.at).toISOString(), reason: b.reason })) };
  });
  router.get('/api/v1/ca/quarantine', can('ca.read'), (ctx) => {
    ctx.body = { items: ca.quarantine() };
  });
  router.post('/api/v1/ca/quarantine/:id/approve', can('ca.write'), async (ctx) => {
    const id = validate(idParam, ctx.params.id, 'id');
    ctx.body = { id, approved: await ca.approve(id) };
  });

  // ---------------------------------------------------------------- gateways
  router.get('/api/v1/gateway/routes', gateway, (ctx) => {
    const table = routingTable(ca.authority.coreId, deps.coreUrl(), registry);
    ctx.set('etag', `"${table.serial}"`);
    if (ctx.get('if-none-match') === `"${table.serial}"`) {
      ctx.status = 304;
      return;
    }
    ctx.body = table;
  });
  router.post('/api/v1/gateway/connections', gatewayOnly(registry, false), async (ctx) => {
    const body = await readJson(ctx, gatewayReportSchema, GATEWAY_REPORT_MAX_BYTES);
    tables.put({ gateway: ctx.state.principal!.id, name: body.name, stats: body.stats, connections: body.connections, receivedAt: deps.clock.now() });
    ctx.status = 204;
  });
  router.get('/api/v1/gateway/connections', can('ca.read'), (ctx) => {
    const q = validate(connectionsQuery, ctx.query, 'query');
    ctx.body = tables.view(deps.clock.now(), q);
  });
}
