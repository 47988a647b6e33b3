import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadApplianceConfig, SERVICE_SECTIONS } from '@outpost/appliance';
import { isOutpostError } from '@outpost/common';

const SECTIONS = ['log', ...SERVICE_SECTIONS].join(', ');
const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/config/${name}`, import.meta.url));
const configs = (name: string): string => fileURLToPath(new URL(`../../configs/${name}`, import.meta.url));

async function failure(file: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: string; message: string }> {
  try {
    await loadApplianceConfig(file, env);
  } catch (err) {
    if (isOutpostError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error(`${file} loaded without an error`);
}

describe('loadApplianceConfig', () => {
  it('rejects an unknown top-level key, naming the file, the key and the known sections', async () => {
    const f = await failure(fixture('unknown-top-key.yaml'));
    expect(f.code).toBe('COMMON_CONFIG_INVALID');
    expect(f.message).toContain(fixture('unknown-top-key.yaml'));
    expect(f.message).toContain("(top level): unknown key(s) 'bogus'");
    expect(f.message).toContain(`the top-level sections are: ${SECTIONS}`);
  });

  it('says a section of a later release is not available yet (not "unknown key")', async () => {
    const f = await failure(fixture('future-section.yaml'));
    expect(f.code).toBe('APPLIANCE_SERVICE_UNAVAILABLE');
    expect(f.message).toMatch(/'tftp'.*does not have yet/);
  });

  it('names a bad nested key of a service section with its full path', async () => {
    const f = await failure(fixture('nested-unknown.yaml'));
    expect(f.code).toBe('COMMON_CONFIG_INVALID');
    expect(f.message).toMatch(/core\.http: unknown key\(s\) 'prot'/);
  });

  it("checks the agent section with the agent's schema, reporting every bad key", async () => {
    const f = await failure(fixture('bad-agent.yaml'));
    expect(f.code).toBe('COMMON_CONFIG_INVALID');
    expect(f.message).toContain('agent.heartbeat.via');
    expect(f.message).toContain('agent.coreUrl'); // no core in this file to default it to
  });

  it('refuses a config that names no service', async () => {
    const f = await failure(fixture('no-service.yaml'));
    expect(f.code).toBe('COMMON_CONFIG_INVALID');
    expect(f.message).toMatch(/names no service/);
  });

  it('lists the bad keys of every section in one error', async () => {
    const f = await failure(fixture('many-problems.yaml'));
    expect(f.message.split('\n').slice(1)).toEqual([
      '  - log.level: Invalid option: expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent"',
      "  - core.http: unknown key(s) 'prot'",
      "  - (top level): unknown key(s) 'cores'",
      '  - agent.heartbeat.via: Invalid option: expected one of "auto"|"udp"|"http"',
      `  (the top-level sections are: ${SECTIONS})`,
    ]);
  });

  it('rejects a bad log level', async () => {
    expect((await failure(fixture('bad-log-level.yaml'))).message).toMatch(/log\.level/);
  });

  it("defaults a local agent's coreUrl to the in-process core's configured URL", async () => {
    const c = await loadApplianceConfig(fixture('core-and-agent.yaml'));
    expect(c.core?.http.port).toBe(9090);
    expect(c.agent?.coreUrl).toEqual(['http://127.0.0.1:9090']);
    expect(c.agent?.name).toBe('here');
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('applies OUTPOST_* environment overrides before validating', async () => {
    const c = await loadApplianceConfig(fixture('core-and-agent.yaml'), { OUTPOST_CORE__HTTP__PORT: '7070', OUTPOST_LOG__LEVEL: 'warn' });
    expect(c.core?.http.port).toBe(7070);
    expect(c.agent?.coreUrl).toEqual(['http://127.0.0.1:7070']);
    expect(c.log.level).toBe('warn');
    expect((await failure(fixture('core-and-agent.yaml'), { OUTPOST_CORE__HTTP__PORT: '"eighty"' })).message).toMatch(/core\.http\.port/);
  });

  it('loads the shipped configs', async () => {
    const aio = await loadApplianceConfig(configs('all-in-one.yaml'));
    expect(aio.core).toMatchObject({ dataDir: './var/core', http: { host: '127.0.0.1', port: 8080 }, datagram: { port: 50123 } });
    expect(aio.agent).toMatchObject({ dataDir: './var/agent', coreUrl: ['http://127.0.0.1:8080'] });
    const core = await loadApplianceConfig(configs('core.yaml'));
    expect(core.core).toMatchObject({ dataDir: '/var/lib/outpost/core', http: { host: '0.0.0.0' } });
    expect(core.agent).toBeUndefined();
    const agent = await loadApplianceConfig(configs('agent.yaml'));
    expect(agent.core).toBeUndefined();
    expect(agent.agent?.enrollTokenFile).toBe('/etc/outpost/agent-enroll-token');
    expect(aio.gateway).toMatchObject({ listen: { host: '127.0.0.1', port: 8443 }, cores: [{ url: ['http://127.0.0.1:8080'] }] });
    const gw = await loadApplianceConfig(configs('gateway.yaml'));
    expect(gw.gateway).toMatchObject({ listen: { port: 8443 }, cores: [{ enrollTokenFile: './var/gateway/enroll-token' }] });
    expect(gw.core).toBeUndefined();
  });
});
