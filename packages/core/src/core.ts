import { TickleFlags, createHttpApp, publicRoute, hashSecret, hexEqual, lifecycle, listenHttp, mountRouter, parseCredential, silentLogger, type Database, type Listening, type Logger, type Principal } from '@outpost/common';
import { ADMIN_ID, loadOrCreateAdminToken } from './admin-token.js';
import { coreListenerTls, createCaModule } from './ca/module.js';
import type { CoreConfig } from './config.js';
import { DatagramServer } from './datagram-server.js';
import { CoreEvents } from './events.js';
import type { CoreContext, CoreModule } from './module.js';
import { Tickler } from './tickler.js';
import { createTasksModule } from './tasks/module.js';
import { createBootModule } from './boot/module.js';
import { createInstallModule } from './install/module.js';
import { Enrollment } from './enrollment.js';
import type { AgentRecord, ContactRecord, EnrollKind, SiteRecord, SiteServerRecord, TokenGrant, TokenRecord } from './model.js';
import { Registry, type Clock } from './registry.js';
import { adminRoutes } from './routes/admin.js';
import { enrollRoutes } from './routes/enroll.js';
import { principalRoutes } from './routes/principals.js';
import { CoreStore } from './store.js';
import { packagesModule } from './packages/module.js';
import { createConsoleModule } from './console/module.js';
import { createAdminsModule } from './admins/module.js';
import { createAuditModule } from './audit/module.js';
import { authenticate } from './admins/authenticate.js';
import type { AdminsService } from './admins/service.js';
import { routeTable, type RouteEntry } from './admins/route-table.js';
import { createCoreMetrics } from './metrics.js';
import { openCoreDatabase, storeErrors, type CoreDatabase } from './store-backend.js';
import { fetchCoreFiles, publishCoreFiles } from './shared-files.js';
import { Leases, leaseHolderId } from './leases.js';
import { createHierarchyModule } from './hierarchy/module.js';

export interface CoreDeps {
  logger?: Logger;
  clock?: Clock;
}

/**
 * The core's modules, in start order. Each later capability (packages, tasks, boot
 * decisions, certificates) is one module: its own sublevels, routes and timers.
 */
function coreModules(config: CoreConfig, admins: CoreModule): CoreModule[] {
  return [admins, createCaModule(config), packagesModule(config), createTasksModule(config), createBootModule(config), createConsoleModule(config), createInstallModule(config)];
}

export interface Core {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** HTTP base URL (after start). */
  readonly url: string;
  readonly port: number;
  readonly datagramPort: number;
  readonly adminToken: string;
  readonly adminTokenFile: string;
  /** The registry (sites, site servers, agents), for in-process composition and tests. */
  readonly registry: Registry;
  /** Mints an enrollment token without going through HTTP (the appliance uses it). */
  /** `grant`: required for a site server (what it may run, its sites, addresses and names), refused for an agent. */
  createEnrollmentToken(input: { for: EnrollKind; uses?: number; expiresInMs?: number; note?: string; grant?: TokenGrant; site?: string }): Promise<{ id: string; token: string }>;
  /** Counters for `/api/v1/stats` and metrics. */
  stats(): Record<string, unknown>;
  /** Every HTTP route with what it declares about its callers (after start), for the permission matrix. */
  routes(): RouteEntry[];
  /** Wakes site servers (coalesced signed tickles); see {@link CoreContext.tickle}. */
  tickle(siteServerIds: Iterable<string>, flags: number): void;
}

/** The core server. See the package README for config, API and errors. */
export function createCore(config: CoreConfig, deps: CoreDeps = {}): Core {
  const log = (deps.logger ?? silentLogger()).child({ module: 'core' });
  const clock: Clock = deps.clock ?? { now: () => Date.now() };
  let db: Database | undefined;
  let backend: CoreDatabase | undefined;
  let registry: Registry | undefined;
  let datagrams: DatagramServer | undefined;
  let http: Listening | undefined;
  let flushTimer: NodeJS.Timeout | undefined;
  let stateTimer: NodeJS.Timeout | undefined;
  let admin = { token: '', hash: '', file: '' };
  const counters = { httpHeartbeats: 0 };
  let enrollment: Enrollment | undefined;
  let tickler: Tickler | undefined;
  let leases: Leases | undefined;
  const adminsModule = createAdminsModule(config);
  const auditModule = createAuditModule(config, { clock, logger: log });
  const hierarchyModule = createHierarchyModule(config);
  // The hierarchy starts last: it hands replicated records to the other modules.
  const modules = [auditModule, ...coreModules(config, adminsModule), hierarchyModule];
  let routes: RouteEntry[] = [];
  const metrics = createCoreMetrics({
    dataDir: config.dataDir,
    registry: () => registry,
    datagrams: () => datagrams,
    tickler: () => tickler,
    httpHeartbeats: () => counters.httpHeartbeats,
    enrollments: () => enrollment?.enrolled ?? 0,
    modules,
    store: () => backend?.stats?.(),
    leases: () => leases,
  });

  const started = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`core not started: ${what} is not available`);
    return v;
  };

  const stats = (): Record<string, unknown> => {
    const r = started(registry, 'stats');
    const states = { online: 0, 'poll-only': 0, offline: 0 };
    for (const id of r.store.agents.keys()) states[r.agentState(id)]++;
    return {
      agents: { total: r.store.agents.size, ...states },
      siteServers: { total: r.store.siteServers.size, claimsRefused: r.claimsRefused },
      sites: r.store.sites.size,
      datagrams: datagrams?.stats,
      http: counters,
      enrollments: enrollment?.enrolled ?? 0,
      tickles: { sent: tickler?.sent ?? 0 },
      memory: { rss: process.memoryUsage().rss },
      ...Object.fromEntries(modules.filter((m) => m.stats).map((m) => [m.name, m.stats!()])),
    };
  };

  /** Starts the core on its opened store (under the store's start lock when several cores share it). */
  async function startWith(opened: CoreDatabase, db: Database): Promise<void> {
    const missingFiles = opened.kind === 'postgres' ? await fetchCoreFiles(db, config.dataDir) : [];
    const store = new CoreStore(db);
    await store.load();
    const holder = await leaseHolderId(config.dataDir);
    leases = new Leases({ holder, ttlMs: config.leases.ttl, backend: opened.leases?.(holder, config.leases.ttl), log });
    const ls = leases;
    await ls.start();
    const a = await loadOrCreateAdminToken(config.dataDir);
    admin = a;
    if (a.created) log.info({ file: a.file }, 'created the admin token');
    const events = new CoreEvents(log.child({ module: 'core-events' }));
    registry = new Registry(store, config, clock, log, events);
    const reg = registry;
    datagrams = new DatagramServer(reg, clock, log.child({ module: 'core-datagram' }), config.datagram.window);
    reg.datagramPort = await datagrams.start(config.datagram.host, config.datagram.port);
    const dg = datagrams;
    tickler = new Tickler((id, flags) => {
      const ss = reg.store.siteServers.get(id);
      const key = reg.keyFor(id);
      return ss?.tickleAddress !== undefined && key !== undefined && dg.sendTickle(key, ss.tickleAddress, flags);
    }, log.child({ module: 'core-tickle' }));
    const tk = tickler;
    events.on('site-servers.changed', ({ ids }) => tk.request(ids, TickleFlags.CONFIG));
    reg.mayRebalance = () => ls.held('registry.rebalance');
    reg.init();
    ls.onAcquired('registry.rebalance', () => reg.scheduleRebalance());
    // Other cores' changes (several cores on one PostgreSQL) refresh this core's memory.
    opened.onRemote('sites', (name, v) => reg.remoteSite(name, v as SiteRecord | undefined));
    opened.onRemote('site-servers', (id, v) => reg.remoteSiteServer(id, v as SiteServerRecord | undefined));
    opened.onRemote('agents', (id, v) => reg.remoteAgent(id, v as AgentRecord | undefined));
    opened.onRemote('contacts', (id, v) => reg.remoteContact(id, v as ContactRecord | undefined));
    opened.onRemote('tokens', (id, v) => (v ? store.tokens.set(id, v as TokenRecord) : store.tokens.delete(id)));
    enrollment = new Enrollment(reg, config, clock);
    const enr = enrollment;
    const ctx: CoreContext = {
      config,
      log,
      clock,
      db,
      store: { kind: opened.kind, onRemote: (sub, fn) => opened.onRemote(sub, fn), sync: () => opened.sync(), feed: opened.feed, dispatch: (sub, key, value) => opened.dispatch(sub, key, value) },
      registry: reg,
      events,
      leases: ls,
      url: () => config.http.publicUrl ?? started(http, 'url').url,
      tickle: (ids, flags) => tk.request(ids, flags),
      module: (name) => modules.find((m) => m.name === name),
      refuses: (id) => {
        for (const m of modules) {
          const refusal = m.refuses?.(id);
          if (refusal) return refusal;
        }
        return undefined;
      },
    };
    for (const m of modules) await m.start?.({ ...ctx, log: log.child({ module: `core-${m.name}` }) });
    const adminsSvc: AdminsService = started(adminsModule.service, 'administrators');

    const verify = (token: string): Principal | undefined => {
      const cred = parseCredential(token);
      if (!cred) return undefined;
      if (cred.id === ADMIN_ID) return hexEqual(admin.hash, hashSecret(cred.secret)) ? adminsSvc.bootstrapPrincipal() : undefined;
      if (cred.id.startsWith('at_')) return adminsSvc.verifyToken(token);
      const rec = reg.store.agents.get(cred.id) ?? reg.store.siteServers.get(cred.id);
      if (!rec || !hexEqual(rec.authHash, hashSecret(cred.secret))) return undefined;
      // A blocked principal (the CA module) loses its bearer credential too, not only its certificates.
      const refusal = ctx.refuses(cred.id);
      if (refusal) throw refusal;
      const kind = reg.store.agents.has(cred.id) ? 'agent' : 'site-server';
      reg.touch(cred.id, 'call');
      return { kind, id: cred.id };
    };

    // Console sign-in with a token: only administrator tokens (and the owner's file) qualify.
    adminsModule.verifyAdminToken = (token) => {
      const p = verify(token);
      return p?.kind === 'admin' ? p : undefined;
    };
    const { app, router } = createHttpApp({
      logger: log.child({ module: 'core-http' }),
      bodyLimit: config.http.bodyLimit,
      logRequests: config.http.logRequests,
      health: async () => ({ service: 'core', agents: reg.store.agents.size, store: { kind: opened.kind, reachable: await opened.reachable() }, leases: { held: ls.heldNames() } }),
      metrics,
    });
    // First: the audit log sees every route's outcome, authentication's refusals included.
    router.use(auditModule.middleware());
    router.use(storeErrors());
    enrollRoutes(router, enr);
    router.get('/metrics', publicRoute(), async (ctx) => {
      ctx.type = metrics.contentType;
      ctx.body = await metrics.text();
    });
    for (const m of modules) m.publicRoutes?.(router, ctx);
    router.use(authenticate(verify, adminsSvc));
    // Items a parent core owns are read-only here (but for what it lets this core change).
    router.use(hierarchyModule.guard());
    router.use(async (ctx, next) => {
      if (ctx.path.endsWith('/heartbeat')) counters.httpHeartbeats++;
      await next();
    });
    adminRoutes(router, { registry: reg, enrollment: enr, datagrams, stats });
    principalRoutes(router, reg);
    for (const m of modules) m.routes?.(router, ctx);
    routes = routeTable(router);
    mountRouter(app, router);
    http = await listenHttp(app, { host: config.http.host, port: config.http.port, tls: await coreListenerTls(config) });

    flushTimer = setInterval(() => {
      reg.flushContacts().catch((err: unknown) => log.error({ err }, 'writing last-contact times failed'));
    }, config.contactFlushInterval);
    flushTimer.unref();
    stateTimer = setInterval(() => reg.checkSiteServerStates(), Math.min(5_000, config.siteServers.heartbeatInterval));
    stateTimer.unref();
    log.info({ url: http.url, datagramPort: reg.datagramPort, dataDir: config.dataDir, store: opened.kind, storeAt: opened.where, agents: store.agents.size, leaseHolder: holder, leases: ls.heldNames() }, 'core started');
    if (missingFiles.length > 0) await publishCoreFiles(db, config.dataDir, missingFiles);
  }

  const service = lifecycle({
    async start() {
      const opened = await openCoreDatabase(config, log);
      backend = opened;
      db = opened.db;
      // Several cores on one store start one at a time and share the files that make them one core.
      const release = await opened.lock('core-start');
      try {
        await startWith(opened, opened.db);
      } finally {
        await release();
      }
    },
    async stop() {
      clearInterval(flushTimer);
      clearInterval(stateTimer);
      tickler?.stop();
      for (const m of modules) m.closing?.();
      await http?.close();
      for (const m of [...modules].reverse()) await m.stop?.().catch((err: unknown) => log.error({ err, module: m.name }, 'module stop failed'));
      await datagrams?.stop();
      // After the jobs stopped: another core takes their leases over at once.
      await leases?.stop();
      if (registry) {
        registry.stop();
        await registry.settled().catch(() => undefined);
        await registry.flushContacts().catch((err: unknown) => log.error({ err }, 'final flush of last-contact times failed'));
      }
      await db?.close();
      http = undefined;
      datagrams = undefined;
      db = undefined;
      log.info('core stopped');
    },
  });

  return {
    ...service,
    get url() {
      return config.http.publicUrl ?? started(http, 'url').url;
    },
    get port() {
      return started(http, 'port').port;
    },
    get datagramPort() {
      return started(registry, 'datagramPort').datagramPort;
    },
    get adminToken() {
      return admin.token;
    },
    get adminTokenFile() {
      return admin.file;
    },
    get registry() {
      return started(registry, 'registry');
    },
    async createEnrollmentToken(input) {
      const t = await started(enrollment, 'enrollment').createToken(input);
      return { id: t.id, token: t.token };
    },
    stats,
    routes: () => routes,
    tickle(ids, flags) {
      started(tickler, 'tickle').request(ids, flags);
    },
  };
}
