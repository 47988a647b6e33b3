import type { Worker } from 'node:cluster';
import type { GatewayConfig } from './config.js';
import type { TunnelView } from './gateway.js';

/** One process's connection table, as it goes into a report to the cores. */
export interface PeerTable {
  stats: Record<string, number>;
  connections: TunnelView[];
}

/**
 * The other workers of the same gateway (`outpost-gateway` with `workers` > 1): they
 * send one connection table to the cores, not one each under the same gateway id (the
 * core keeps the latest table per gateway: each worker's would replace the others').
 */
export interface GatewayPeers {
  /**
   * Hands this worker's table to the primary. Resolves with the other workers' latest
   * tables when this worker is the one that reports to the cores, else with undefined.
   */
  exchange(own: PeerTable): Promise<PeerTable[] | undefined>;
}

/** Worker ↔ primary messages (node:cluster IPC, JSON). */
interface ReportToPrimary {
  t: 'gw-report';
  seq: number;
  /** Leave this table out of the others' reports after this long (its worker died). */
  staleMs: number;
  table: PeerTable;
}
interface ReportToWorker {
  t: 'gw-report';
  seq: number;
  reporter: boolean;
  others: PeerTable[];
}

const isReport = (m: unknown): m is { t: 'gw-report'; seq: number } =>
  typeof m === 'object' && m !== null && (m as { t?: unknown }).t === 'gw-report' && typeof (m as { seq?: unknown }).seq === 'number';

/**
 * The worker's side: {@link GatewayPeers} over `process.send`. A primary that does not
 * answer within `timeoutMs` means no report this round.
 */
export function workerPeers(staleMs: number, proc: NodeJS.Process = process, timeoutMs = 5_000): GatewayPeers {
  let seq = 0;
  const waiting = new Map<number, (m: ReportToWorker | undefined) => void>();
  proc.on('message', (m: unknown) => {
    if (isReport(m)) waiting.get(m.seq)?.(m as ReportToWorker);
  });
  return {
    exchange: (own) =>
      new Promise((resolve) => {
        const n = ++seq;
        const done = (m: ReportToWorker | undefined): void => {
          clearTimeout(timer);
          waiting.delete(n);
          resolve(m?.reporter ? m.others : undefined);
        };
        const timer = setTimeout(() => done(undefined), timeoutMs);
        timer.unref();
        waiting.set(n, done);
        proc.send?.({ t: 'gw-report', seq: n, staleMs, table: own } satisfies ReportToPrimary);
      }),
  };
}

/**
 * The primary's side: the latest table of each worker. The live worker with the lowest
 * id reports, with the others' tables that are not stale.
 */
export class ReportHub {
  readonly #tables = new Map<number, { until: number; table: PeerTable }>();

  constructor(private readonly live: () => number[]) {}

  /** Handles one message of worker `w`; false when it was not one of ours. */
  handle(w: Pick<Worker, 'id' | 'send' | 'isConnected'>, m: unknown): boolean {
    if (!isReport(m)) return false;
    const msg = m as ReportToPrimary;
    const now = Date.now();
    this.#tables.set(w.id, { until: now + msg.staleMs, table: msg.table });
    const live = new Set(this.live());
    for (const [id, t] of this.#tables) if (!live.has(id) || t.until < now) this.#tables.delete(id);
    const reporter = Math.min(...live, w.id) === w.id;
    const others = reporter ? [...this.#tables].filter(([id]) => id !== w.id).map(([, t]) => t.table) : [];
    if (w.isConnected()) w.send({ t: 'gw-report', seq: msg.seq, reporter, others } satisfies ReportToWorker);
    return true;
  }
}

/** One table from several: connections side by side, numeric stats summed. */
export function mergeTables(tables: PeerTable[]): PeerTable {
  const stats: Record<string, number> = {};
  for (const t of tables) for (const [k, v] of Object.entries(t.stats)) stats[k] = (stats[k] ?? 0) + v;
  return { stats, connections: tables.flatMap((t) => t.connections) };
}

/**
 * Set (to `1`) in the environment of workers forked after the first was ready: they ask
 * the primary for the config the first one validated ({@link configFromPrimary})
 * instead of reading and validating the file, so they never load zod and the schema
 * (~5 MiB of RSS each).
 */
export const CONFIG_FROM_PRIMARY = 'OUTPOST_GATEWAY_CONFIG_FROM_PRIMARY';

/** Worker → primary: the validated config, please. Primary → worker: here it is (null: none). */
interface ConfigRequest {
  t: 'gw-config?';
}
interface ConfigAnswer {
  t: 'gw-config';
  config: GatewayConfig | null;
}

export const isConfigRequest = (m: unknown): boolean => typeof m === 'object' && m !== null && (m as { t?: unknown }).t === 'gw-config?';

/** The primary's answer to a {@link isConfigRequest} message. */
export const configAnswer = (config: GatewayConfig | undefined): ConfigAnswer => ({ t: 'gw-config', config: config ?? null });

/**
 * The worker's side: the validated config from the primary (as JSON: a validated config
 * is plain data), or undefined when it has none or does not answer within `timeoutMs`
 * (the worker then validates the file itself).
 */
export function configFromPrimary(proc: NodeJS.Process = process, timeoutMs = 10_000): Promise<GatewayConfig | undefined> {
  return new Promise((resolve) => {
    const done = (config: GatewayConfig | undefined): void => {
      clearTimeout(timer);
      proc.off('message', onMessage);
      resolve(config);
    };
    const onMessage = (m: unknown): void => {
      if (typeof m === 'object' && m !== null && (m as { t?: unknown }).t === 'gw-config') done((m as ConfigAnswer).config ?? undefined);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    proc.on('message', onMessage);
    if (!proc.send?.({ t: 'gw-config?' } satisfies ConfigRequest)) done(undefined);
  });
}
