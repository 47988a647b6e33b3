import { describe, expect, it } from 'vitest';
import { classifySshFailure, parseHost } from '../../src/commands/agent-push.js';

describe('parseHost', () => {
  it('reads [user@]name[:port] and [IPv6]:port', () => {
    expect(parseHost('pc1')).toEqual({ host: 'pc1' });
    expect(parseHost('admin@pc1.example:2222')).toEqual({ host: 'pc1.example', user: 'admin', port: 2222 });
    expect(parseHost('10.0.0.5:22')).toEqual({ host: '10.0.0.5', port: 22 });
    expect(parseHost('[fe80::1]:2200')).toEqual({ host: 'fe80::1', port: 2200 });
  });

  it('refuses what ssh would read as an option or a second argument', () => {
    for (const bad of ['', '-oProxyCommand=x', 'a b', 'pc1:0', 'pc1:70000', 'u@', '@pc1', 'pc1:22:22']) expect(parseHost(bad), bad).toBeUndefined();
  });
});

describe('classifySshFailure', () => {
  it('tells a refused login from a host that did not answer', () => {
    expect(classifySshFailure('root@127.0.0.1: Permission denied (publickey).')).toBe('auth-failed');
    expect(classifySshFailure('Host key verification failed.')).toBe('auth-failed');
    expect(classifySshFailure('ssh: connect to host 127.0.0.1 port 1: Connection refused')).toBe('unreachable');
    expect(classifySshFailure('ssh: connect to host 10.9.9.9 port 22: Connection timed out')).toBe('unreachable');
    expect(classifySshFailure('ssh: Could not resolve hostname nope: Name or service not known')).toBe('unreachable');
  });
});
