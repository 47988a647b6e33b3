import { join } from 'node:path';
import type { Router } from '@koa/router';
import type { AppState } from '@outpost/common';
import type { CoreConfig } from '../config.js';
import type { CoreContext, CoreModule } from '../module.js';
import { ContentStore } from './content-store.js';
import { DropFolder } from './drop-folder.js';
import { packageRoutes } from './routes.js';
import { PackageService } from './service.js';
import { PackageStore } from './store.js';

/** The package service of this core's packages module, for other modules (hierarchy, install); undefined when it does not run. */
export function packageService(ctx: Pick<CoreContext, 'module'>): PackageService | undefined {
  return (ctx.module('packages') as { service?: PackageService } | undefined)?.service;
}

/** The packages capability as a core module: content store, staging, codebases. */
export function packagesModule(config: CoreConfig): CoreModule & { readonly service: PackageService | undefined } {
  const cfg = config.packages;
  let service: PackageService | undefined;
  let drop: DropFolder | undefined;
  return {
    name: 'packages',
    get service() {
      return service;
    },
    async start(ctx: CoreContext) {
      const content = new ContentStore(cfg.contentDir ?? join(config.dataDir, 'content'), ctx.log);
      await content.open();
      const store = new PackageStore(ctx.db);
      await store.load();
      for (const sub of ['packages', 'package-status', 'package-downloads'] as const) ctx.store.onRemote(sub, (key, value) => store.remote(sub, key, value));
      const svc = new PackageService(store, content, ctx, cfg, ctx.log);
      service = svc;
      if (cfg.dropFolder) {
        drop = new DropFolder({
          dir: cfg.dropFolder,
          settleMs: cfg.dropSettle,
          content,
          log: ctx.log.child({ dropFolder: cfg.dropFolder }),
          create: async (name, version, files) => {
            await svc.create({ name, version, files }, 'drop-folder');
          },
        });
        await drop.start();
      }
      ctx.log.info({ packages: store.packages.size, contentFiles: content.files, contentBytes: content.bytes }, 'packages loaded');
    },
    routes(router: Router<AppState>, ctx: CoreContext) {
      const svc = service;
      if (!svc) throw new Error('packages module: routes before start');
      // A boot image's package is read by netboot services whether or not it is enabled for package servers.
      const bootsFrom = (pkg: { id: string; name: string; version: string }): boolean => {
        const boot = ctx.module('boot') as { service?: { bootsFrom(p: typeof pkg): boolean } } | undefined;
        return boot?.service?.bootsFrom(pkg) ?? false;
      };
      packageRoutes(router, svc, cfg.serveAgents, { registry: ctx.registry, bootsFrom });
    },
    async stop() {
      await drop?.stop();
      drop = undefined;
    },
    stats() {
      return service
        ? { packages: service.store.packages.size, contentFiles: service.content.files, contentBytes: service.content.bytes, ...service.counters }
        : {};
    },
  };
}
