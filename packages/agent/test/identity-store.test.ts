import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '@outpost/testing';
import { AgentErrors, createIdentityStore, type Identity } from '../src/index.js';

const identity: Identity = {
  version: 1,
  id: 'ag_abc',
  credential: 'ag_abc.s3cret',
  coreUrl: 'http://127.0.0.1:8080',
  datagramPort: 50123,
  heartbeatIntervalMs: 300_000,
  configPollIntervalMs: 1_800_000,
  enrolledAt: '2026-01-01T00:00:00.000Z',
};

let dir: string;
beforeEach(async () => {
  dir = await tempDir('outpost-agent-id-');
});
afterEach(async () => {
  await removeDir(dir);
});

describe('identity store', () => {
  it('has nothing before enrollment', async () => {
    expect(await createIdentityStore(join(dir, 'agent')).load()).toBeUndefined();
  });

  it('writes the identity with mode 0600, atomically (no temp file left), and reads it back', async () => {
    const store = createIdentityStore(join(dir, 'agent'));
    await store.save(identity);
    expect(await store.load()).toEqual(identity);
    expect((await stat(store.file)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(dir, 'agent'))).toEqual(['identity.json']);
    await store.save({ ...identity, datagramPort: 1 });
    expect((await store.load())?.datagramPort).toBe(1);
    await store.clear();
    expect(await store.load()).toBeUndefined();
  });

  it.each([
    ['not JSON', '{'],
    ['a wrong shape', '{"version":1}'],
    ['a credential for another id', JSON.stringify({ ...identity, credential: 'ag_other.s3cret' })],
    ['unknown keys', JSON.stringify({ ...identity, extra: 1 })],
  ])('refuses a file holding %s with AGENT_IDENTITY_CORRUPT', async (_what, text) => {
    const store = createIdentityStore(dir);
    await writeFile(store.file, text);
    await expect(store.load()).rejects.toMatchObject({ code: AgentErrors.IDENTITY_CORRUPT });
  });

  it('moves an identity aside with its task journals, keeping both under the tag, and holds none after', async () => {
    const data = join(dir, 'agent');
    const store = createIdentityStore(data);
    await store.save({ ...identity, machineId: 'aaaa' });
    await mkdir(join(data, 'tasks/runs'), { recursive: true });
    await writeFile(join(data, 'tasks/runs/r1.json'), '{}');
    expect(await store.moveAside('cloned-t1')).toBe(join(data, 'identity.cloned-t1.json'));
    expect(await store.load()).toBeUndefined();
    expect((await readdir(data)).sort()).toEqual(['identity.cloned-t1.json', 'tasks.cloned-t1']);
    expect(await readdir(join(data, 'tasks.cloned-t1/runs'))).toEqual(['r1.json']);
    // No task journals: the identity alone.
    await store.save(identity);
    await store.moveAside('cloned-t2');
    expect(await readdir(data)).toContain('identity.cloned-t2.json');
  });
});
