import { describe, expect, it } from 'vitest';
import { formatTable } from '@outpost/appliance';

describe('formatTable', () => {
  it('aligns columns to the widest cell, two spaces apart, with no trailing blanks', () => {
    expect(formatTable(['NAME', 'SUBNETS', 'AGENTS'], [['hq', '10.1.0.0/16', '12'], ['branch-office', '10.2.0.0/16,10.3.0.0/16', '3']])).toEqual([
      'NAME           SUBNETS                  AGENTS',
      'hq             10.1.0.0/16              12',
      'branch-office  10.2.0.0/16,10.3.0.0/16  3',
    ]);
  });

  it('prints empty cells as a dash', () => {
    expect(formatTable(['A', 'B'], [['', 'x'], ['y', '']])).toEqual(['A  B', '-  x', 'y  -']);
  });
});
