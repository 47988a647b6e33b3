import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import { expectPositionals, listOptions } from '../../src/commands/list-options.js';

const parse = (...args: string[]) =>
  listOptions(
    parseArgs({ args, allowPositionals: true, tokens: true, strict: true, options: { role: { type: 'string', multiple: true }, site: { type: 'string', multiple: true }, json: { type: 'boolean' } } }).tokens,
    ['role', 'site'],
  );

describe('listOptions', () => {
  it('collects repeated, comma-separated and trailing values of list options', () => {
    expect(parse('alice', '--role', 'viewer', '--role=operator', '--site', 'hq,lab', 'dc1')).toEqual({ positionals: ['alice'], lists: { role: ['viewer', 'operator'], site: ['hq', 'lab', 'dc1'] } });
  });

  it('ends a list at another option or at --, and leaves lists not given undefined', () => {
    expect(parse('--role', 'viewer', '--json', 'alice')).toEqual({ positionals: ['alice'], lists: { role: ['viewer'], site: undefined } });
    expect(parse('--role', 'viewer', '--', 'alice')).toEqual({ positionals: ['alice'], lists: { role: ['viewer'], site: undefined } });
    expect(parse('--role', ',,')).toEqual({ positionals: [], lists: { role: [], site: undefined } });
  });
});

describe('expectPositionals', () => {
  it('names the first missing positional, or the first extra one', () => {
    expect(expectPositionals(['bob', 'at_1'], ['NAME', 'ID'], 'x')).toEqual(['bob', 'at_1']);
    expect(() => expectPositionals(['bob'], ['NAME', 'ID'], 'x')).toThrow('missing ID');
    expect(() => expectPositionals(['bob', 'at_1', 'z'], ['NAME', 'ID'], 'x')).toThrow("unexpected argument 'z' (expected NAME ID)");
  });
});
