import { describe, expect, it } from 'vitest';
import { auditConfigSchema } from '../../src/audit/config.js';

describe('audit config', () => {
  it('defaults: a year or a million entries, no export', () => {
    expect(auditConfigSchema.parse(undefined)).toEqual({
      retention: { maxAge: 365 * 86_400_000, maxEntries: 1_000_000, interval: 3_600_000 },
      coalesceRefusals: 60_000,
      maxFieldBytes: 16_384,
      stream: { maxClients: 16, keepAlive: 25_000 },
      export: {},
    });
    expect(auditConfigSchema.parse({ export: { syslog: { host: 'siem.example' } } }).export.syslog).toEqual({ host: 'siem.example', port: 514, protocol: 'udp', facility: 'local0', appName: 'outpost' });
  });

  it.each([
    [{ retention: { maxAge: 'forever' } }, 'retention.maxAge'],
    [{ retention: { keep: 1 } }, 'retention'],
    [{ export: { syslog: { host: 'x', protocol: 'tls' } } }, 'export.syslog.protocol'],
    [{ export: { syslog: { host: 'x', facility: 'local9' } } }, 'export.syslog.facility'],
    [{ export: { syslog: { host: 'x', appName: 'has space' } } }, 'export.syslog.appName'],
    [{ export: { syslog: { host: 'x', port: 0 } } }, 'export.syslog.port'],
    [{ colour: 'red' }, ''],
  ])('refuses %j (at %s)', (input, path) => {
    const r = auditConfigSchema.safeParse(input);
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path.join('.'))).toContain(path);
  });
});
