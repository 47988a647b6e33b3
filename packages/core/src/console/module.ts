import type { CoreConfig } from '../config.js';
import type { CoreContext, CoreModule } from '../module.js';
import { loadAssets, locateAssets, type ConsoleAssets } from './assets.js';
import { consoleConfigSchema } from './config.js';
import { LiveFeed } from './live.js';
import { consoleApiRoutes, consoleStaticRoutes } from './routes.js';
import { SnapshotBuilder, type LiveSnapshot } from './snapshot.js';

/**
 * The web console as a core module: the built single-page app at `/console/` (no
 * credential for the files; every bit of data comes from the API with the admin token),
 * and a live feed of aggregated counts (`GET /api/v1/console/events`, server-sent
 * events, coalesced). See `README.md` in this folder.
 */
export function createConsoleModule(coreConfig: CoreConfig): CoreModule {
  const config = coreConfig.console ?? consoleConfigSchema.parse({});
  let assets: ConsoleAssets | undefined;
  let builder: SnapshotBuilder | undefined;
  let feed: LiveFeed<LiveSnapshot> | undefined;
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('console module not started');
    return v;
  };

  return {
    name: 'console',
    async start(ctx: CoreContext) {
      if (!config.enabled) return;
      const dir = locateAssets(config.assetsDir);
      assets = dir === undefined ? undefined : await loadAssets(dir);
      if (assets) ctx.log.info({ dir, files: assets.files.size }, 'console ready at /console/');
      else ctx.log.warn({ dir }, 'the console is not built (npm run build -w @outpost/console); /console/ explains');
      const b = new SnapshotBuilder(ctx);
      builder = b;
      feed = new LiveFeed(() => b.build(), { intervalMs: config.updateInterval, keepAliveMs: config.keepAlive, log: ctx.log });
    },
    publicRoutes(router) {
      if (config.enabled) consoleStaticRoutes(router, () => assets);
    },
    routes(router) {
      if (!config.enabled) return;
      const b = need(builder);
      consoleApiRoutes(router, need(feed), () => b.build(), config.maxClients, (snap, scope) => b.scoped(snap, scope));
    },
    closing() {
      feed?.close();
    },
    async stop() {
      feed?.close();
    },
    stats() {
      return { enabled: config.enabled, built: assets !== undefined, clients: feed?.clients ?? 0, ...feed?.stats };
    },
  };
}
