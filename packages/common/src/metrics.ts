import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Middleware } from 'koa';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { AppContext, AppState } from './http/context.js';

/** One process's metrics as prom-client gives them (`registry.getMetricsAsJSON()`), for IPC. */
export type MetricsJson = Array<MetricObjectWithValues<MetricValue<string>>>;

/**
 * A value read from counters a service already keeps: a number, or numbers by one
 * label's value (`{ garbage: 3, replay: 1 }`).
 */
export type MetricSource = () => number | Readonly<Record<string, number>> | undefined | Promise<number | Readonly<Record<string, number>> | undefined>;

/** Prometheus metrics of one service (prom-client, its own registry). */
export interface ServiceMetrics {
  readonly registry: Registry;
  /** Metric names start with this (`outpost_core_`). */
  readonly prefix: string;
  /** `Content-Type` of {@link text}. */
  readonly contentType: string;
  /** The exposition text (what `/metrics` answers). */
  text(): Promise<string>;
  /** The samples as JSON, for another process to merge with {@link aggregateMetrics}. */
  json(): Promise<MetricsJson>;
  /**
   * A counter read from the service's own counters at scrape time: `read` returns the
   * running total (or totals by `label`). Nothing is counted twice: the value is set.
   */
  counterFrom(name: string, help: string, read: MetricSource, label?: string): void;
  /** A gauge read at scrape time (current value, or values by `label`). */
  gaugeFrom(name: string, help: string, read: MetricSource, label?: string): void;
  /** Request counts and latencies of a koa app (see {@link HttpAppOptions.metrics}). */
  httpMiddleware(): Middleware<AppState>;
  /** Counts and times one request of a plain `node:http` server. */
  observeRequest(method: string, route: string, status: number, seconds: number): void;
}

export interface MetricsOptions {
  /** The service's name in metric names: `outpost_<service>_...`. */
  service: string;
  /**
   * Process metrics (CPU, memory, handles, GC) and event-loop lag, unprefixed as the
   * Node.js convention has them (`process_cpu_seconds_total`, `nodejs_eventloop_lag_seconds`).
   * @default true
   */
  process?: boolean;
}

const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const normalize = (v: number | Readonly<Record<string, number>> | undefined): Array<[string | undefined, number]> => {
  if (v === undefined) return [];
  if (typeof v === 'number') return [[undefined, v]];
  return Object.entries(v).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]));
};

/**
 * A metrics registry for one service. Each service makes its own (several services share
 * one process in the appliance and in tests), serves {@link ServiceMetrics.text} at
 * `/metrics` on its HTTP listener, and exposes the counters it already keeps with
 * {@link ServiceMetrics.counterFrom}. Nothing starts before this is called.
 */
export function createServiceMetrics(options: MetricsOptions): ServiceMetrics {
  const registry = new Registry();
  const prefix = `outpost_${options.service.replace(/[^a-zA-Z0-9_]/g, '_')}_`;
  if (options.process ?? true) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  const requests = new Counter({ name: `${prefix}http_requests_total`, help: 'HTTP requests answered, by method, route and status', labelNames: ['method', 'route', 'status'], registers: [registry] });
  const latency = new Histogram({ name: `${prefix}http_request_duration_seconds`, help: 'HTTP request latency, by method and route', labelNames: ['method', 'route'], buckets: LATENCY_BUCKETS, registers: [registry] });

  const observeRequest = (method: string, route: string, status: number, seconds: number): void => {
    requests.inc({ method, route, status: String(status) });
    latency.observe({ method, route }, seconds);
  };

  const from = (kind: 'counter' | 'gauge', name: string, help: string, read: MetricSource, label: string | undefined): void => {
    const full = `${prefix}${name}`;
    const labelNames = label ? [label] : [];
    // prom-client calls collect() before each scrape; the value is read, not accumulated.
    async function collect(this: Counter | Gauge): Promise<void> {
      const values = normalize(await read());
      this.reset();
      for (const [lv, n] of values) {
        if (this instanceof Gauge) {
          if (label && lv !== undefined) this.set({ [label]: lv }, n);
          else this.set(n);
        } else if (n >= 0) {
          if (label && lv !== undefined) this.inc({ [label]: lv }, n);
          else this.inc(n);
        }
      }
    }
    if (kind === 'counter') new Counter({ name: full, help, labelNames, registers: [registry], collect });
    else new Gauge({ name: full, help, labelNames, registers: [registry], collect });
  };

  return {
    registry,
    prefix,
    contentType: registry.contentType,
    text: () => registry.metrics(),
    json: () => registry.getMetricsAsJSON(),
    counterFrom: (name, help, read, label) => from('counter', name, help, read, label),
    gaugeFrom: (name, help, read, label) => from('gauge', name, help, read, label),
    observeRequest,
    httpMiddleware() {
      return async (ctx: AppContext, next) => {
        const started = performance.now();
        try {
          await next();
        } finally {
          // The route pattern (`/api/v1/agents/:id`), never the raw path: bounded labels.
          const matched = (ctx as { _matchedRoute?: string | RegExp })._matchedRoute;
          const route = typeof matched === 'string' ? matched : 'unmatched';
          // The error middleware inside sets the final status; a throw here means 500.
          observeRequest(ctx.method, route, ctx.status, (performance.now() - started) / 1000);
        }
      };
    },
  };
}

/**
 * Bytes a level database takes on disk: its table and log files directly in `dir` (the
 * data dir holds other things too). Bounded: reads one directory.
 */
export async function levelDbBytes(dir: string): Promise<number> {
  let total = 0;
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (!/\.(ldb|sst|log)$|^MANIFEST-/.test(name)) continue;
    total += await stat(join(dir, name)).then((s) => s.size, () => 0);
  }
  return total;
}

/**
 * Merges the metrics of several processes of one service (a primary and its workers:
 * each sends {@link ServiceMetrics.json}) into one exposition text, as prom-client's
 * cluster aggregator does: counters and most gauges summed, event-loop lag averaged,
 * version info taken once. The content type is prom-client's text format.
 */
export async function aggregateMetrics(parts: readonly MetricsJson[]): Promise<string> {
  return AggregatorRegistry.aggregate([...parts]).metrics();
}
