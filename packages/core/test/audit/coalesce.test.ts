import { describe, expect, it } from 'vitest';
import { RefusalCoalescer } from '../../src/audit/coalesce.js';
import type { AuditDraft } from '../../src/audit/entry.js';

const refusal = (over: Partial<AuditDraft> = {}, at = '2026-12-06T00:00:00.000Z'): AuditDraft => ({
  at,
  actor: { kind: 'anonymous' },
  from: { address: '10.0.0.9', requestId: 'r' },
  action: 'agents.heartbeat.create',
  method: 'POST',
  route: '/api/v1/agents/:id/heartbeat',
  object: 'agents/ag_1/heartbeat',
  outcome: { status: 401, code: 'COMMON_UNAUTHORIZED', result: 'refused' },
  ...over,
});

describe('RefusalCoalescer', () => {
  it('writes the first of identical refusals in a window, counts the rest, and sums them up when the window ends', () => {
    let now = 0;
    const c = new RefusalCoalescer(60_000, () => now);
    expect(c.admit(refusal()).write).toBe(true);
    for (let i = 1; i <= 4; i++) expect(c.admit(refusal({ object: `agents/ag_${i}/heartbeat` }, `2026-12-06T00:00:0${i}.000Z`)).write).toBe(false);
    // Another address is another caller.
    expect(c.admit(refusal({ from: { address: '10.0.0.10', requestId: 'r' } })).write).toBe(true);
    expect(c.flush()).toEqual([]);
    now = 60_000;
    const [summary, ...rest] = c.flush();
    expect(rest).toEqual([]);
    expect(summary).toMatchObject({ action: 'audit.repeated', route: '/api/v1/agents/:id/heartbeat', outcome: { status: 401, result: 'refused' }, after: { action: 'agents.heartbeat.create', repeated: 4, until: '2026-12-06T00:00:04.000Z' } });
    expect(c.size).toBe(0);
    // A new window starts with a written entry again.
    expect(c.admit(refusal()).write).toBe(true);
  });

  it('keeps refusals of a known caller on different objects apart', () => {
    const c = new RefusalCoalescer(60_000, () => 0);
    const alice = (object: string) => refusal({ actor: { kind: 'admin', admin: 'alice' }, object, outcome: { status: 403, code: 'CORE_FORBIDDEN', result: 'refused' } });
    expect([alice('sites/a'), alice('sites/b'), alice('sites/a')].map((d) => c.admit(d).write)).toEqual([true, true, false]);
  });

  it('writes every refusal with a window of 0, and beyond the tracked keys', () => {
    const off = new RefusalCoalescer(0, () => 0);
    expect([1, 2, 3].map(() => off.admit(refusal()).write)).toEqual([true, true, true]);
    const small = new RefusalCoalescer(60_000, () => 0, 1);
    small.admit(refusal());
    expect(small.admit(refusal({ from: { address: '10.0.0.11', requestId: 'r' } })).write).toBe(true);
    expect(small.admit(refusal({ from: { address: '10.0.0.11', requestId: 'r' } })).write).toBe(true);
  });
});
