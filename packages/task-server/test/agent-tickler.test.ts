import { silentLogger } from '@outpost/common';
import { waitFor } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentTickler } from '../src/agent-tickler.js';

let t: AgentTickler | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('AgentTickler', () => {
  it('wakes agents at the configured rate, one slice per tenth of a second, each agent once while queued', async () => {
    const sent: Array<[number, string[]]> = [];
    const t0 = Date.now();
    t = new AgentTickler(
      { senderId: () => 'ts', rate: 100, dropRate: 0 },
      () => ({ key: undefined, addr: undefined, push: () => true }),
      (batch) => sent.push([Date.now() - t0, batch.map(([a]) => a)]),
      silentLogger(),
    );
    await t.open();
    const ids = Array.from({ length: 25 }, (_, i) => `a${i}`);
    t.wake(ids);
    t.wake(ids.slice(20)); // still queued: not twice
    expect(t.backlog).toBe(15);
    await waitFor(() => t!.backlog === 0, { timeoutMs: 5_000, what: 'all woken' });
    expect(sent.map(([, b]) => b.length)).toEqual([10, 10, 5]);
    expect(sent.flatMap(([, b]) => b)).toEqual(ids);
    // 10 per 100 ms: the third slice cannot go before ~200 ms.
    expect(sent[2]![0]).toBeGreaterThanOrEqual(180);
    expect(t.stats).toMatchObject({ queued: 25, ws: 25 });
  });
});
