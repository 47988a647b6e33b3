import type { AppState, Logger } from '@outpost/common';
import type { Middleware } from 'koa';
import type { CoreConfig } from '../config.js';
import type { Clock } from '../registry.js';
import type { CoreContext, CoreModule } from '../module.js';
import { auditConfigSchema } from './config.js';
import { AuditExporter } from './export.js';
import { AuditStreams } from './live.js';
import { RefusalCoalescer } from './coalesce.js';
import { auditMiddleware } from './middleware.js';
import { auditRoutes } from './routes.js';
import { AuditStore } from './store.js';

export type AuditModule = CoreModule & {
  /** The middleware the core mounts before every route (see middleware.ts). */
  middleware(): Middleware<AppState>;
  readonly store: AuditStore | undefined;
};

/**
 * The audit log as a core module: a hash-chained, append-only record of every change and
 * every refused request, written before the answer goes out; query, verify and a live
 * stream; retention; export to a file or syslog. See README.md.
 */
export function createAuditModule(coreConfig: CoreConfig, deps: { clock: Clock; logger: Logger }): AuditModule {
  const config = coreConfig.audit ?? auditConfigSchema.parse({});
  const counters = { written: 0, appendFailures: 0, pruned: 0, coalesced: 0 };
  const coalescer = new RefusalCoalescer(config.coalesceRefusals, () => deps.clock.now());
  let flushTimer: NodeJS.Timeout | undefined;
  let flushAll: (() => Promise<void>) | undefined;
  const streams = new AuditStreams(config.stream.keepAlive);
  let store: AuditStore | undefined;
  let exporter: AuditExporter | undefined;
  let timer: NodeJS.Timeout | undefined;
  const log = deps.logger.child({ module: 'core-audit' });

  const prune = async (s: AuditStore): Promise<void> => {
    try {
      const n = await s.prune(deps.clock.now() - config.retention.maxAge, config.retention.maxEntries);
      counters.pruned += n;
      if (n > 0) log.info({ pruned: n, anchor: s.anchor.seq }, 'audit retention pruned entries');
    } catch (err) {
      log.error({ err }, 'audit retention failed');
    }
  };

  return {
    name: 'audit',
    get store() {
      return store;
    },
    middleware() {
      return auditMiddleware({ store: () => store, maxFieldBytes: config.maxFieldBytes, clock: deps.clock, log, counters, coalescer });
    },
    async start(ctx: CoreContext) {
      const s = new AuditStore(ctx.db, ctx.events);
      await s.load();
      const ex = new AuditExporter(config.export, ctx.log);
      exporter = ex;
      // This core exports what it appended (another core exports its own); every live stream gets both.
      ctx.events.on('audit.appended', ({ entry, local }) => {
        if (local) ex.export(entry);
        streams.publish(entry);
      });
      for (const sub of ['audit', 'audit-meta'] as const) ctx.store.onRemote(sub, (key, value) => s.remote(sub, key, value));
      if (ctx.leases.held('audit.retention')) await prune(s);
      store = s;
      timer = setInterval(() => {
        if (ctx.leases.held('audit.retention')) void prune(s);
      }, config.retention.interval);
      timer.unref();
      // Windows of repeated refusals end on time even when no further request comes.
      const flush = async (all: boolean): Promise<void> => {
        for (const summary of coalescer.flush(all)) {
          await s.append(summary).then(
            () => void counters.written++,
            (err: unknown) => log.error({ err }, 'writing a repeated-refusals entry failed'),
          );
        }
      };
      if (config.coalesceRefusals > 0) {
        flushTimer = setInterval(() => void flush(false), Math.max(1_000, Math.floor(config.coalesceRefusals / 4)));
        flushTimer.unref();
      }
      flushAll = () => flush(true);
      ctx.log.info({ head: s.head.seq, anchor: s.anchor.seq, export: { file: config.export.file, syslog: config.export.syslog?.host } }, 'audit log open');
    },
    routes(router, ctx) {
      if (!store) throw new Error('audit module: routes before start');
      auditRoutes(router, { store, streams, maxClients: config.stream.maxClients, now: () => ctx.clock.now() });
    },
    closing() {
      streams.close();
    },
    async stop() {
      clearInterval(timer);
      clearInterval(flushTimer);
      await flushAll?.();
      streams.close();
      await store?.settled();
      await exporter?.close();
    },
    stats() {
      return {
        entries: store?.size ?? 0,
        seq: store?.head.seq ?? 0,
        written: counters.written,
        appendFailures: counters.appendFailures,
        coalesced: counters.coalesced,
        pruned: counters.pruned,
        exported: exporter?.stats.exported ?? { file: 0, syslog: 0 },
        exportFailures: exporter?.stats.failures ?? { file: 0, syslog: 0 },
        streams: streams.clients,
      };
    },
  };
}
