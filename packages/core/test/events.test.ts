import { describe, expect, it } from 'vitest';
import { CoreEvents } from '../src/events.js';

describe('CoreEvents', () => {
  it('runs every listener of an event in subscription order, and only those of that event', () => {
    const ev = new CoreEvents();
    const seen: string[] = [];
    ev.on('agents.changed', ({ ids }) => seen.push(`a:${ids.join(',')}`));
    ev.on('site-servers.changed', ({ ids }) => seen.push(`s:${ids.join(',')}`));
    ev.on('agents.changed', ({ ids }) => seen.push(`b:${ids.join(',')}`));
    ev.emit('agents.changed', { ids: ['ag_1', 'ag_2'] });
    expect(seen).toEqual(['a:ag_1,ag_2', 'b:ag_1,ag_2']);
    ev.emit('journal.appended', { head: 3 });
    expect(seen).toHaveLength(2);
  });

  it('a listener that throws is counted and does not stop the others or the emitter', () => {
    const ev = new CoreEvents();
    const seen: number[] = [];
    ev.on('journal.appended', () => {
      throw new Error('boom');
    });
    ev.on('journal.appended', ({ head }) => seen.push(head));
    expect(() => ev.emit('journal.appended', { head: 7 })).not.toThrow();
    expect(seen).toEqual([7]);
    expect(ev.errors.get('journal.appended')).toBe(1);
  });

  it('unsubscribes one subscription at a time, also of one function subscribed twice', () => {
    const ev = new CoreEvents();
    let n = 0;
    const fn = (): void => void n++;
    const off1 = ev.on('journal.appended', fn);
    const off2 = ev.on('journal.appended', fn);
    ev.emit('journal.appended', { head: 1 });
    expect(n).toBe(2);
    off1();
    ev.emit('journal.appended', { head: 2 });
    expect(n).toBe(3);
    off2();
    ev.emit('journal.appended', { head: 3 });
    expect(n).toBe(3);
    expect(ev.listeners('journal.appended')).toBe(0);
  });

  it('a listener added while an event is being delivered gets the next one, not this one', () => {
    const ev = new CoreEvents();
    const seen: number[] = [];
    ev.on('journal.appended', () => {
      if (ev.listeners('journal.appended') === 1) ev.on('journal.appended', ({ head }) => seen.push(head));
    });
    ev.emit('journal.appended', { head: 1 });
    ev.emit('journal.appended', { head: 2 });
    expect(seen).toEqual([2]);
  });
});
