import { describe, expect, it } from 'vitest';
import { grantOf, groupsOf, nameOf } from '../../src/admins/oidc-claims.js';

const mapping = {
  'it-helpdesk': { roles: ['viewer'], sites: ['hq'] },
  'branch-north': { roles: ['operator'], sites: ['north', 'hq'] },
  'it-admins': { roles: ['admin'] },
};

describe('grantOf', () => {
  it('answers undefined for a user in no mapped group', () => {
    expect(grantOf(mapping, ['sales', 'everyone'])).toBeUndefined();
    expect(grantOf(mapping, [])).toBeUndefined();
  });

  it('unions the roles and sites of every mapped group the user is in', () => {
    expect(grantOf(mapping, ['branch-north', 'everyone', 'it-helpdesk'])).toEqual({ groups: ['it-helpdesk', 'branch-north'], roles: ['viewer', 'operator'], sites: ['hq', 'north'] });
  });

  it('leaves the user unscoped when any mapped group has no sites', () => {
    expect(grantOf(mapping, ['it-helpdesk', 'it-admins'])).toEqual({ groups: ['it-helpdesk', 'it-admins'], roles: ['viewer', 'admin'], sites: undefined });
  });

  it('does not match groups by prototype names or case', () => {
    expect(grantOf(mapping, ['constructor', '__proto__', 'IT-HELPDESK'])).toBeUndefined();
  });
});

describe('claims', () => {
  it('reads groups from an array of strings or a single string, and nothing else', () => {
    expect(groupsOf(['a', 1, 'b', null])).toEqual(['a', 'b']);
    expect(groupsOf('a')).toEqual(['a']);
    expect(groupsOf({ a: true })).toEqual([]);
    expect(groupsOf(undefined)).toEqual([]);
  });

  it('lowercases a name and refuses a missing or non-string one', () => {
    expect(nameOf('Hanna.K')).toBe('hanna.k');
    expect(nameOf('')).toBeUndefined();
    expect(nameOf(['hanna'])).toBeUndefined();
    expect(nameOf(undefined)).toBeUndefined();
  });
});
