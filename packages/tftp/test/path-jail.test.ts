import { describe, it, expect } from 'vitest';
import { normalizeRequestPath } from '../src/index.js';

describe('request path normalisation', () => {
  it.each([
    ['boot/ipxe.efi', 'boot/ipxe.efi'],
    ['./boot//ipxe.efi', 'boot/ipxe.efi'],
    ['/boot/ipxe.efi', 'boot/ipxe.efi'],
    ['//etc/passwd', 'etc/passwd'],
  ])('maps %j inside the root to %j', (name, rel) => {
    expect(normalizeRequestPath(name, 'relative')).toEqual({ ok: true, value: rel });
  });
  it.each([
    ['../etc/passwd', 2],
    ['boot/../../x', 2],
    ['a/..', 2],
    ['..\\windows', 2],
    ['boot\\bcd', 2],
    ['a\u0000b', 2],
    ['a\u0001b', 2],
    ['bad\ufffdutf8', 2],
    ['/', 1],
    ['.', 1],
  ])('refuses %j with ERROR %i', (name, code) => {
    const v = normalizeRequestPath(name, 'relative');
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.tftpCode).toBe(code);
  });
  it('refuses absolute paths when configured to', () => {
    expect(normalizeRequestPath('/boot/x', 'reject')).toMatchObject({ ok: false, tftpCode: 2, reason: 'absolute-path' });
  });
});
