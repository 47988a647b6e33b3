import { describe, expect, it } from 'vitest';
import { applyEvent, failureKey } from '../../src/tasks/run-state.js';
import type { AgentRun, StatusEvent } from '../../src/tasks/model.js';

const ar = (): AgentRun => ({ r: 'run_1', a: 'ag_1', s: 'queued', h: { q: 1000 }, st: [] });
const ev = (step: number, state: StatusEvent['state'], at: number, extra: Partial<StatusEvent> = {}): StatusEvent => ({
  id: `run_1:ag_1:${step}:${extra.attempt ?? 0}:${state}`,
  run: 'run_1',
  agent: 'ag_1',
  step,
  attempt: 0,
  state,
  at,
  ...extra,
});

describe('applyEvent', () => {
  it('moves an agent through the hops and keeps the first time of each', () => {
    const a = ar();
    expect(applyEvent(a, ev(-1, 'tickled', 1100, { via: 'udp' }), 9000, 2)).toEqual({ duplicate: false, from: 'queued', to: 'tickled' });
    applyEvent(a, ev(-1, 'fetched', 1200), 9000, 2);
    applyEvent(a, ev(0, 'running', 1300), 9000, 2);
    applyEvent(a, ev(0, 'succeeded', 1400, { exitCode: 0, output: 'hi' }), 9000, 2);
    const r = applyEvent(a, ev(-1, 'succeeded', 1500), 9000, 2);
    expect(r.to).toBe('succeeded');
    expect(a.h).toEqual({ q: 1000, t: 1100, f: 1200, r: 1300, e: 1500, c: 9000 });
    expect(a.v).toBe('udp');
    expect(a.st[0]).toMatchObject({ s: 'succeeded', x: 0, b: 1300, f: 1400, o: 2 });
  });

  it('treats a redelivered event as a duplicate that changes nothing', () => {
    const a = ar();
    applyEvent(a, ev(0, 'succeeded', 1400, { exitCode: 0 }), 9000, 1);
    const before = structuredClone(a);
    expect(applyEvent(a, ev(0, 'succeeded', 1400, { exitCode: 0 }), 9500, 1).duplicate).toBe(true);
    expect(applyEvent(a, ev(0, 'running', 1300), 9500, 1).duplicate).toBe(true);
    expect(a).toEqual({ ...before, h: { ...before.h } });
  });

  it('tolerates out-of-order delivery: a late fetched event does not move the state back', () => {
    const a = ar();
    applyEvent(a, ev(0, 'running', 1300), 9000, 1);
    expect(a.s).toBe('running');
    const r = applyEvent(a, ev(-1, 'fetched', 1200), 9000, 1);
    expect(r.to).toBe('running');
    expect(a.h.f).toBe(1200);
  });

  it('never leaves a final state, and a later attempt replaces a step result', () => {
    const a = ar();
    applyEvent(a, ev(0, 'failed', 1400, { exitCode: 3, error: 'exit' }), 9000, 1);
    applyEvent(a, ev(0, 'succeeded', 1600, { attempt: 1, exitCode: 0 }), 9000, 1);
    expect(a.st[0]).toMatchObject({ s: 'succeeded', n: 1 });
    applyEvent(a, ev(-1, 'failed', 1700, { error: 'x' }), 9000, 1);
    expect(applyEvent(a, ev(-1, 'succeeded', 1800), 9000, 1).to).toBe('failed');
  });

  it('groups failures by step and error', () => {
    const a = ar();
    applyEvent(a, ev(1, 'failed', 1400, { exitCode: 3, error: 'exit' }), 9000, 2);
    expect(failureKey({ steps: [{ name: 'a' }, { name: 'install' }] as never }, a)).toBe("step 2 'install': exit 3");
    applyEvent(a, ev(1, 'failed', 1500, { attempt: 1, error: 'timeout' }), 9000, 2);
    expect(failureKey({ steps: [{ name: 'a' }, { name: 'install' }] as never }, a)).toBe("step 2 'install': timeout");
  });
});
