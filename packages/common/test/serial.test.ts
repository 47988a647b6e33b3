import { describe, expect, it } from 'vitest';
import { serialRunner } from '../src/serial.js';

describe('serialRunner', () => {
  it('runs queued work one at a time in order; a failure reaches its caller and the next still runs', async () => {
    const serial = serialRunner();
    const log: string[] = [];
    let running = 0;
    const step = (name: string, ms: number, fail = false) =>
      serial(async () => {
        running++;
        expect(running, `${name} ran alongside another`).toBe(1);
        log.push(`${name}:start`);
        await new Promise((r) => setTimeout(r, ms));
        log.push(`${name}:end`);
        running--;
        if (fail) throw new Error(`${name} failed`);
        return name;
      });
    const results = await Promise.allSettled([step('a', 30), step('b', 5, true), step('c', 1)]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual(['a', 'b failed', 'c']);
    expect(log).toEqual(['a:start', 'a:end', 'b:start', 'b:end', 'c:start', 'c:end']);
  });
});
