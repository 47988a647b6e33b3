import { TERMINAL, type AgentRun, type AgentRunState, type RunStep, type StatusEvent } from './model.js';

const RANK: Record<AgentRunState, number> = { queued: 0, tickled: 1, fetched: 2, running: 3, succeeded: 4, failed: 4, expired: 4, cancelled: 4 };
const STEP_RANK = { running: 0, succeeded: 1, failed: 1, skipped: 1 } as const;

export interface ApplyResult {
  /** The event was seen before (or is older than what is recorded): nothing changed. */
  duplicate: boolean;
  /** Agent-level state before and after. */
  from: AgentRunState;
  to: AgentRunState;
}

/** The failure group a failed agent is counted in, e.g. `step 2 'install': exit 3`. */
export function failureKey(run: { steps: RunStep[] }, ar: AgentRun): string {
  for (let i = ar.st.length - 1; i >= 0; i--) {
    const st = ar.st[i];
    if (st?.s === 'failed') {
      const what = st.e === 'exit' || st.e === undefined ? `exit ${st.x ?? '?'}` : st.e;
      return `step ${i + 1} '${run.steps[i]?.name ?? '?'}': ${what}`;
    }
  }
  return ar.e ?? 'failed';
}

/**
 * Applies one status event to an agent's run record, in place. Idempotent and
 * order-tolerant: hop times keep their first value, the agent-level state only moves
 * forward (queued → tickled → fetched → running → a final state), a final state is
 * never left, and a step result is replaced only by a later attempt or a later state
 * of the same attempt. Returns whether anything changed.
 */
export function applyEvent(ar: AgentRun, e: StatusEvent, nowMs: number, stepCount: number): ApplyResult {
  const from = ar.s;
  let changed = false;
  const setHop = (k: 'd' | 't' | 'f' | 'r' | 'e' | 'c', at: number): void => {
    if (ar.h[k] === undefined) {
      ar.h[k] = at;
      changed = true;
    }
  };
  const advance = (to: AgentRunState): void => {
    if (TERMINAL.has(ar.s)) return;
    if (RANK[to] > RANK[ar.s] || (TERMINAL.has(to) && !TERMINAL.has(ar.s))) {
      ar.s = to;
      changed = true;
    }
  };

  if (e.step < 0) {
    switch (e.state) {
      case 'tickled':
        setHop('t', e.at);
        if (ar.v === undefined && e.via) ar.v = e.via;
        advance('tickled');
        break;
      case 'fetched':
        setHop('f', e.at);
        // How the agent came to fetch is what reached it (a tickle may have been lost).
        if (e.via && ar.h.f === e.at) ar.v = e.via;
        advance('fetched');
        break;
      case 'succeeded':
      case 'failed':
      case 'cancelled':
      case 'expired':
        if (!TERMINAL.has(ar.s)) {
          setHop('e', e.at);
          setHop('c', nowMs);
          if (e.error) ar.e = e.error.slice(0, 200);
          advance(e.state);
        }
        break;
      default:
        break;
    }
  } else if (e.step < stepCount && e.state !== 'tickled' && e.state !== 'fetched' && e.state !== 'cancelled' && e.state !== 'expired') {
    const cur = ar.st[e.step] ?? null;
    const newer = !cur || e.attempt > cur.n || (e.attempt === cur.n && STEP_RANK[e.state] > STEP_RANK[cur.s]);
    if (newer) {
      while (ar.st.length <= e.step) ar.st.push(null);
      ar.st[e.step] = {
        s: e.state,
        n: e.attempt,
        ...(e.exitCode === undefined ? {} : { x: e.exitCode }),
        ...(e.error === undefined ? {} : { e: e.error.slice(0, 64) }),
        b: e.state === 'running' ? e.at : (cur?.n === e.attempt ? cur.b : undefined),
        ...(e.state === 'running' ? {} : { f: e.at }),
        ...(e.truncated ? { tr: true } : {}),
        ...(e.output ? { o: Buffer.byteLength(e.output) } : {}),
      };
      changed = true;
    }
    setHop('r', e.state === 'running' ? e.at : (ar.h.r ?? e.at));
    // A step result implies the agent fetched the work, even if that event is late.
    advance('running');
  }
  return { duplicate: !changed, from, to: ar.s };
}
