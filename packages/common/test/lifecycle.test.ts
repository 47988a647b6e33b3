import { describe, expect, it } from 'vitest';
import { lifecycle } from '@outpost/common';

/** A service body that records calls and can be held open or made to fail. */
function recorder() {
  const log: string[] = [];
  let release: (() => void) | undefined;
  let failNextStart: Error | undefined;
  const impl = {
    async start() {
      log.push('start');
      if (release === undefined && hold) await new Promise<void>((r) => (release = r));
      if (failNextStart) {
        const err = failNextStart;
        failNextStart = undefined;
        throw err;
      }
      log.push('started');
    },
    async stop() {
      log.push('stop');
    },
  };
  let hold = false;
  return {
    log,
    service: lifecycle(impl),
    holdStart: () => (hold = true),
    releaseStart: () => {
      hold = false;
      release?.();
    },
    failNextStart: (err: Error) => (failNextStart = err),
  };
}

describe('lifecycle', () => {
  it('starts once however often start is called', async () => {
    const r = recorder();
    await r.service.start();
    await r.service.start();
    expect(r.log).toEqual(['start', 'started']);
  });

  it('stops once however often stop is called', async () => {
    const r = recorder();
    await r.service.start();
    await r.service.stop();
    await r.service.stop();
    expect(r.log).toEqual(['start', 'started', 'stop']);
  });

  it('does nothing on stop before start', async () => {
    const r = recorder();
    await r.service.stop();
    expect(r.log).toEqual([]);
  });

  it('makes a concurrent second start wait for the first instead of starting twice', async () => {
    const r = recorder();
    r.holdStart();
    let firstDone = false;
    const a = r.service.start().then(() => (firstDone = true));
    const b = r.service.start().then(() => firstDone);
    await Promise.resolve();
    r.releaseStart();
    expect(await b).toBe(true);
    await a;
    expect(r.log).toEqual(['start', 'started']);
  });

  it('makes stop wait for a start in progress, then stop', async () => {
    const r = recorder();
    r.holdStart();
    const starting = r.service.start();
    const stopping = r.service.stop();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(r.log).toEqual(['start']);
    r.releaseStart();
    await Promise.all([starting, stopping]);
    expect(r.log).toEqual(['start', 'started', 'stop']);
  });

  it('runs start, stop, start called back to back in order', async () => {
    const r = recorder();
    await Promise.all([r.service.start(), r.service.stop(), r.service.start()]);
    expect(r.log).toEqual(['start', 'started', 'stop', 'start', 'started']);
  });

  it('cleans up a failed start through stop, reports the error, and can start again', async () => {
    const r = recorder();
    const boom = new Error('port in use');
    r.failNextStart(boom);
    await expect(r.service.start()).rejects.toBe(boom);
    expect(r.log).toEqual(['start', 'stop']);
    // Not started: a stop is a no-op, a start runs the body again.
    await r.service.stop();
    expect(r.log).toEqual(['start', 'stop']);
    await r.service.start();
    expect(r.log).toEqual(['start', 'stop', 'start', 'started']);
  });

  it('reports a failed start to every caller waiting on it, and a later start still runs', async () => {
    const r = recorder();
    r.failNextStart(new Error('nope'));
    const results = await Promise.allSettled([r.service.start(), r.service.start()]);
    // The second call is queued behind the failed one and starts again.
    expect(results.map((x) => x.status)).toEqual(['rejected', 'fulfilled']);
    expect(r.log).toEqual(['start', 'stop', 'start', 'started']);
  });
});
