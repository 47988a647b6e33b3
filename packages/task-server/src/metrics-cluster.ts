import { aggregateMetrics, type MetricsJson } from '@outpost/common';

/** How long a scrape waits for a worker's metrics before leaving that worker out. */
const WORKER_METRICS_TIMEOUT_MS = 2_000;

interface Pending {
  parts: MetricsJson[];
  waiting: number;
  done: () => void;
}

/**
 * The task server's `/metrics` when it runs with workers (the primary's side): a worker
 * that is scraped asks the primary, which asks every worker for its metrics (HTTP
 * requests, WebSockets, process metrics) and merges them with its own (tickles, events,
 * syncs, the level db) — counters summed across processes, event-loop lag averaged.
 * A worker that does not answer within 2 s is left out of that scrape.
 */
export class ClusterMetrics {
  #seq = 0;
  readonly #pending = new Map<number, Pending>();

  constructor(private readonly own: () => Promise<MetricsJson>) {}

  /** `ask(seq)` sends request `seq` to every worker and returns how many it reached; then merges. */
  async collect(ask: (seq: number) => number): Promise<string> {
    const seq = ++this.#seq;
    const parts: MetricsJson[] = [await this.own()];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, WORKER_METRICS_TIMEOUT_MS);
      timer.unref();
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const p: Pending = { parts, waiting: Infinity, done };
      this.#pending.set(seq, p);
      // Answers come over IPC, never before this returns.
      p.waiting = ask(seq);
      if (p.waiting <= 0) done();
    });
    this.#pending.delete(seq);
    return aggregateMetrics(parts);
  }

  /** A worker's answer to request `seq`. */
  reply(seq: number, metrics: MetricsJson): void {
    const p = this.#pending.get(seq);
    if (!p) return;
    p.parts.push(metrics);
    if (--p.waiting <= 0) p.done();
  }
}
