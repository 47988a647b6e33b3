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
    ev.emit('agent.enrolled', { agent: { id: 'ag_3' } as never });
    expect(seen).toHaveLength(2);
  });

  it('a listener that throws is counted and does not stop the others or the emitter', () => {
    const ev = new CoreEvents();
    const seen: string[] = [];
    ev.on('site-servers.changed', () => {
      throw new Error('boom');
    });
    ev.on('site-servers.changed', ({ ids }) => seen.push(ids[0]!));
    expect(() => ev.emit('site-servers.changed', { ids: ['ss_7'] })).not.toThrow();
    expect(seen).toEqual(['ss_7']);
    expect(ev.errors.get('site-servers.changed')).toBe(1);
  });

  it('unsubscribes one subscription at a time, also of one function subscribed twice', () => {
    const ev = new CoreEvents();
    let n = 0;
    const fn = (): void => void n++;
    const off1 = ev.on('site-servers.changed', fn);
    const off2 = ev.on('site-servers.changed', fn);
    ev.emit('site-servers.changed', { ids: ['ss_1'] });
    expect(n).toBe(2);
    off1();
    ev.emit('site-servers.changed', { ids: ['ss_2'] });
    expect(n).toBe(3);
    off2();
    ev.emit('site-servers.changed', { ids: ['ss_3'] });
    expect(n).toBe(3);
    expect(ev.listeners('site-servers.changed')).toBe(0);
  });

  it('a listener added while an event is being delivered gets the next one, not this one', () => {
    const ev = new CoreEvents();
    const seen: string[] = [];
    ev.on('site-servers.changed', () => {
      if (ev.listeners('site-servers.changed') === 1) ev.on('site-servers.changed', ({ ids }) => seen.push(ids[0]!));
    });
    ev.emit('site-servers.changed', { ids: ['ss_1'] });
    ev.emit('site-servers.changed', { ids: ['ss_2'] });
    expect(seen).toEqual(['ss_2']);
  });
});
