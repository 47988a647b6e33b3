import { describe, expect, it } from 'vitest';
import { DatagramStamper, decodeDatagram, openDatagram, ReplayGuard } from '@outpost/common';
import { encode, KEY, NOW } from './fixtures.js';

describe('ReplayGuard', () => {
  it('accepts the first stamp of a sender and drops the same stamp again', () => {
    const g = new ReplayGuard();
    expect(g.check('a', NOW, 0, NOW)).toBe('ok');
    expect(g.check('a', NOW, 0, NOW)).toBe('replay');
  });

  it('accepts a higher sequence in the same millisecond and drops a lower one', () => {
    const g = new ReplayGuard();
    expect(g.check('a', NOW, 5, NOW)).toBe('ok');
    expect(g.check('a', NOW, 4, NOW)).toBe('replay');
    expect(g.check('a', NOW, 6, NOW)).toBe('ok');
  });

  it('drops a reordered (older) datagram even with a higher sequence', () => {
    const g = new ReplayGuard();
    expect(g.check('a', NOW, 0, NOW)).toBe('ok');
    expect(g.check('a', NOW - 1, 99, NOW)).toBe('replay');
  });

  it('accepts a restarted sender whose clock moved on, its sequence back at 0', () => {
    const g = new ReplayGuard();
    expect(g.check('a', NOW, 1000, NOW)).toBe('ok');
    expect(g.check('a', NOW + 1, 0, NOW + 1)).toBe('ok');
  });

  it('keeps stamps per sender', () => {
    const g = new ReplayGuard();
    expect(g.check('a', NOW, 3, NOW)).toBe('ok');
    expect(g.check('b', NOW, 3, NOW)).toBe('ok');
    expect(g.check('b', NOW, 3, NOW)).toBe('replay');
  });

  it('drops stamps outside the clock window either way; the window edges are inside', () => {
    const g = new ReplayGuard({ windowMs: 1000 });
    expect(g.check('a', NOW - 1001, 0, NOW)).toBe('stale');
    expect(g.check('b', NOW + 1001, 0, NOW)).toBe('future');
    expect(g.check('c', NOW - 1000, 0, NOW)).toBe('ok');
    expect(g.check('d', NOW + 1000, 0, NOW)).toBe('ok');
    // Rejected stamps leave no state behind.
    expect(g.size).toBe(2);
  });

  it('uses a 120 s window by default', () => {
    const g = new ReplayGuard();
    expect(g.check('a', NOW - 120_000, 0, NOW)).toBe('ok');
    expect(g.check('b', NOW - 120_001, 0, NOW)).toBe('stale');
    expect(g.check('c', NOW + 120_001, 0, NOW)).toBe('future');
  });

  it('never remembers more than maxSenders, forgetting the least recently heard first', () => {
    const g = new ReplayGuard({ maxSenders: 3 });
    g.check('a', NOW, 0, NOW);
    g.check('b', NOW, 0, NOW);
    g.check('c', NOW, 0, NOW);
    g.check('a', NOW + 1, 0, NOW + 1); // a is heard again: b is now the idlest
    expect(g.check('d', NOW + 2, 0, NOW + 2)).toBe('ok');
    expect(g.size).toBe(3);
    // a and c are remembered (their replays are caught); b was forgotten.
    expect(g.check('a', NOW + 1, 0, NOW + 2)).toBe('replay');
    expect(g.check('c', NOW, 0, NOW + 2)).toBe('replay');
    expect(g.check('b', NOW, 0, NOW + 2)).toBe('ok');
    for (let i = 0; i < 100; i++) {
      g.check(`s${i}`, NOW + 3, 0, NOW + 3);
      expect(g.size).toBeLessThanOrEqual(3);
    }
  });

  it('prunes every stale sender at once when full', () => {
    const g = new ReplayGuard({ windowMs: 1000, maxSenders: 3 });
    g.check('a', NOW, 0, NOW);
    g.check('b', NOW, 0, NOW);
    g.check('c', NOW + 5000, 0, NOW + 5000);
    expect(g.check('d', NOW + 5000, 0, NOW + 5000)).toBe('ok');
    expect(g.size).toBe(2);
  });
});

describe('DatagramStamper', () => {
  const isIncreasing = (a: { timestamp: number; seq: number }, b: { timestamp: number; seq: number }): boolean =>
    b.timestamp > a.timestamp || (b.timestamp === a.timestamp && b.seq > a.seq);

  it('starts the sequence at 0 in each new millisecond', () => {
    let t = NOW;
    const s = new DatagramStamper(() => t);
    expect(s.next()).toEqual({ timestamp: NOW, seq: 0 });
    expect(s.next()).toEqual({ timestamp: NOW, seq: 1 });
    t += 1;
    expect(s.next()).toEqual({ timestamp: NOW + 1, seq: 0 });
  });

  it('stays strictly increasing when the clock stands still', () => {
    const s = new DatagramStamper(() => NOW);
    let prev = s.next();
    for (let i = 0; i < 10_000; i++) {
      const cur = s.next();
      expect(isIncreasing(prev, cur)).toBe(true);
      prev = cur;
    }
  });

  it('stays strictly increasing when the clock goes back', () => {
    const times = [NOW, NOW + 10, NOW - 60_000, NOW - 60_000, NOW + 5, NOW + 10, NOW + 11, NOW];
    let i = 0;
    const s = new DatagramStamper(() => times[i++]!);
    const stamps = times.map(() => s.next());
    for (let k = 1; k < stamps.length; k++) expect(isIncreasing(stamps[k - 1]!, stamps[k]!)).toBe(true);
    expect(stamps.map((x) => x.timestamp)).toEqual([NOW, NOW + 10, NOW + 10, NOW + 10, NOW + 10, NOW + 10, NOW + 11, NOW + 11]);
  });

  it('stays strictly increasing on the wire when the clock has sub-millisecond resolution', () => {
    let t = NOW + 0.25;
    const s = new DatagramStamper(() => t);
    const first = s.next();
    t = NOW + 0.75;
    const second = s.next();
    const onWire = [first, second].map((st) => {
      const r = decodeDatagram(encode(st));
      if (!r.ok) throw new Error(r.error);
      return { timestamp: r.value.timestamp, seq: r.value.seq };
    });
    expect(isIncreasing(onWire[0]!, onWire[1]!)).toBe(true);
  });

  it('gives stamps a receiver accepts in order, across a sender restart', () => {
    const guard = new ReplayGuard();
    let t = NOW;
    let s = new DatagramStamper(() => t);
    for (let i = 0; i < 50; i++) {
      expect(openDatagram(encode(s.next()), () => KEY, guard, t).ok).toBe(true);
    }
    t += 1;
    s = new DatagramStamper(() => t); // restart: fresh stamper, the clock moved on
    expect(openDatagram(encode(s.next()), () => KEY, guard, t).ok).toBe(true);
  });
});
