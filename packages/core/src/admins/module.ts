import type { Principal } from '@outpost/common';
import type { CoreConfig } from '../config.js';
import { mirror, type CoreContext, type CoreModule } from '../module.js';
import { adminsConfigSchema } from './config.js';
import { OidcClient } from './oidc.js';
import { ssoRoutes } from './oidc-routes.js';
import { adminsRoutes, publicSessionRoutes } from './routes.js';
import { AdminsService } from './service.js';
import { AdminsStore } from './store.js';

/**
 * Administrators as a core module: accounts, roles, API tokens, console sessions. The
 * core's authentication asks it about administrator tokens and session cookies. See
 * README.md.
 */
export function createAdminsModule(coreConfig: CoreConfig): CoreModule & { readonly service: AdminsService | undefined; verifyAdminToken?: (token: string) => Principal | undefined } {
  const config = coreConfig.admins ?? adminsConfigSchema.parse({});
  let service: AdminsService | undefined;
  let sweep: NodeJS.Timeout | undefined;
  let oidc: OidcClient | undefined;
  const mod: CoreModule & { readonly service: AdminsService | undefined; verifyAdminToken?: (token: string) => Principal | undefined } = {
    name: 'admins',
    get service() {
      return service;
    },
    async start(ctx: CoreContext) {
      const store = new AdminsStore(ctx.db);
      await store.load();
      mirror(ctx.store, 'admins', store.admins);
      mirror(ctx.store, 'admin-tokens', store.tokens);
      mirror(ctx.store, 'admin-roles', store.roles);
      mirror(ctx.store, 'admin-sessions', store.sessions);
      const svc = new AdminsService(store, config, ctx.clock, ctx.log, (s) => ctx.registry.store.sites.has(s));
      service = svc;
      sweep = setInterval(() => {
        if (ctx.leases.held('admins.sessions')) svc.sweep().catch((err: unknown) => ctx.log.error({ err }, 'removing ended sessions failed'));
      }, 60_000);
      sweep.unref();
      if (config.oidc) {
        oidc = new OidcClient(config.oidc, ctx.log.child({ component: 'oidc' }), ctx.clock);
        await oidc.start();
      }
      ctx.log.info({ admins: store.admins.size, roles: store.roles.size, sessions: store.sessions.size }, 'administrators loaded');
    },
    publicRoutes(router, ctx) {
      if (!service) throw new Error('admins module: routes before start');
      publicSessionRoutes(
        router,
        service,
        () => (config.oidc ? { enabled: true, label: config.oidc.label } : { enabled: false }),
        (token) => mod.verifyAdminToken?.(token),
      );
      ssoRoutes(router, service, oidc, () => ctx.url());
    },
    routes(router) {
      if (!service) throw new Error('admins module: routes before start');
      adminsRoutes(router, service);
    },
    async stop() {
      clearInterval(sweep);
      oidc?.stop();
    },
    stats() {
      const sso = oidc ? { sso: { discovered: oidc.ready, pending: oidc.pending.size } } : {};
      return service ? { admins: service.store.admins.size, roles: service.store.roles.size, sessions: service.store.sessions.size, tokens: service.store.tokens.size, ...sso } : {};
    },
  };
  return mod;
}
