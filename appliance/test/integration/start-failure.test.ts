import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadApplianceConfig, ServiceStartError, startAppliance, type Appliance } from '@outpost/appliance';
import { silentLogger } from '@outpost/common';
import { removeDir, tempDir } from '@outpost/testing';

let dir: string;
let running: Appliance | undefined;
beforeEach(async () => {
  dir = await tempDir('outpost-startfail-');
});
afterEach(async () => {
  await running?.stop();
  running = undefined;
  await removeDir(dir);
});

async function config(): Promise<Awaited<ReturnType<typeof loadApplianceConfig>>> {
  const file = join(dir, 'outpost.yaml');
  await writeFile(
    file,
    `core:\n  dataDir: ${join(dir, 'core')}\n  http: { port: 0 }\n  datagram: { host: 127.0.0.1, port: 0 }\nagent:\n  dataDir: ${join(dir, 'agent')}\n  name: t\n  tasks: { tickleHost: 127.0.0.1, ticklePort: 0 }\n`,
  );
  return loadApplianceConfig(file);
}

describe('startAppliance', () => {
  it('gives an agent next to a core the real URL of a port-0 core and enrolls it', async () => {
    running = await startAppliance(await config(), { logger: silentLogger() });
    expect(running.services.map((s) => s.name)).toEqual(['core', 'agent']);
    expect(running.core?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(running.core?.url).not.toMatch(/:0$/);
    expect(running.agent?.id).toMatch(/\S/);
  });

  it('stops the core when the agent fails to start, and reports the agent error code', async () => {
    await mkdir(join(dir, 'agent'), { recursive: true });
    await writeFile(join(dir, 'agent', 'identity.json'), '{ not json');
    const c = await config();
    const started: string[] = [];
    const err = await startAppliance(c, { logger: silentLogger(), onStarting: (s) => void started.push(s) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(started).toEqual(['core', 'agent']);
    expect(err).toBeInstanceOf(ServiceStartError);
    expect(err).toMatchObject({ service: 'agent', code: 'AGENT_IDENTITY_CORRUPT' });
    expect((err as Error).message).toMatch(/^agent failed to start: .*identity/);
    // The core was stopped: its database is free for the next start.
    await writeFile(join(dir, 'agent', 'identity.json'), '');
    await removeDir(join(dir, 'agent'));
    running = await startAppliance(c, { logger: silentLogger() });
    expect(running.agent?.id).toBeDefined();
  });
});
