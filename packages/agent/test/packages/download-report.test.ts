import { silentLogger } from '@outpost/common';
import { describe, expect, it } from 'vitest';
import { CoreHttpError } from '../../src/errors.js';
import { sendDownloadReport } from '../../src/packages/download-report.js';

const log = silentLogger();
const answer = (status: number, code?: string): CoreHttpError => new CoreHttpError('POST', '/api/v1/packages/p/downloads', status, code, 'test');
/** A send that fails with `errors` in turn, then succeeds; counts its calls. */
function sender(errors: unknown[]): { send: () => Promise<unknown>; calls: () => number } {
  let n = 0;
  return {
    send: async () => {
      const err = errors[n++];
      if (err !== undefined) throw err;
      return undefined;
    },
    calls: () => n,
  };
}
const fast = { baseMs: 5, capMs: 20 };

describe('sendDownloadReport', () => {
  it('sends again while the core cannot take it (503, 502, refused connection) until it does', async () => {
    const s = sender([answer(503, 'CORE_STORE_UNAVAILABLE'), answer(502), Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })]);
    const r = sendDownloadReport(s.send, { log, retry: fast });
    expect(await r.first).toBe(false);
    expect(await r.done).toBe(true);
    expect(s.calls()).toBe(4);
  });

  it('gives up at once when the core refuses the report (4xx): sending it again would not help', async () => {
    const s = sender([answer(400, 'COMMON_VALIDATION'), undefined]);
    const r = sendDownloadReport(s.send, { log, retry: fast });
    expect(await r.done).toBe(false);
    expect(s.calls()).toBe(1);
  });

  it('stops at its deadline and when aborted', async () => {
    const always = sender(Array.from({ length: 1_000 }, () => answer(503)));
    expect(await sendDownloadReport(always.send, { log, retry: { ...fast, deadlineMs: 100 } }).done).toBe(false);
    expect(always.calls()).toBeGreaterThan(1);
    expect(always.calls()).toBeLessThan(20);
    const ac = new AbortController();
    const aborted = sender(Array.from({ length: 1_000 }, () => answer(503)));
    const r = sendDownloadReport(aborted.send, { log, signal: ac.signal, retry: fast });
    await r.first;
    ac.abort();
    expect(await r.done).toBe(false);
    expect(aborted.calls()).toBeLessThanOrEqual(2);
  });

  it('settles first and done together when the first attempt is taken', async () => {
    const s = sender([]);
    const r = sendDownloadReport(s.send, { log, retry: fast });
    expect(await r.first).toBe(true);
    expect(await r.done).toBe(true);
    expect(s.calls()).toBe(1);
  });
});
