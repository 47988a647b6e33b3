import type { AppState } from '@outpost/common';
import type { Middleware } from 'koa';
import { Authority } from '../ca/authority.js';
import { caConfigSchema } from '../ca/config.js';
import type { CoreConfig } from '../config.js';
import type { CoreContext, CoreModule } from '../module.js';
import { hierarchyRoutes } from './routes.js';
import { HierarchyService } from './service.js';

export type HierarchyModule = CoreModule & { readonly service: HierarchyService | undefined; guard(): Middleware<AppState> };

/**
 * Parent and child cores: join tokens, mutual-TLS links, replication of the parent's items
 * down and of summaries and results up through both cores' journals, runs over the whole
 * hierarchy. See README.md in this folder.
 */
export function createHierarchyModule(coreConfig: CoreConfig): HierarchyModule {
  let service: HierarchyService | undefined;
  return {
    name: 'hierarchy',
    get service() {
      return service;
    },
    async start(ctx: CoreContext) {
      const { authority } = await Authority.open(coreConfig.dataDir, (coreConfig.ca ?? caConfigSchema.parse({})).caLifetime);
      service = new HierarchyService(ctx, coreConfig.hierarchy, authority);
      await service.start();
    },
    routes(router) {
      if (!service) throw new Error('hierarchy module not started');
      hierarchyRoutes(router, service);
    },
    guard() {
      let g: Middleware<AppState> | undefined;
      return (ctx, next) => (service ? (g ??= service.guard())(ctx, next) : next());
    },
    async stop() {
      await service?.stop();
    },
    stats() {
      const s = service?.status();
      return s ? { children: s.children.length, parent: s.parent ? s.parent.state : null } : {};
    },
  };
}
