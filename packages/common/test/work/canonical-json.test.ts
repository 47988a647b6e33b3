import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/work/canonical-json.js';

describe('canonicalJson', () => {
  it('sorts keys at every depth, drops undefined members and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 'x', null, true], c: undefined, b: 'é' } })).toBe('{"a":{"b":"é","d":[1,"x",null,true]},"b":1}');
    expect(canonicalJson({ z: 1, a: 2 })).toBe(canonicalJson({ a: 2, z: 1 }));
    expect(canonicalJson([undefined])).toBe('[null]');
    expect(canonicalJson('a"\n')).toBe(JSON.stringify('a"\n'));
  });

  it('yields undefined, never throws, for what is not plain JSON', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    for (const bad of [Number.NaN, Infinity, 1n, () => 1, Symbol('x'), new Date(0), cyclic, deep, { a: new Map() }]) expect(canonicalJson(bad)).toBeUndefined();
  });
});
