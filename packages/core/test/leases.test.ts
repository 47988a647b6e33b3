import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '@outpost/common';
import { LEASES, LEASE_NAMES, Leases } from '../src/leases.js';

describe('Leases on level (no backend)', () => {
  it('holds every lease, with token 1, runs onAcquired work at once, and holds none after stop', async () => {
    const leases = new Leases({ holder: 'core-1:1:ab', ttlMs: 6_000, log: silentLogger() });
    await leases.start();
    expect(leases.heldNames()).toEqual(LEASE_NAMES);
    for (const n of LEASE_NAMES) {
      expect(leases.held(n)).toBe(true);
      expect(leases.token(n)).toBe(1);
      expect(leases.takeovers[n]).toBe(1);
    }
    let resumed = 0;
    leases.onAcquired('tasks.server-runs', () => resumed++);
    expect(resumed).toBe(1);
    await leases.stop();
    expect(leases.heldNames()).toEqual([]);
    expect(leases.token('tasks.expiry')).toBeUndefined();
  });

  it('lists every lease in the README table with what it guards, and nothing extra', async () => {
    const readme = await readFile(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');
    const section = readme.slice(readme.indexOf('## Leases'));
    const rows = [...section.matchAll(/^\| `([a-z.-]+)` \| (.+) \|$/gm)].map((m) => [m[1], m[2]]);
    expect(Object.fromEntries(rows)).toEqual(LEASES);
  });
});
