import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLoop } from '../src/loop.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('createLoop', () => {
  it('runs the body at the delay it returns, and an error handler delay after a failure', async () => {
    const runs: number[] = [];
    let fail = false;
    const loop = createLoop(async () => {
      runs.push(Date.now());
      if (fail) throw new Error('down');
      return 1_000;
    }, () => 5_000);
    const t0 = Date.now();
    loop.start(0);
    await vi.advanceTimersByTimeAsync(2_500);
    expect(runs.map((t) => t - t0)).toEqual([0, 1_000, 2_000]);
    fail = true;
    await vi.advanceTimersByTimeAsync(1_000); // run at 3000 fails → next at 8000
    await vi.advanceTimersByTimeAsync(4_000);
    expect(runs.length).toBe(4);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(runs.length).toBe(5);
    await loop.stop();
  });

  it('trigger() runs now, and once more after a run in progress; stop() waits for the run', async () => {
    let release: () => void = () => undefined;
    let runs = 0;
    const loop = createLoop(async () => {
      runs++;
      await new Promise<void>((r) => (release = r));
      return 60_000;
    }, () => 60_000);
    loop.start(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(runs).toBe(1);
    loop.trigger();
    loop.trigger();
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(runs).toBe(2);
    let stopped = false;
    const stopping = loop.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(runs).toBe(2);
    expect(loop.running).toBe(false);
  });
});
