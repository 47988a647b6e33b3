import { describe, expect, it } from 'vitest';
import { canonicalHost, claimsBeyond, hostApproved, migratedGrant, tickleHost, urlHost, withinGrant } from '../src/grant.js';
import type { SiteServerGrant, SiteServerRecord } from '../src/model.js';

const grant: SiteServerGrant = { services: { task: true, package: { constrained: true } }, addresses: ['10.1.0.5', '2001:db8::5'], names: ['ts.example'], approvedBy: 'grant' };

describe('grants', () => {
  it('compares hosts canonically: IPv6 brackets, IPv4-mapped, case and a trailing dot', () => {
    expect(canonicalHost('[2001:DB8:0::5]')).toBe('2001:db8::5');
    expect(canonicalHost('::ffff:10.1.0.5')).toBe('10.1.0.5');
    expect(canonicalHost('TS.Example.')).toBe('ts.example');
    expect(urlHost('http://[2001:db8::5]:80/x')).toBe('2001:db8::5');
    expect(urlHost('not a url')).toBeUndefined();
    expect(tickleHost('[2001:db8::5]:4000')).toBe('2001:db8::5');
    expect(hostApproved(grant, 'ts.example')).toBe(true);
    expect(hostApproved(grant, '10.1.0.6')).toBe(false);
    // A name that looks like an approved address's text is still a name.
    expect(hostApproved({ addresses: [], names: ['10.1.0.5'] }, '10.1.0.5')).toBe(false);
  });

  it('lists every claim beyond a grant: a service, constrained, a URL host, a tickle host', () => {
    expect(claimsBeyond(grant, { task: { url: 'http://ts.example:1' }, package: { constrained: true, url: 'http://10.1.0.5:2' } }, '[2001:db8::5]:4000')).toEqual([]);
    expect(
      claimsBeyond(grant, { netboot: {}, package: { constrained: false, url: 'http://evil.example:1' }, task: { url: 'http://10.1.0.6:1' } }, '10.9.0.1:4000'),
    ).toEqual([
      'task URL host \'10.1.0.6\' is not approved',
      'package service must be constrained',
      'package URL host \'evil.example\' is not approved',
      "service 'netboot' is not granted",
      "tickle address host '10.9.0.1' is not approved",
    ]);
  });

  it('keeps of a record only what a narrowed grant allows', () => {
    const narrowed: SiteServerGrant = { ...grant, services: { package: { constrained: true } }, names: [] };
    expect(withinGrant(narrowed, { task: { url: 'http://10.1.0.5:1' }, package: { constrained: true, url: 'http://ts.example:2' } })).toEqual({});
    expect(withinGrant(narrowed, { package: { constrained: true, url: 'http://10.1.0.5:2' } })).toEqual({ package: { constrained: true, url: 'http://10.1.0.5:2' } });
  });

  it('grants a record from before grants what it ran', () => {
    const old = { id: 'ss_1', name: 'old', authHash: '', udpKey: '', createdAt: 0, sites: [], address: '10.1.0.5/16', tickleAddress: '127.0.0.1:4000', services: { package: { constrained: false, url: 'http://PKG.example:8081' } } } as unknown as SiteServerRecord;
    expect(migratedGrant(old)).toEqual({ services: { package: { constrained: false } }, addresses: ['127.0.0.1', '10.1.0.5'], names: ['pkg.example'], approvedBy: 'enrollment' });
  });
});
