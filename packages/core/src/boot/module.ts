import type { CoreConfig } from '../config.js';
import type { CoreContext, CoreModule } from '../module.js';
import { bootConfigSchema } from './config.js';
import { tasksJobStarter } from './jobs.js';
import { bootRoutes } from './routes.js';
import { BootService } from './service.js';
import { BootStore } from './store.js';

/**
 * Boot decisions as a core module: computers (discovered, predefined, managed), boot
 * images (packages), one-shot "reboot to automation", per-boot timelines. See README.md.
 */
export function createBootModule(coreConfig: CoreConfig): CoreModule & { readonly service: BootService | undefined } {
  const config = coreConfig.boot ?? bootConfigSchema.parse({});
  let service: BootService | undefined;
  return {
    name: 'boot',
    get service() {
      return service;
    },
    async start(ctx: CoreContext) {
      const store = new BootStore(ctx.db);
      await store.load();
      const svc = new BootService(store, ctx, config, ctx.log);
      for (const sub of ['boot-computers', 'boot-images', 'boot-boots'] as const) ctx.store.onRemote(sub, (key, value) => svc.remote(sub, key, value));
      service = svc;
      // Modules start in order and tasks comes before boot: its runs exist by now.
      svc.jobs = tasksJobStarter(ctx);
      ctx.events.on('agent.enrolled', ({ agent: a }) => {
        svc.agentEnrolled(a).catch((err: unknown) => ctx.log.error({ err, agent: a.id }, 'boot: agent enrollment hook failed'));
      });
      ctx.log.info({ computers: store.computers.size, images: store.images.size, boots: store.boots.size }, 'boot decisions loaded');
    },
    routes(router, ctx) {
      if (!service) throw new Error('boot module: routes before start');
      bootRoutes(router, service, ctx.registry);
    },
    stats() {
      return service ? { computers: service.store.computers.size, images: service.store.images.size, boots: service.store.boots.size, ...service.counters } : {};
    },
  };
}
