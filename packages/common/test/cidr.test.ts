import { describe, expect, it } from 'vitest';
import { cidrContains, CommonErrors, mostSpecific, OutpostError, parseCidr, parseIp } from '@outpost/common';

function cidrError(text: string): OutpostError {
  try {
    parseCidr(text);
  } catch (err) {
    expect(err).toBeInstanceOf(OutpostError);
    return err as OutpostError;
  }
  throw new Error(`parseCidr(${JSON.stringify(text)}) did not throw`);
}

const ip = (text: string) => {
  const a = parseIp(text);
  if (!a) throw new Error(`not an address: ${text}`);
  return a;
};

describe('parseIp', () => {
  it('parses IPv4 and IPv6 addresses to family, integer value and canonical text', () => {
    expect(parseIp('10.1.2.3')).toEqual({ family: 4, value: 0x0a010203n, text: '10.1.2.3' });
    expect(parseIp(' 192.168.0.1 ')).toEqual({ family: 4, value: 0xc0a80001n, text: '192.168.0.1' });
    expect(parseIp('2001:DB8:0:0:0:0:0:1')).toEqual({ family: 6, value: 0x20010db8000000000000000000000001n, text: '2001:db8::1' });
    expect(parseIp('::')).toEqual({ family: 6, value: 0n, text: '::' });
  });

  it.each(['::ffff:10.1.2.3', '::FFFF:10.1.2.3', '::ffff:a01:203', '0:0:0:0:0:ffff:10.1.2.3'])(
    'treats the IPv4-mapped IPv6 address %s as IPv4 10.1.2.3',
    (text) => {
      expect(parseIp(text)).toEqual({ family: 4, value: 0x0a010203n, text: '10.1.2.3' });
    },
  );

  it.each(['', 'x', '10.1.2', '10.1.2.3.4', '256.1.1.1', '010.1.2.3', '127.1', '0x7f.0.0.1', '1', '0x7f000001', '4294967295', '2001:db8::g', '1:2:3:4:5:6:7:8:9'])(
    'rejects %j, including the loose inet_aton forms',
    (text) => {
      expect(parseIp(text)).toBeUndefined();
    },
  );
});

describe('parseCidr', () => {
  it('parses IPv4 and IPv6 networks to family, network, prefix and canonical text', () => {
    expect(parseCidr('10.1.0.0/16')).toEqual({ family: 4, network: 0x0a010000n, prefix: 16, text: '10.1.0.0/16' });
    expect(parseCidr('2001:DB8::/32')).toEqual({ family: 6, network: 0x20010db8n << 96n, prefix: 32, text: '2001:db8::/32' });
    expect(parseCidr('0.0.0.0/0').prefix).toBe(0);
    expect(parseCidr('10.1.2.3/32').text).toBe('10.1.2.3/32');
    expect(parseCidr('::1/128').text).toBe('::1/128');
  });

  it('rejects host bits set with COMMON_BAD_CIDR (400) and suggests the network', () => {
    const err = cidrError('10.1.2.3/16');
    expect(err.code).toBe(CommonErrors.BAD_CIDR);
    expect(err.status).toBe(400);
    expect(err.details).toEqual({ cidr: '10.1.2.3/16' });
    expect(err.message).toContain('did you mean 10.1.0.0/16?');
    expect(cidrError('2001:db8::1/32').message).toContain('did you mean 2001:db8::/32?');
  });

  it.each([
    ['10.1.0.0', /address\/prefix/],
    ['10.1.0.0/', /prefix length must be a number/],
    ['10.1.0.0/x', /prefix length must be a number/],
    ['10.1.0.0/-1', /prefix length must be a number/],
    ['10.1.0.0/1000', /prefix length must be a number/],
    ['10.1.0.0/33', /0\.\.32/],
    ['::/129', /0\.\.128/],
    ['10.1.0/16', /not an IPv4 or IPv6 address/],
    ['/16', /not an IPv4 or IPv6 address/],
    ['0/0', /not an IPv4 or IPv6 address/],
    ['::ffff:10.0.0.0/104', /not an IPv4 or IPv6 address/],
    ['::FFFF:10.0.0.0/8', /not an IPv4 or IPv6 address/],
    ['0:0:0:0:0:ffff:10.0.0.0/8', /not an IPv4 or IPv6 address/],
  ])('rejects %j with COMMON_BAD_CIDR saying why', (text, why) => {
    const err = cidrError(text);
    expect(err.code).toBe(CommonErrors.BAD_CIDR);
    expect(err.message).toMatch(why);
  });
});

describe('cidrContains', () => {
  it('holds the addresses of the network and nothing outside it', () => {
    const net = parseCidr('10.1.0.0/16');
    expect(cidrContains(net, ip('10.1.0.0'))).toBe(true);
    expect(cidrContains(net, ip('10.1.255.255'))).toBe(true);
    expect(cidrContains(net, ip('10.0.255.255'))).toBe(false);
    expect(cidrContains(net, ip('10.2.0.0'))).toBe(false);
    const v6 = parseCidr('2001:db8::/32');
    expect(cidrContains(v6, ip('2001:db8:ffff::1'))).toBe(true);
    expect(cidrContains(v6, ip('2001:db9::1'))).toBe(false);
  });

  it('matches an IPv4-mapped IPv6 address (as sockets report it) against an IPv4 network', () => {
    expect(cidrContains(parseCidr('10.1.0.0/16'), ip('::ffff:10.1.2.3'))).toBe(true);
  });

  it('never matches across families, not even /0', () => {
    expect(cidrContains(parseCidr('0.0.0.0/0'), ip('2001:db8::1'))).toBe(false);
    expect(cidrContains(parseCidr('::/0'), ip('10.1.2.3'))).toBe(false);
    expect(cidrContains(parseCidr('0.0.0.0/0'), ip('10.1.2.3'))).toBe(true);
    expect(cidrContains(parseCidr('::/0'), ip('2001:db8::1'))).toBe(true);
  });
});

describe('mostSpecific', () => {
  const entries = ['10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/24', '0.0.0.0/0', '2001:db8::/32'].map((c) => ({ name: c, cidr: parseCidr(c) }));

  it('picks the longest prefix that holds the address, whatever the order', () => {
    expect(mostSpecific(entries, ip('10.1.2.3'))?.name).toBe('10.1.2.0/24');
    expect(mostSpecific([...entries].reverse(), ip('10.1.2.3'))?.name).toBe('10.1.2.0/24');
    expect(mostSpecific(entries, ip('10.1.3.1'))?.name).toBe('10.1.0.0/16');
    expect(mostSpecific(entries, ip('10.9.9.9'))?.name).toBe('10.0.0.0/8');
    expect(mostSpecific(entries, ip('192.168.1.1'))?.name).toBe('0.0.0.0/0');
    expect(mostSpecific(entries, ip('::ffff:10.1.2.3'))?.name).toBe('10.1.2.0/24');
  });

  it('returns undefined when no entry holds the address (family mismatch included)', () => {
    expect(mostSpecific(entries, ip('2001:db9::1'))).toBeUndefined();
    expect(mostSpecific(entries.slice(0, 3), ip('192.168.1.1'))).toBeUndefined();
    expect(mostSpecific([], ip('10.1.2.3'))).toBeUndefined();
  });
});
