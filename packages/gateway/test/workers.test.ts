import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { GatewayConfig } from '../src/config.js';
import { configAnswer, configFromPrimary, isConfigRequest, mergeTables, ReportHub, type PeerTable } from '../src/workers.js';

const table = (n: number, remote: string): PeerTable => ({
  stats: { workers: 1, tunnels: n },
  connections: Array.from({ length: n }, (_, i) => ({ principal: 'ag', kind: 'agent', coreId: 'c', serial: '1', remote: `${remote}:${i}`, target: 't:1', since: '', bytesIn: 0, bytesOut: 0 })),
});

/** A stand-in for a cluster worker handle: records what the hub sends it. */
const worker = (id: number) => {
  const sent: unknown[] = [];
  return { id, sent, send: (m: unknown) => (sent.push(m), true), isConnected: () => true };
};

describe('worker connection tables', () => {
  it('merges tables: connections side by side, numeric stats summed', () => {
    const m = mergeTables([table(2, 'a'), table(3, 'b')]);
    expect(m.stats).toEqual({ workers: 2, tunnels: 5 });
    expect(m.connections.map((c) => c.remote)).toEqual(['a:0', 'a:1', 'b:0', 'b:1', 'b:2']);
  });

  it('lets the lowest live worker report, with the others’ fresh tables, and drops those of dead workers', () => {
    let live = [1, 2, 3];
    const hub = new ReportHub(() => live);
    const [w1, w2, w3] = [worker(1), worker(2), worker(3)];
    expect(hub.handle(w2, { t: 'gw-report', seq: 7, staleMs: 60_000, table: table(2, 'w2') })).toBe(true);
    expect(w2.sent).toEqual([{ t: 'gw-report', seq: 7, reporter: false, others: [] }]);
    hub.handle(w3, { t: 'gw-report', seq: 1, staleMs: 60_000, table: table(1, 'w3') });
    hub.handle(w1, { t: 'gw-report', seq: 2, staleMs: 60_000, table: table(4, 'w1') });
    expect(w1.sent[0]).toMatchObject({ reporter: true, seq: 2 });
    expect((w1.sent[0] as { others: PeerTable[] }).others.map((t) => t.stats.tunnels).sort()).toEqual([1, 2]);
    // Worker 3 died: its table is left out.
    live = [1, 2];
    hub.handle(w1, { t: 'gw-report', seq: 3, staleMs: 60_000, table: table(4, 'w1') });
    expect((w1.sent[1] as { others: PeerTable[] }).others.map((t) => t.stats.tunnels)).toEqual([2]);
    // Worker 1 died: worker 2 reports now.
    live = [2];
    hub.handle(w2, { t: 'gw-report', seq: 8, staleMs: 60_000, table: table(2, 'w2') });
    expect(w2.sent[1]).toMatchObject({ reporter: true, others: [] });
  });

  it('leaves out a table older than its worker said, and ignores messages that are not its own', () => {
    const hub = new ReportHub(() => [1, 2]);
    const [w1, w2] = [worker(1), worker(2)];
    hub.handle(w2, { t: 'gw-report', seq: 1, staleMs: -1, table: table(2, 'w2') });
    hub.handle(w1, { t: 'gw-report', seq: 1, staleMs: 60_000, table: table(1, 'w1') });
    expect(w1.sent[0]).toMatchObject({ reporter: true, others: [] });
    expect(hub.handle(w1, { t: 'ready' })).toBe(false);
    expect(hub.handle(w1, null)).toBe(false);
  });
});

describe('config from the primary', () => {
  /** A stand-in for a worker's `process`: what it sends goes to `answer`, whose reply comes back as a message. */
  const proc = (answer: (m: unknown) => unknown) => {
    const p = new EventEmitter() as EventEmitter & { send: (m: unknown) => boolean };
    p.send = (m) => {
      const reply = answer(m);
      if (reply !== undefined) setImmediate(() => p.emit('message', reply));
      return true;
    };
    return p as unknown as NodeJS.Process;
  };
  const config = { name: 'gw', workers: 2 } as unknown as GatewayConfig;

  it('takes the config the primary holds, and none when it holds none', async () => {
    expect(await configFromPrimary(proc((m) => (isConfigRequest(m) ? configAnswer(config) : undefined)))).toEqual(config);
    expect(await configFromPrimary(proc((m) => (isConfigRequest(m) ? configAnswer(undefined) : undefined)))).toBeUndefined();
  });

  it('gives up after the timeout when the primary does not answer (the worker then validates the file)', async () => {
    expect(await configFromPrimary(proc(() => undefined), 20)).toBeUndefined();
  });
});
