import type { Registry } from '../registry.js';
import { TERMINAL, type AgentRun, type Hops, type RunRecord } from './model.js';
import { reasonNotReached } from './reasons.js';

export interface HopStats {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** Hops as `run show` names them, each measured from the moment the run was created. */
export const HOPS: Array<[keyof Hops, string]> = [
  ['d', 'dispatched'],
  ['t', 'tickled'],
  ['f', 'fetched'],
  ['r', 'started'],
  ['e', 'ended'],
  ['c', 'recorded'],
];

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;

export function runState(r: RunRecord): 'active' | 'finished' | 'cancelled' | 'expired' {
  if (r.cancelledAt !== undefined) return 'cancelled';
  if (r.finishedAt === undefined) return 'active';
  return r.counts.expired > 0 ? 'expired' : 'finished';
}

/**
 * `run show`: counts and failure groups come from the run record (kept incrementally);
 * hop percentiles, the slowest agents and those not reached are one pass over the
 * agent records.
 */
export function summarize(run: RunRecord, agents: AgentRun[], registry: Registry, limit = 20): Record<string, unknown> {
  const hopTimes = new Map<string, number[]>(HOPS.map(([, n]) => [n, []]));
  const slow: Array<{ agent: string; ms: number; state: string }> = [];
  const notReached: Array<{ agent: string; name?: string | undefined; state: string; reason: string }> = [];
  const reasons: Record<string, number> = {};
  const via: Record<string, number> = {};
  for (const ar of agents) {
    for (const [k, n] of HOPS) {
      const t = ar.h[k];
      if (t !== undefined) hopTimes.get(n)!.push(Math.max(0, t - run.createdAt));
    }
    if (ar.v) via[ar.v] = (via[ar.v] ?? 0) + 1;
    if ((ar.s === 'succeeded' || ar.s === 'failed') && ar.h.c !== undefined) slow.push({ agent: ar.a, ms: ar.h.c - ar.h.q, state: ar.s });
    const unreached = !TERMINAL.has(ar.s) || ar.s === 'expired';
    if (unreached) {
      const reason = ar.s === 'expired' ? (ar.e ?? 'expired') : reasonNotReached(ar, registry, run.server);
      reasons[reason] = (reasons[reason] ?? 0) + 1;
      if (notReached.length < limit) notReached.push({ agent: ar.a, name: registry.store.agents.get(ar.a)?.name, state: ar.s, reason });
    }
  }
  const hops: Record<string, HopStats> = {};
  for (const [n, times] of hopTimes) {
    times.sort((a, b) => a - b);
    hops[n] = { count: times.length, p50: pct(times, 50), p99: pct(times, 99), max: times[times.length - 1] ?? 0 };
  }
  slow.sort((a, b) => b.ms - a.ms);
  return {
    id: run.id,
    job: run.job,
    state: runState(run),
    ...(run.server ? { server: true } : {}),
    createdAt: new Date(run.createdAt).toISOString(),
    expiresAt: new Date(run.expiresAt).toISOString(),
    finishedAt: run.finishedAt === undefined ? undefined : new Date(run.finishedAt).toISOString(),
    durationMs: (run.finishedAt ?? Date.now()) - run.createdAt,
    steps: run.steps.map((s) => s.name),
    agents: run.agents,
    counts: run.counts,
    failures: Object.entries(run.failures)
      .map(([error, count]) => ({ error, count }))
      .sort((a, b) => b.count - a.count),
    hops,
    via,
    slowest: slow.slice(0, Math.min(limit, 10)),
    notReached: { reasons, agents: notReached },
  };
}

/** One agent's record as the API shows it (hop times as ISO strings, steps named). */
export function agentRunView(run: RunRecord, ar: AgentRun, outputs: Array<[string, string]> = []): Record<string, unknown> {
  const iso = (t: number | undefined): string | undefined => (t === undefined ? undefined : new Date(t).toISOString());
  const hops: Record<string, string | undefined> = { queued: iso(ar.h.q) };
  for (const [k, n] of HOPS) hops[n] = iso(ar.h[k]);
  const out = new Map(outputs);
  return {
    run: ar.r,
    agent: ar.a,
    state: ar.s,
    error: ar.e,
    via: ar.v,
    hops,
    steps: run.steps.map((s, i) => {
      const st = ar.st[i];
      if (!st) return { name: s.name, state: 'pending' };
      return {
        name: s.name,
        state: st.s,
        attempt: st.n,
        exitCode: st.x,
        error: st.e,
        startedAt: iso(st.b),
        finishedAt: iso(st.f),
        truncated: st.tr ?? false,
        ...(out.has(`${i}!${st.n}`) ? { output: out.get(`${i}!${st.n}`) } : {}),
      };
    }),
  };
}
