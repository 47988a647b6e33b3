import { describe, expect, it } from 'vitest';
import { parseHostAddress, selectFor, siteNets, sitesOf, type Candidate, type HostAddress } from '../src/selection.js';
import type { SiteServerRecord, SiteRecord } from '../src/model.js';

const site = (name: string, ...subnets: string[]): SiteRecord => ({ name, subnets, createdAt: 0 });
const host = (text: string): HostAddress => {
  const a = parseHostAddress(text);
  if (!a) throw new Error(`not a host address: ${text}`);
  return a;
};

const NETS = siteNets([
  site('campus', '10.0.0.0/8'),
  site('building', '10.1.0.0/16'),
  site('lab', '10.1.2.0/24'),
  site('v6-campus', '2001:db8::/32'),
  site('v6-lab', '2001:db8:1::/48'),
]);

function server(name: string, opts: { sites?: string[]; address?: string; online?: boolean; load?: number; task?: boolean; pkg?: boolean; granted?: boolean } = {}): Candidate {
  const granted = opts.granted !== false;
  const record: SiteServerRecord = {
    id: `ss_${name}`,
    name,
    authHash: '',
    udpKey: '',
    services: {
      ...(opts.task !== false ? { task: { url: `http://${name}.example:8080` } } : {}),
      ...(opts.pkg ? { package: { constrained: false, url: `http://${name}.example:8081` } } : {}),
    },
    sites: opts.sites ?? [],
    createdAt: 0,
    grant: {
      services: granted ? { ...(opts.task !== false ? { task: true as const } : {}), ...(opts.pkg ? { package: { constrained: false } } : {}) } : {},
      addresses: opts.address ? [opts.address.split('/')[0]!] : [],
      names: [`${name}.example`],
      approvedBy: 'grant',
    },
  };
  return {
    record,
    addresses: opts.address ? [host(opts.address)] : [],
    sites: opts.sites ?? [],
    online: opts.online ?? true,
    load: opts.load ?? 0,
  };
}

const names = (r: { servers: Candidate[] }) => r.servers.map((c) => c.record.name);

describe('parseHostAddress', () => {
  it('parses a bare address without a subnet', () => {
    const a = host('10.1.2.3');
    expect(a.ip.text).toBe('10.1.2.3');
    expect(a.subnet).toBeUndefined();
  });

  it('parses address/prefix into the address and its (host bits cleared) subnet', () => {
    const a = host('10.1.2.3/24');
    expect(a.ip.text).toBe('10.1.2.3');
    expect(a.subnet?.prefix).toBe(24);
    expect(a.subnet?.network).toBe(host('10.1.2.0').ip.value);
  });

  it('parses IPv6 address/prefix', () => {
    const a = host('2001:db8:1::5/64');
    expect(a.ip.family).toBe(6);
    expect(a.subnet?.prefix).toBe(64);
  });

  it('returns undefined for garbage or an out-of-range prefix', () => {
    for (const bad of ['', 'nope', '10.1.2.3/33', '10.1.2.3/x', '2001:db8::1/129', '300.1.1.1']) expect(parseHostAddress(bad)).toBeUndefined();
  });
});

describe('sitesOf', () => {
  it('puts an IPv4 address in the site with the most specific prefix that holds it', () => {
    expect(sitesOf([host('10.1.2.3')], NETS)).toEqual(['lab']);
    expect(sitesOf([host('10.1.9.9')], NETS)).toEqual(['building']);
    expect(sitesOf([host('10.200.0.1')], NETS)).toEqual(['campus']);
  });

  it('puts an IPv6 address in the site with the most specific prefix that holds it', () => {
    expect(sitesOf([host('2001:db8:1::10')], NETS)).toEqual(['v6-lab']);
    expect(sitesOf([host('2001:db8:2::10')], NETS)).toEqual(['v6-campus']);
  });

  it('gives no site to an address outside every subnet, and never matches across families', () => {
    expect(sitesOf([host('192.168.1.1')], NETS)).toEqual([]);
    expect(sitesOf([host('::ffff:192.168.1.1')], NETS)).toEqual([]);
  });

  it('counts an IPv4-mapped IPv6 address as IPv4', () => {
    expect(sitesOf([host('::ffff:10.1.2.3')], NETS)).toEqual(['lab']);
  });

  it('gives one site per address for a multi-homed host, without duplicates', () => {
    expect(sitesOf([host('10.1.2.3/24'), host('2001:db8:1::1/64'), host('10.1.2.4')], NETS).sort()).toEqual(['lab', 'v6-lab']);
  });
});

describe('selectFor', () => {
  it("returns the servers of the agent's sites with reason 'site'", () => {
    const r = selectFor(['lab'], [host('10.1.2.3/24')], [server('a', { sites: ['lab'] }), server('b', { sites: ['building'] })], 'task');
    expect(r.reason).toBe('site');
    expect(names(r)).toEqual(['a']);
  });

  it("falls back to servers on the agent's own subnet ('subnet') when no server serves its sites", () => {
    const r = selectFor(
      ['lab'],
      [host('192.168.5.7/24')],
      [server('far', { sites: ['building'] }), server('near', { address: '192.168.5.1/24' }), server('other', { address: '192.168.6.1/24' })],
      'task',
    );
    expect(r.reason).toBe('subnet');
    expect(names(r)).toEqual(['near']);
  });

  it("falls back to the subnet rule for an agent with no sites, over IPv6 too", () => {
    const r = selectFor([], [host('fd00:1::9/64')], [server('v6', { address: 'fd00:1::1/64' }), server('v4', { address: '192.168.5.1/24' })], 'task');
    expect(r.reason).toBe('subnet');
    expect(names(r)).toEqual(['v6']);
  });

  it("does not use the subnet rule for a bare agent address (its subnet is unknown)", () => {
    const r = selectFor([], [host('192.168.5.7')], [server('near', { address: '192.168.5.1/24' })], 'task');
    expect(r.reason).toBe('any');
  });

  it("falls back to every server running the service ('any') when neither rule matches", () => {
    const r = selectFor(['lab'], [host('172.16.0.9/24')], [server('x', { sites: ['campus'] }), server('y', { address: '192.168.5.1/24' })], 'task');
    expect(r.reason).toBe('any');
    expect(names(r)).toEqual(['x', 'y']);
  });

  it('considers only servers running the requested service', () => {
    const cands = [server('task-only', { sites: ['lab'] }), server('pkg', { sites: ['lab'], task: false, pkg: true })];
    expect(names(selectFor(['lab'], [], cands, 'package'))).toEqual(['pkg']);
    expect(names(selectFor(['lab'], [], cands, 'task'))).toEqual(['task-only']);
    const none = selectFor(['lab'], [], cands, 'netboot');
    expect(none.servers).toEqual([]);
  });

  it('never selects a server for a service it states but was not granted', () => {
    const cands = [server('claims-task', { sites: ['lab'], granted: false }), server('granted', { sites: ['campus'] })];
    expect(names(selectFor(['lab'], [], cands, 'task'))).toEqual(['granted']);
  });

  it('orders online before offline, then the least loaded, then by name', () => {
    const r = selectFor(
      ['lab'],
      [],
      [
        server('d-offline-idle', { sites: ['lab'], online: false, load: 0 }),
        server('c-busy', { sites: ['lab'], load: 9 }),
        server('b-idle', { sites: ['lab'], load: 1 }),
        server('a-idle', { sites: ['lab'], load: 1 }),
      ],
      'task',
    );
    expect(names(r)).toEqual(['a-idle', 'b-idle', 'c-busy', 'd-offline-idle']);
  });

  it('keeps offline servers of the site rather than falling back to online ones elsewhere', () => {
    const r = selectFor(['lab'], [host('10.1.2.3/24')], [server('down', { sites: ['lab'], online: false }), server('up', { sites: ['campus'] })], 'task');
    expect(r.reason).toBe('site');
    expect(names(r)).toEqual(['down']);
  });
});
