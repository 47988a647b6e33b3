import { lifecycle, listenHttp, mountRouter, openDatabase, silentLogger, TickleFlags, createHttpApp, urlHost, type Database, type Listening, type Logger, type Service, type BatchOp } from '@outpost/common';
import { createSiteLink } from '@outpost/common/site-link';
import { AgentBook } from './agents.js';
import { AgentTickler } from './agent-tickler.js';
import type { TaskServerConfig } from './config.js';
import { CoreSync } from './core-sync.js';
import { TaskServerErrors } from './errors.js';
import { Outbox } from './outbox.js';
import { createTaskServerMetrics } from './metrics.js';
import type { StatusEvent, Via } from './protocol.js';
import { createAgentService } from './agent-service.js';
import { installFastAgentRoutes } from './fast-routes.js';
import { WorkerPool } from './cluster/primary.js';
import { TsStore } from './store.js';
import { WorkBook } from './work.js';
import { WsHub } from './ws-hub.js';

export interface TaskServerDeps {
  logger?: Logger;
  /** Randomness for the tickle drop rate (tests). @default Math.random */
  random?: () => number;
  /** Mints a site-server enrollment token when there is no identity and none configured (an in-process core). */
  mintEnrollToken?: () => Promise<string>;
}

export interface TaskServer extends Service {
  /** Its id at the core (after start). */
  readonly id: string;
  /** The URL agents use. */
  readonly url: string;
  readonly port: number;
  /** `host:port` where the core's tickles arrive. */
  readonly tickleAddress: string;
  stats(): Record<string, unknown>;
  /** Fetches agents and all pending work from the core now. */
  syncNow(): Promise<void>;
}

/** The task server. See the package README for config, protocol and errors. */
export function createTaskServer(config: TaskServerConfig, deps: TaskServerDeps = {}): TaskServer {
  const log = (deps.logger ?? silentLogger()).child({ module: 'task-server' });
  let db: Database | undefined;
  let store: TsStore | undefined;
  let http: Listening | undefined;
  let tickler: AgentTickler | undefined;
  let ws: WsHub | undefined;
  let pool: WorkerPool | undefined;
  let port = 0;
  let outbox: Outbox | undefined;
  let sync: CoreSync | undefined;
  let work: WorkBook | undefined;
  let agents: AgentBook | undefined;
  let url = '';
  const timers: NodeJS.Timeout[] = [];
  let marks: { events: StatusEvent[]; ops: BatchOp[] } = { events: [], ops: [] };
  let marking: Promise<void> = Promise.resolve();

  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('task server not started');
    return v;
  };

  /**
   * Tickles are marked in memory as they are sent (a fetch racing ahead of the write
   * still sees them); the resulting events are written in small batches.
   */
  const flushMarks = (): void => {
    if (marks.events.length === 0 && marks.ops.length === 0) return;
    const batch = marks;
    marks = { events: [], ops: [] };
    const o = need(outbox);
    marking = marking.then(() => o.add(batch.events, batch.ops).then(() => undefined)).catch((err: unknown) => log.error({ err }, 'recording tickles failed'));
  };
  const markTickled = (sent: Array<[string, Via]>): void => {
    const now = Date.now();
    for (const [a, via] of sent) {
      const r = need(work).mark(a, 'tickled', via, now);
      marks.events.push(...r.events);
      marks.ops.push(...r.ops);
    }
    if (marks.ops.length >= 2_000) flushMarks();
  };

  // Enrollment, identity (level meta "identity" before, moved once to identity.json),
  // heartbeat and the core's tickles: CONFIG re-reads the agents (then all work), WORK the work.
  const link = createSiteLink({
    coreUrl: config.coreUrl,
    dataDir: config.dataDir,
    name: config.name,
    log,
    timeoutMs: config.core.timeout,
    token: { enrollToken: config.enrollToken, enrollTokenFile: config.enrollTokenFile, mint: deps.mintEnrollToken },
    services: () => ({ task: { url } }),
    health: () => ({
      status: 'ok',
      load: { agents: agents?.size ?? 0, runs: work?.runs.size ?? 0, websockets: ws?.stats.connected ?? 0, eventsWaiting: outbox?.stats.pending ?? 0 },
    }),
    address: () => config.address,
    tickles: {
      host: config.coreTickle.host,
      port: config.coreTickle.port,
      advertise: config.coreTickle.advertise,
      on: {
        CONFIG: () => void sync?.request('agents'),
        WORK: (flags) => {
          if (!(flags & TickleFlags.CONFIG)) void sync?.request('work');
        },
      },
    },
    codes: { NO_ENROLL_TOKEN: TaskServerErrors.NO_ENROLL_TOKEN, ENROLL_REJECTED: TaskServerErrors.ENROLL_REJECTED, CORE_UNREACHABLE: TaskServerErrors.CORE_UNREACHABLE, CORE_ERROR: TaskServerErrors.CORE_ERROR },
    identity: {
      what: 'task-server identity',
      legacy: {
        where: `level meta "identity" in ${config.dataDir}`,
        read: () => need(store).meta.get('identity'),
        forget: () => need(store).meta.del('identity'),
      },
    },
  });
  const core = link.client;
  const id = (): string => link.id ?? '';

  const metrics = createTaskServerMetrics({ dataDir: config.dataDir, agents: () => agents?.size ?? 0, tickler: () => tickler, coreTickles: () => link.stats().tickles, outbox: () => outbox, ws: () => ws, sync: () => sync });
  const stats = (): Record<string, unknown> => ({
    id: id(),
    agents: agents?.size ?? 0,
    runs: work?.runs.size ?? 0,
    work: work?.entries ?? 0,
    outbox: outbox?.stats,
    tickles: tickler ? { ...tickler.stats, backlog: tickler.backlog } : undefined,
    ws: ws?.stats,
    workers: pool?.stats,
    coreTickles: link.stats().tickles,
    link: link.stats(),
    sync: sync?.stats,
    rss: process.memoryUsage().rss,
    cpu: process.cpuUsage(),
  });

  const service = lifecycle({
    async start() {
      db = await openDatabase(config.dataDir);
      store = new TsStore(db);
      agents = new AgentBook(store);
      work = new WorkBook(store);
      outbox = new Outbox(store, core, config.forward, log.child({ module: 'task-outbox' }));
      await Promise.all([agents.load(), work.load(), outbox.load()]);
      const [ag, wk, ob] = [agents, work, outbox];
      tickler = new AgentTickler(
        // Agents reach us on loopback only when HTTP listens there: then the tickle socket does too.
        { senderId: id, ...(config.http.host.startsWith('127.') ? { bindAddress: config.http.host } : {}), rate: config.agents.tickleRate, dropRate: config.agents.tickleDropRate, ...(deps.random ? { random: deps.random } : {}) },
        (a) => ({ key: ag.key(a), addr: ag.addr(a), push: () => (pool ? pool.push(a) : (ws?.push(a, { t: 'work' }) ?? false)) }),
        markTickled,
        log.child({ module: 'task-tickler' }),
      );
      await tickler.open();
      const tk = tickler;
      sync = new CoreSync(core, store, ag, wk, config.core.pageSize, log.child({ module: 'task-sync' }), (wake) => tk.wake(wake), (gone) => {
        // Agents the core stopped listing here (blocked, deleted, moved): no key, no socket.
        const closed = pool ? pool.drop(gone) : (ws?.drop(gone) ?? 0);
        log.info({ agents: gone.length, sockets: closed }, 'agents no longer served here');
      });
      await sync.load();
      const sy = sync;

      const svc = createAgentService({ agents: ag, work: wk, outbox: ob, sync: sy, pollIntervalMs: config.agents.pollInterval, now: () => Date.now() }, log.child({ module: 'task-agents' }));
      if (config.workers > 0) {
        // HTTP and WebSockets in worker processes (one shared listener); everything else here.
        pool = new WorkerPool(
          { workers: config.workers, host: config.http.host, port: config.http.port, wsPingInterval: config.agents.wsPingInterval, logLevel: log.level },
          svc,
          stats,
          log.child({ module: 'task-workers' }),
          () => metrics.json(),
        );
        await pool.start();
        port = pool.port;
        url = config.http.publicUrl ?? `http://${urlHost(config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host)}:${port}`;
      } else {
        const { app, router } = createHttpApp({ logger: log.child({ module: 'task-http' }), health: () => ({ service: 'task-server', ...stats() }), metrics });
        router.get('/metrics', async (ctx) => {
          ctx.type = metrics.contentType;
          ctx.body = await metrics.text();
        });
        mountRouter(app, router);
        http = await listenHttp(app, { host: config.http.host, port: config.http.port });
        installFastAgentRoutes(http.server, svc, log.child({ module: 'task-http' }));
        ws = new WsHub((h) => svc.authenticate(h), (a) => svc.hello(a), log.child({ module: 'task-ws' }), config.agents.wsPingInterval);
        ws.attach(http.server);
        port = http.port;
        url = config.http.publicUrl ?? http.url;
      }

      await link.start();
      ob.start();
      await sy.request('agents');

      const every = (ms: number, fn: () => void): void => {
        const t = setInterval(fn, ms);
        t.unref();
        timers.push(t);
      };
      // The fallback when tickles are lost: agents too (a blocked agent's key goes), then all work.
      every(config.core.pollInterval, () => void sy.request('agents'));
      every(100, flushMarks);
      every(Math.max(250, Math.min(1_000, config.agents.retickleAfter)), () => {
        const now = Date.now();
        // Not while first tickles still wait to go out; then only tickles that look lost.
        if (tk.backlog > 0) return;
        const stale = wk.unfetched(now, config.agents.retickleAfter, config.agents.retickles);
        if (stale.length) tk.wake(stale);
      });
      every(30_000, () => void wk.prune(Date.now()).catch((err: unknown) => log.warn({ err }, 'pruning expired work failed')));
      log.info({ id: id(), url, tickleAddress: link.tickleAddress, agents: ag.size, work: wk.entries }, 'task server started');
    },
    async stop() {
      for (const t of timers.splice(0)) clearInterval(t);
      flushMarks();
      await marking;
      await pool?.stop();
      await ws?.close();
      await http?.close();
      await tickler?.close();
      await link.stop();
      await sync?.settled();
      await outbox?.stop();
      await db?.close();
      http = undefined;
      pool = undefined;
      db = undefined;
      log.info('task server stopped');
    },
  });

  return {
    ...service,
    get id() {
      return id();
    },
    get url() {
      return url;
    },
    get port() {
      return port;
    },
    get tickleAddress() {
      return link.tickleAddress;
    },
    stats,
    syncNow: () => need(sync).request('agents'),
  };
}
