import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { Logger, MetricsJson } from '@outpost/common';
import type { StatusEvent, Via } from '../protocol.js';
import type { AgentService } from '../agent-service.js';
import { isToPrimary, toWire, WORKER_ENV, type RpcCall, type RpcReply, type ToWorker, type WorkerConfig } from './ipc.js';
import { ClusterMetrics } from '../metrics-cluster.js';

export interface WorkerPoolOptions {
  workers: number;
  host: string;
  port: number;
  wsPingInterval: number;
  logLevel: string;
  /** How long start waits for every worker to listen, and stop for them to exit. @default 30000 */
  timeoutMs?: number;
}

/** Replacements of crashed workers allowed per minute (then the pool stays smaller and says so). */
const RESPAWNS_PER_MINUTE = 10;

/**
 * The primary's side of `workers` > 0: forks the HTTP/WebSocket workers (node:cluster,
 * one shared listener; connections handed out round-robin, so each holds about
 * 1/N of the agents' sockets and file descriptors), answers their calls with the
 * in-process {@link AgentService} (credentials, work, status events: the level database,
 * the core link and the outbox stay here, in one process), knows which worker holds
 * which agent's WebSocket and pushes wake-ups through it. A worker that dies is
 * replaced (its agents reconnect; bounded per minute).
 */
export class WorkerPool {
  readonly stats = { workers: 0, rpcMessages: 0, calls: 0, pushes: 0, respawns: 0, wsAgents: 0 };
  readonly #workers = new Set<Worker>();
  readonly #wsOf = new Map<string, Worker>();
  readonly #push = new Map<Worker, string[]>();
  #pushScheduled = false;
  #stopping = false;
  #respawnTimes: number[] = [];
  #port = 0;
  #index = 0;
  readonly #metrics: ClusterMetrics;

  constructor(
    private readonly options: WorkerPoolOptions,
    private readonly svc: AgentService,
    private readonly health: () => Record<string, unknown>,
    private readonly log: Logger,
    /** The primary's own metrics, merged with the workers' on a scrape. */
    metrics: () => Promise<MetricsJson> = async () => [],
  ) {
    this.#metrics = new ClusterMetrics(metrics);
  }

  get port(): number {
    return this.#port;
  }

  async start(): Promise<void> {
    cluster.setupPrimary({ exec: fileURLToPath(new URL('./worker-main.js', import.meta.url)), args: [] });
    // Every worker listens with the configured port: with 0, node:cluster gives them all the
    // one port the first got (the listener is shared, keyed by what was asked for).
    this.#port = await this.#fork();
    await Promise.all(Array.from({ length: this.options.workers - 1 }, () => this.#fork()));
    this.log.info({ workers: this.#workers.size, port: this.#port }, 'task server workers listening');
  }

  #fork(): Promise<number> {
    const config: WorkerConfig = { host: this.options.host, port: this.options.port, wsPingInterval: this.options.wsPingInterval, logLevel: this.options.logLevel, index: this.#index++ };
    const w = cluster.fork({ [WORKER_ENV]: JSON.stringify(config) });
    this.#workers.add(w);
    this.stats.workers = this.#workers.size;
    w.on('message', (m: unknown) => this.#onMessage(w, m));
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`task server worker ${config.index} did not listen within ${this.options.timeoutMs ?? 30_000} ms`)), this.options.timeoutMs ?? 30_000);
      const onMessage = (m: unknown): void => {
        if (!isToPrimary(m) || m.t !== 'listening') return;
        clearTimeout(timer);
        w.off('message', onMessage);
        resolve(m.port);
      };
      w.on('message', onMessage);
      w.once('exit', (code, signal) => {
        clearTimeout(timer);
        this.#gone(w);
        reject(new Error(`task server worker ${config.index} exited (${signal ?? code}) before listening`));
        if (!this.#stopping && this.#port !== 0) this.#respawn(code, signal);
      });
    });
  }

  #gone(w: Worker): void {
    this.#workers.delete(w);
    this.#push.delete(w);
    for (const [a, x] of this.#wsOf) if (x === w) this.#wsOf.delete(a);
    this.stats.workers = this.#workers.size;
    this.stats.wsAgents = this.#wsOf.size;
  }

  #respawn(code: number | null, signal: string | null): void {
    const now = Date.now();
    this.#respawnTimes = this.#respawnTimes.filter((t) => now - t < 60_000);
    if (this.#respawnTimes.length >= RESPAWNS_PER_MINUTE) {
      this.log.error({ code, signal, workers: this.#workers.size }, 'task server worker died; too many respawns this minute, not replacing it');
      return;
    }
    this.#respawnTimes.push(now);
    this.stats.respawns++;
    this.log.warn({ code, signal }, 'task server worker died; replacing it');
    this.#fork().catch((err: unknown) => this.log.error({ err }, 'replacing a task server worker failed'));
  }

  #send(w: Worker, m: ToWorker): void {
    if (w.isConnected()) w.send(m);
  }

  #onMessage(w: Worker, m: unknown): void {
    if (!isToPrimary(m)) return;
    if (m.t === 'rpc') {
      this.stats.rpcMessages++;
      this.stats.calls += m.calls.length;
      void Promise.all(m.calls.map((c) => this.#answer(c))).then((replies) => this.#send(w, { t: 'replies', replies }));
    } else if (m.t === 'ws') {
      for (const a of m.open) this.#wsOf.set(a, w);
      for (const a of m.closed) if (this.#wsOf.get(a) === w) this.#wsOf.delete(a);
      this.stats.wsAgents = this.#wsOf.size;
    } else if (m.t === 'metrics') {
      this.#metrics.reply(m.seq, m.metrics);
    }
  }

  async #answer([seq, method, args]: RpcCall): Promise<RpcReply> {
    try {
      let value: unknown;
      const s = (i: number): string => String(args[i]);
      if (method === 'authenticate') value = await this.svc.authenticate(args[0] === null ? undefined : s(0));
      else if (method === 'work') value = await this.svc.work(s(0), args[1] as Via, args[2] === null ? undefined : s(2));
      else if (method === 'events') value = await this.svc.events(s(0), args[1] as StatusEvent[]);
      else if (method === 'hello') value = await this.svc.hello(s(0));
      else if (method === 'metrics') value = await this.#metrics.collect((n) => this.#askMetrics(n));
      else value = this.health();
      return [seq, true, value];
    } catch (err) {
      return [seq, false, toWire(err)];
    }
  }

  /** Asks every connected worker for its metrics (scrape `seq`); returns how many were asked. */
  #askMetrics(seq: number): number {
    let asked = 0;
    for (const w of this.#workers) {
      if (!w.isConnected()) continue;
      this.#send(w, { t: 'metrics', seq });
      asked++;
    }
    return asked;
  }

  /**
   * Agents no longer served here (blocked, deleted, moved): every worker forgets their
   * cached credentials and closes their sockets. Returns how many of them held one.
   */
  drop(agents: string[]): number {
    const held = agents.filter((a) => this.#wsOf.has(a)).length;
    for (const w of this.#workers) this.#send(w, { t: 'drop', agents });
    return held;
  }

  /** Sends a wake-up over the agent's WebSocket, in whichever worker holds it; false when none does. */
  push(agent: string): boolean {
    const w = this.#wsOf.get(agent);
    if (!w) return false;
    let list = this.#push.get(w);
    if (!list) this.#push.set(w, (list = []));
    list.push(agent);
    this.stats.pushes++;
    if (!this.#pushScheduled) {
      this.#pushScheduled = true;
      setImmediate(() => {
        this.#pushScheduled = false;
        for (const [x, agents] of this.#push) this.#send(x, { t: 'push', agents });
        this.#push.clear();
      });
    }
    return true;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    const exits = [...this.#workers].map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.isDead()) return resolve();
          const timer = setTimeout(() => {
            w.process.kill('SIGKILL');
            resolve();
          }, this.options.timeoutMs ?? 30_000);
          w.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          this.#send(w, { t: 'stop' });
        }),
    );
    await Promise.all(exits);
    this.#workers.clear();
    this.#wsOf.clear();
  }
}
