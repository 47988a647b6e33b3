import { createHttpApp, createLogger, createServiceMetrics, listenHttp, mountRouter, type Listening, type Logger, type LoggerOptions } from '@outpost/common';
import type { StatusEvent, Via, WorkResponse, WsMessage } from '../protocol.js';
import { installFastAgentRoutes } from '../fast-routes.js';
import type { AgentService } from '../agent-service.js';
import { WsHub } from '../ws-hub.js';
import { fromWire, isToWorker, WORKER_ENV, type RpcCall, type RpcMethod, type ToPrimary, type WorkerConfig } from './ipc.js';

/** How long a worker trusts a credential the primary accepted (an agent moved away is refused after this). */
const AUTH_CACHE_MS = 30_000;
const AUTH_CACHE_MAX = 100_000;

/**
 * One HTTP/WebSocket worker of a task server running with `workers` > 0 (a node:cluster
 * worker: every worker listens on the same address, the primary hands out connections).
 * It parses requests and holds agents' WebSockets; every decision (credentials, work,
 * status events, the level database, the core) stays with the primary, asked over IPC
 * in one message per turn of the event loop. A credential the primary accepted is
 * trusted for 30 s, so an agent's fetch and its status post are one call each.
 */
export class TaskServerWorker {
  #seq = 0;
  readonly #waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #calls: RpcCall[] = [];
  #flushScheduled = false;
  #ws: { open: Set<string>; closed: Set<string> } = { open: new Set(), closed: new Set() };
  #wsScheduled = false;
  #http: Listening | undefined;
  #hub: WsHub | undefined;
  /** Credentials the primary accepted lately: an agent's fetch and its status post cost one call each, not two. */
  readonly #authorized = new Map<string, { id: string; until: number }>();
  /** This worker's part of the task server's metrics (merged by the primary: metrics-cluster.ts). */
  readonly #metrics = createServiceMetrics({ service: 'task_server' });

  constructor(
    private readonly config: WorkerConfig,
    private readonly send: (m: ToPrimary) => void,
    private readonly log: Logger,
  ) {}

  #call(method: RpcMethod, args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const seq = ++this.#seq;
      this.#waiting.set(seq, { resolve, reject });
      this.#calls.push([seq, method, args]);
      if (this.#flushScheduled) return;
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        const calls = this.#calls;
        this.#calls = [];
        this.send({ t: 'rpc', calls });
      });
    });
  }

  #wsChanged(agent: string, open: boolean): void {
    (open ? this.#ws.closed : this.#ws.open).delete(agent);
    (open ? this.#ws.open : this.#ws.closed).add(agent);
    if (this.#wsScheduled) return;
    this.#wsScheduled = true;
    setImmediate(() => {
      this.#wsScheduled = false;
      const { open: o, closed: c } = this.#ws;
      this.#ws = { open: new Set(), closed: new Set() };
      this.send({ t: 'ws', open: [...o], closed: [...c] });
    });
  }

  /** Handles a message from the primary. */
  async onMessage(m: unknown): Promise<void> {
    if (!isToWorker(m)) return;
    if (m.t === 'replies') {
      for (const r of m.replies) {
        const w = this.#waiting.get(r[0]);
        if (!w) continue;
        this.#waiting.delete(r[0]);
        if (r[1]) w.resolve(r[2]);
        else w.reject(fromWire(r[2]));
      }
    } else if (m.t === 'push') {
      for (const a of m.agents) this.#hub?.push(a, { t: 'work' });
    } else if (m.t === 'drop') {
      const gone = new Set(m.agents);
      for (const [auth, hit] of this.#authorized) if (gone.has(hit.id)) this.#authorized.delete(auth);
      this.#hub?.drop(gone);
    } else if (m.t === 'stop') {
      await this.stop();
    } else if (m.t === 'metrics') {
      this.send({ t: 'metrics', seq: m.seq, metrics: await this.#metrics.json() });
    }
  }

  async start(): Promise<number> {
    const svc: AgentService = {
      authenticate: async (authorization) => {
        const now = Date.now();
        const hit = authorization === undefined ? undefined : this.#authorized.get(authorization);
        if (hit && hit.until > now) return hit.id;
        const id = (await this.#call('authenticate', [authorization ?? null])) as string;
        if (authorization !== undefined) {
          if (this.#authorized.size >= AUTH_CACHE_MAX) this.#authorized.clear();
          this.#authorized.set(authorization, { id, until: now + AUTH_CACHE_MS });
        }
        return id;
      },
      work: async (agent: string, via: Via, addr: string | undefined) => (await this.#call('work', [agent, via, addr ?? null])) as WorkResponse,
      events: async (agent: string, events: StatusEvent[]) => (await this.#call('events', [agent, events])) as { accepted: number; stored: number },
      hello: async (agent: string) => (await this.#call('hello', [agent])) as WsMessage[],
    };
    const { app, router } = createHttpApp({
      logger: this.log.child({ module: 'task-http' }),
      health: async () => ({ service: 'task-server', worker: this.config.index, ws: this.#hub?.stats, ...((await this.#call('health', [])) as Record<string, unknown>) }),
      metrics: this.#metrics,
    });
    // Every process's metrics, merged by the primary.
    router.get('/metrics', async (ctx) => {
      ctx.type = this.#metrics.contentType;
      ctx.body = (await this.#call('metrics', [])) as string;
    });
    mountRouter(app, router);
    this.#http = await listenHttp(app, { host: this.config.host, port: this.config.port });
    installFastAgentRoutes(this.#http.server, svc, this.log.child({ module: 'task-http' }));
    this.#hub = new WsHub(
      (h) => svc.authenticate(h),
      (a) => svc.hello(a),
      this.log.child({ module: 'task-ws' }),
      this.config.wsPingInterval,
      (a, open) => this.#wsChanged(a, open),
    );
    this.#hub.attach(this.#http.server);
    return this.#http.port;
  }

  async stop(): Promise<void> {
    await this.#hub?.close();
    await this.#http?.close();
    for (const w of this.#waiting.values()) w.reject(new Error('task server worker stopping'));
    this.#waiting.clear();
  }
}

/** The worker process's main: config from the environment, messages from the primary. */
export async function runTaskServerWorker(): Promise<void> {
  const config = JSON.parse(process.env[WORKER_ENV] ?? '{}') as WorkerConfig;
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  const level = (levels.includes(config.logLevel) ? config.logLevel : 'info') as LoggerOptions['level'];
  const log = createLogger({ level, pretty: false }).child({ module: 'task-worker', worker: config.index });
  const send = (m: ToPrimary): void => {
    if (process.connected) process.send?.(m);
  };
  const w = new TaskServerWorker(config, send, log);
  process.on('message', (m: unknown) => {
    void w.onMessage(m).then(() => {
      if (isToWorker(m) && m.t === 'stop') process.exit(0);
    });
  });
  // The primary went away: nothing left to serve for.
  process.on('disconnect', () => void w.stop().finally(() => process.exit(0)));
  const port = await w.start();
  send({ t: 'listening', port });
}
