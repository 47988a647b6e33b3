import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadApplianceConfig } from '@outpost/appliance';
import { isOutpostError } from '@outpost/common';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/config/${name}`, import.meta.url));
const configs = (name: string): string => fileURLToPath(new URL(`../../configs/${name}`, import.meta.url));

async function failure(file: string): Promise<string> {
  try {
    await loadApplianceConfig(file);
  } catch (err) {
    if (isOutpostError(err) && err.code === 'COMMON_CONFIG_INVALID') return err.message;
    throw err;
  }
  throw new Error(`${file} loaded without an error`);
}

describe('the packageServer section', () => {
  it('runs one unconstrained package server in all-in-one, on the in-process core, data under ./var', async () => {
    const c = await loadApplianceConfig(configs('all-in-one.yaml'));
    expect(c.packageServer).toHaveLength(1);
    expect(c.packageServer![0]).toMatchObject({ name: 'local-packages', coreUrl: ['http://127.0.0.1:8080'], dataDir: './var/package-server', constrained: false, http: { port: 8081 } });
    expect(c.packageServer![0]!.http.port).toBeGreaterThan(1023);
  });

  it('runs a constrained and an unconstrained package server in branch-office, next to a core elsewhere', async () => {
    const c = await loadApplianceConfig(configs('branch-office.yaml'));
    expect(c.core).toBeUndefined();
    expect(c.packageServer!.map((p) => [p.name, p.constrained, p.coreUrl])).toEqual([
      ['branch-ps-1', false, ['http://core.example:8080']],
      ['branch-ps-2', true, ['http://core.example:8080']],
    ]);
    expect(new Set(c.packageServer!.map((p) => p.http.port)).size).toBe(2);
    expect(new Set(c.packageServer!.map((p) => p.dataDir)).size).toBe(2);
  });

  it('names every bad key of every package server in a list', async () => {
    const m = await failure(fixture('bad-package-servers.yaml'));
    expect(m).toContain('packageServer.1.name');
    expect(m).toContain('packageServer.1.http.port');
    expect(m).toContain("packageServer.1: unknown key(s) 'colour'");
    expect(m).not.toContain('packageServer.0');
  });

  it('a single section needs a coreUrl when no core runs next to it', async () => {
    const m = await failure(fixture('bad-package-server.yaml'));
    expect(m).toContain('packageServer.coreUrl');
    expect(m).toContain('packageServer.concurrency');
  });
});
