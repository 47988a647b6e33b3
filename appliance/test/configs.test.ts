import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadApplianceConfig } from '@outpost/appliance';

const dir = fileURLToPath(new URL('../../configs/', import.meta.url));

describe('the shipped configs', () => {
  it('every file in configs/ loads against the services schemas', async () => {
    const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml'));
    expect(files).toContain('core-ha.yaml');
    for (const f of files) await expect(loadApplianceConfig(`${dir}${f}`), f).resolves.toBeDefined();
  });

  it('core-ha.yaml runs a core on PostgreSQL with both database hosts, leases and a shared content dir', async () => {
    const c = await loadApplianceConfig(`${dir}core-ha.yaml`);
    expect(c.core?.store).toMatchObject({ kind: 'postgres', table: 'outpost_core' });
    const url = (c.core?.store as { url: string }).url;
    expect(url).toContain('db1.example:5432,db2.example:5432');
    expect(url).toContain('target_session_attrs=read-write');
    expect(c.core?.leases.ttl).toBe(6_000);
    expect(c.core?.packages?.contentDir).toBe('/srv/outpost/content');
  });
});
