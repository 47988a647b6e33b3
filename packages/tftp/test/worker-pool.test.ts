import { it, expect, afterEach } from 'vitest';
import { openUdpProbe, waitFor, type UdpProbe } from '@outpost/testing';
import { TransferWorkerPool, type PoolHooks } from '../src/server/worker-pool.js';
import type { ReadJob, TransferWorkerConfig } from '../src/server/worker-messages.js';
import type { SessionEnd } from '../src/server/session.js';

const config: TransferWorkerConfig = {
  family: 'udp4',
  address: '127.0.0.1',
  socketBufferBytes: 0,
  retries: 2,
  busyPollUs: 0,
  transferBytesPerSec: 0,
  globalBytesPerSec: 0,
  cacheBytes: 1 << 20,
  cacheChunkBytes: 1 << 16,
  logDebug: false,
  logWarn: false,
  flushMs: 50,
};

let pool: TransferWorkerPool | undefined;
let probe: UdpProbe | undefined;
afterEach(async () => {
  await pool?.stop();
  await probe?.close();
  pool = undefined;
  probe = undefined;
});

function job(id: number, filename: string, port: number): ReadJob {
  const data = Buffer.from(`payload of ${filename}`);
  return {
    id,
    info: { id, kind: 'read', filename, mode: 'octet', remoteAddress: '127.0.0.1', remotePort: port },
    blksize: 512,
    windowsize: 1,
    timeoutMs: 1000,
    oack: undefined,
    target: { kind: 'data', data: new Uint8Array(data) },
  };
}

it('fails the transfers of a worker that dies, then replaces the worker after its back-off', async () => {
  const ended: Array<[number, SessionEnd]> = [];
  const exits: Array<[number, number]> = [];
  const respawned: Array<[number, unknown]> = [];
  const hooks: PoolHooks = {
    started: () => {},
    openFailed: () => {},
    ended: (id, end) => ended.push([id, end]),
    counters: () => {},
    log: () => {},
    workerExit: (index, _err, respawnMs) => exits.push([index, respawnMs]),
    workerRespawn: (index, err) => respawned.push([index, err]),
  };
  pool = new TransferWorkerPool(2, config, hooks, { entry: new URL('./fixtures/crashing-worker.mjs', import.meta.url), respawnBaseMs: 50 });
  await pool.start();
  expect(pool.size).toBe(2);
  probe = await openUdpProbe();

  expect(pool.dispatch(job(1, 'crash', probe.port))).toBe(true);
  await waitFor(() => ended.length === 1, { what: 'the lost transfer to end' });
  expect(ended[0]![0]).toBe(1);
  expect(ended[0]![1]).toMatchObject({ event: 'failed', result: { reason: 'worker-exit' } });
  expect(exits).toEqual([[0, 50]]);
  expect(pool.size).toBe(1);

  await waitFor(() => pool!.size === 2, { what: 'a replacement worker' });
  expect(pool.restarts).toBe(1);
  expect(respawned).toEqual([[0, undefined]]);

  // The replacement serves: two reads land on both workers, each client gets its block.
  expect(pool.dispatch(job(2, 'a', probe.port))).toBe(true);
  const first = await probe.next();
  expect(first.data.readUInt16BE(0)).toBe(3);
  expect(first.data.subarray(4).toString()).toMatch(/^payload of a$/);

  // A second death in a row doubles the back-off.
  expect(pool.dispatch(job(3, 'crash', probe.port))).toBe(true);
  await waitFor(() => exits.length === 2, { what: 'second worker exit' });
  expect(exits[1]![1]).toBe(exits[1]![0] === 0 ? 100 : 50);
});
