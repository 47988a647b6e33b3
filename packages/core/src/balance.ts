/**
 * Task-server assignment. Each agent has a set of eligible task servers (the first tier
 * of its selection, online ones preferred). An agent whose server is not eligible is
 * moved to the least loaded eligible one; then agents move from a server to an eligible
 * one with at least two fewer agents, until no move helps. Agents already well placed
 * never move, so a server coming or going disturbs only what it must.
 */
export interface BalanceInput {
  agentId: string;
  current: string | undefined;
  eligible: readonly string[];
}

export function balance(inputs: readonly BalanceInput[], servers: readonly string[], maxPasses = 8): Map<string, string | undefined> {
  const load = new Map<string, number>(servers.map((s) => [s, 0]));
  const assigned = new Map<string, string | undefined>();
  for (const i of inputs) {
    const keep = i.current !== undefined && i.eligible.includes(i.current) ? i.current : undefined;
    assigned.set(i.agentId, keep);
    if (keep !== undefined) load.set(keep, (load.get(keep) ?? 0) + 1);
  }
  const leastLoaded = (eligible: readonly string[]): string | undefined => {
    let best: string | undefined;
    for (const s of eligible) if (best === undefined || (load.get(s) ?? 0) < (load.get(best) ?? 0)) best = s;
    return best;
  };
  for (const i of inputs) {
    if (assigned.get(i.agentId) !== undefined || i.eligible.length === 0) continue;
    const s = leastLoaded(i.eligible)!;
    assigned.set(i.agentId, s);
    load.set(s, (load.get(s) ?? 0) + 1);
  }
  for (let pass = 0; pass < maxPasses; pass++) {
    let moved = 0;
    for (const i of inputs) {
      if (i.eligible.length < 2) continue;
      const cur = assigned.get(i.agentId)!;
      const target = leastLoaded(i.eligible)!;
      if ((load.get(target) ?? 0) + 1 < (load.get(cur) ?? 0)) {
        load.set(cur, load.get(cur)! - 1);
        load.set(target, (load.get(target) ?? 0) + 1);
        assigned.set(i.agentId, target);
        moved++;
      }
    }
    if (moved === 0) break;
  }
  return assigned;
}
