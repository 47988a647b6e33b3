import { describe, expect, it } from 'vitest';
import { decodeRequestHead, encodeRefusal, parseAuthority } from '../src/request-head.js';

describe('request head codec', () => {
  it('decodes a CONNECT head and keeps the bytes after it', () => {
    const r = decodeRequestHead(Buffer.from('CONNECT core.example:8080 HTTP/1.1\r\nHost: core.example:8080\r\n\r\nHELLO'), 8192);
    expect(r.kind).toBe('head');
    if (r.kind !== 'head') return;
    expect(r.head).toMatchObject({ method: 'CONNECT', target: 'core.example:8080', version: 'HTTP/1.1' });
    expect(r.head.headers.get('host')).toBe('core.example:8080');
    expect(r.head.rest.toString()).toBe('HELLO');
  });
  it('waits for more, refuses an oversized head, and never throws on garbage', () => {
    expect(decodeRequestHead(Buffer.from('CONNECT a:1 HTTP/1.1\r\n'), 8192).kind).toBe('incomplete');
    expect(decodeRequestHead(Buffer.alloc(9000, 0x41), 8192).kind).toBe('too-large');
    for (let i = 0; i < 500; i++) {
      const junk = Buffer.from(Array.from({ length: 64 }, () => Math.floor(Math.random() * 256)));
      const r = decodeRequestHead(Buffer.concat([junk, Buffer.from('\r\n\r\n')]), 8192);
      expect(['bad', 'head']).toContain(r.kind);
    }
    expect(decodeRequestHead(Buffer.from('CONNECT  a:1 HTTP/1.1\r\n\r\n'), 8192).kind).toBe('bad');
    expect(decodeRequestHead(Buffer.from('CONNECT a:1 HTTP/1.1\r\nno colon\r\n\r\n'), 8192).kind).toBe('bad');
  });
  it('normalises authorities and rejects what is not host:port', () => {
    expect(parseAuthority('Core.Example:8080')).toBe('core.example:8080');
    expect(parseAuthority('[::1]:443')).toBe('[::1]:443');
    for (const bad of ['core', 'core:0', 'core:70000', 'a b:1', 'http://x:1']) expect(parseAuthority(bad)).toBeUndefined();
  });
  it('encodes a refusal as a complete HTTP answer with a JSON error', () => {
    const text = encodeRefusal(403, 'GATEWAY_CERT_REVOKED', 'revoked', { 'retry-after': 7 }).toString();
    expect(text.startsWith('HTTP/1.1 403 Forbidden\r\n')).toBe(true);
    expect(text).toContain('retry-after: 7');
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toEqual({ error: { code: 'GATEWAY_CERT_REVOKED', message: 'revoked' } });
  });
});
