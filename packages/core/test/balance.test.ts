import { describe, expect, it } from 'vitest';
import { balance, type BalanceInput } from '../src/balance.js';

const agents = (n: number, current: string | undefined, eligible: string[], prefix = 'a'): BalanceInput[] =>
  Array.from({ length: n }, (_, i) => ({ agentId: `${prefix}${String(i).padStart(3, '0')}`, current, eligible }));

function loads(result: Map<string, string | undefined>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of result.values()) if (s !== undefined) out[s] = (out[s] ?? 0) + 1;
  return out;
}

describe('balance', () => {
  it('spreads unassigned agents evenly over their eligible servers', () => {
    const r = balance(agents(10, undefined, ['s1', 's2']), ['s1', 's2']);
    expect(loads(r)).toEqual({ s1: 5, s2: 5 });
  });

  it('moves agents to a new server until no two servers differ by more than one', () => {
    const r = balance(agents(10, 's1', ['s1', 's2']), ['s1', 's2']);
    expect(loads(r)).toEqual({ s1: 5, s2: 5 });
    const r3 = balance(agents(10, 's1', ['s1', 's2', 's3']), ['s1', 's2', 's3']);
    const l = Object.values(loads(r3));
    expect(Math.max(...l) - Math.min(...l)).toBeLessThanOrEqual(1);
  });

  it('does not move anyone when the difference is exactly one', () => {
    const inputs = [...agents(3, 's1', ['s1', 's2'], 'a'), ...agents(2, 's2', ['s1', 's2'], 'b')];
    const r = balance(inputs, ['s1', 's2']);
    for (const i of inputs) expect(r.get(i.agentId)).toBe(i.current);
  });

  it('a new server with one agent of difference takes nobody', () => {
    const r = balance(agents(1, 's1', ['s1', 's2']), ['s1', 's2']);
    expect(r.get('a000')).toBe('s1');
  });

  it('reassigns the agents of a server that is gone, to the least loaded remaining ones', () => {
    const inputs = [...agents(4, 'gone', ['s1', 's2'], 'g'), ...agents(2, 's1', ['s1', 's2'], 'k'), ...agents(2, 's2', ['s1', 's2'], 'm')];
    const r = balance(inputs, ['s1', 's2']);
    expect(loads(r)).toEqual({ s1: 4, s2: 4 });
    for (const i of inputs.filter((x) => x.current !== 'gone')) expect(r.get(i.agentId)).toBe(i.current);
  });

  it('never moves a well-placed agent when others must be re-homed', () => {
    const stay = agents(5, 's1', ['s1', 's2'], 'stay');
    const homeless = agents(5, undefined, ['s1', 's2'], 'new');
    const r = balance([...stay, ...homeless], ['s1', 's2']);
    for (const i of stay) expect(r.get(i.agentId)).toBe('s1');
    expect(loads(r)).toEqual({ s1: 5, s2: 5 });
  });

  it('never assigns an agent to a server it is not eligible for, even an idle one', () => {
    const inputs = [...agents(6, 's1', ['s1'], 'only'), ...agents(2, undefined, ['s1'], 'new')];
    const r = balance(inputs, ['s1', 'idle']);
    for (const i of inputs) expect(r.get(i.agentId)).toBe('s1');
    expect(loads(r).idle).toBeUndefined();
  });

  it('moves an agent off a server that is no longer eligible for it', () => {
    const r = balance([{ agentId: 'x', current: 's1', eligible: ['s2'] }], ['s1', 's2']);
    expect(r.get('x')).toBe('s2');
  });

  it('leaves an agent with no eligible server unassigned', () => {
    const r = balance([{ agentId: 'x', current: 's1', eligible: [] }], ['s1']);
    expect(r.get('x')).toBeUndefined();
  });

  it('balances each group of agents only over its own servers', () => {
    const inputs = [...agents(6, undefined, ['a1', 'a2'], 'siteA'), ...agents(4, undefined, ['b1'], 'siteB')];
    const r = balance(inputs, ['a1', 'a2', 'b1']);
    expect(loads(r)).toEqual({ a1: 3, a2: 3, b1: 4 });
  });

  it('is stable: balancing its own output moves nobody', () => {
    const first = balance(agents(17, undefined, ['s1', 's2', 's3']), ['s1', 's2', 's3']);
    const again = balance([...first].map(([agentId, current]) => ({ agentId, current, eligible: ['s1', 's2', 's3'] })), ['s1', 's2', 's3']);
    expect([...again]).toEqual([...first]);
  });
});
