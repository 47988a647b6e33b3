import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, enrollSiteServer, startCore } from './harness.js';

afterEach(cleanup);

describe('core lifecycle', () => {
  it('stops promptly right after start, while the start-up re-balance is still pending', async () => {
    const tc = await startCore();
    const t0 = Date.now();
    await tc.stop();
    expect(Date.now() - t0).toBeLessThan(3_000);
  });

  it('stops promptly right after a change that schedules a re-balance', async () => {
    const tc = await startCore();
    await new Promise((r) => setTimeout(r, 100));
    await enrollSiteServer(tc, 'ts');
    const t0 = Date.now();
    await tc.stop();
    expect(Date.now() - t0).toBeLessThan(3_000);
  });

  it('start and stop are idempotent', async () => {
    const tc = await startCore();
    await tc.core.start();
    await tc.core.stop();
    await tc.core.stop();
  });
});
