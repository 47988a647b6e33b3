import { describe, expect, it } from 'vitest';
import { PendingSignIns, type PendingSignIn } from '../../src/admins/oidc-pending.js';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

const signIn = (state: string, createdAt: number): PendingSignIn => ({ state, nonce: `n-${state}`, verifier: `v-${state}`, redirectUri: 'https://core.test/cb', createdAt });

describe('PendingSignIns', () => {
  it('gives a sign-in back once: a second take of the same state finds nothing', () => {
    const c = clock();
    const p = new PendingSignIns(c);
    p.add(signIn('s1', c.now()));
    expect(p.take('s1')?.verifier).toBe('v-s1');
    expect(p.take('s1')).toBeUndefined();
    expect(p.take('never-issued')).toBeUndefined();
  });

  it('ends a sign-in after ttl (10 minutes by default) and drops it', () => {
    const c = clock();
    const p = new PendingSignIns(c);
    p.add(signIn('old', c.now()));
    c.advance(10 * 60_000 - 1);
    p.add(signIn('young', c.now()));
    expect(p.take('old')?.state).toBe('old');
    p.add(signIn('old2', c.now()));
    c.advance(10 * 60_000);
    expect(p.take('young')).toBeUndefined();
    p.prune();
    expect(p.size).toBe(0);
  });

  it('keeps at most max sign-ins, dropping the oldest first', () => {
    const c = clock();
    const p = new PendingSignIns(c, 60_000, 3);
    for (const s of ['a', 'b', 'c']) expect(p.add(signIn(s, c.now()))).toBe(0);
    expect(p.add(signIn('d', c.now()))).toBe(1);
    expect(p.size).toBe(3);
    expect(p.take('a')).toBeUndefined();
    expect(p.take('d')?.state).toBe('d');
  });
});
