import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatCredential } from '@outpost/common';
import { createSiteIdentityStore, SiteLinkErrors, type SiteIdentity } from '@outpost/common/site-link';
import { removeDir, tempDir } from '@outpost/testing';

const identity = (id: string, secret = 's3cret'): SiteIdentity => ({ version: 1, id, credential: formatCredential({ id, secret }), coreUrl: 'http://127.0.0.1:1' });

describe('site identity store', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir('outpost-site-identity-');
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it('writes identity.json 0600 through a temp file renamed into place, and reads it back', async () => {
    const store = createSiteIdentityStore({ dir });
    expect(await store.load()).toBeUndefined();
    await store.save(identity('ss_1'));
    expect((await stat(store.file)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['identity.json']);
    expect(await store.load()).toEqual(identity('ss_1'));
  });

  it('a crash during a write (a temp file left half written) leaves the old identity, and the next write replaces it whole', async () => {
    const store = createSiteIdentityStore({ dir });
    await store.save(identity('ss_old'));
    // What a kill -9 between write and rename leaves: the temp file beside the old one.
    await writeFile(`${store.file}.${process.pid}.tmp`, '{"version":1,"id":"ss_new","cred');
    expect(await store.load()).toEqual(identity('ss_old'));
    await store.save(identity('ss_new'));
    expect(await store.load()).toEqual(identity('ss_new'));
    expect(await readdir(dir)).toEqual(['identity.json']);
  });

  it.each([
    ['not JSON', '{ nope'],
    ['a credential of another id', JSON.stringify({ ...identity('ss_1'), credential: formatCredential({ id: 'ss_2', secret: 'x' }) })],
    ['an unknown field', JSON.stringify({ ...identity('ss_1'), admin: true })],
    ['an empty id', JSON.stringify({ ...identity('ss_1'), id: '' })],
  ])('refuses a file holding %s with SITE_LINK_IDENTITY_CORRUPT naming it', async (_what, text) => {
    const store = createSiteIdentityStore({ dir });
    await writeFile(store.file, text);
    const err = await store.load().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: SiteLinkErrors.IDENTITY_CORRUPT, details: { file: store.file } });
    expect((err as Error).message).toContain(store.file);
  });

  it("uses the service's own code for a corrupt file, keeping the link's in details", async () => {
    const store = createSiteIdentityStore({ dir, codes: { IDENTITY_CORRUPT: 'PKGSRV_IDENTITY_CORRUPT' } });
    await writeFile(store.file, '[]');
    await expect(store.load()).rejects.toMatchObject({ code: 'PKGSRV_IDENTITY_CORRUPT', details: { linkCode: SiteLinkErrors.IDENTITY_CORRUPT } });
  });

  it('moves a legacy identity once to identity.json, then forgets the legacy copy', async () => {
    let legacy: unknown = { id: 'ss_9', credential: formatCredential({ id: 'ss_9', secret: 'k' }), coreUrl: 'http://core' };
    let reads = 0;
    const store = createSiteIdentityStore({
      dir,
      legacy: {
        where: 'level meta "identity"',
        read: async () => {
          reads++;
          return legacy;
        },
        forget: async () => {
          legacy = undefined;
        },
      },
    });
    expect(await store.load()).toEqual({ version: 1, id: 'ss_9', credential: formatCredential({ id: 'ss_9', secret: 'k' }), coreUrl: 'http://core' });
    expect(legacy).toBeUndefined();
    expect(JSON.parse(await readFile(store.file, 'utf8'))).toMatchObject({ version: 1, id: 'ss_9' });
    expect(await store.load()).toMatchObject({ id: 'ss_9' });
    expect(reads).toBe(1);
  });

  it("keeps a service's own fields, and rewrites a record from before `version` in today's form", async () => {
    type Gw = SiteIdentity & { certPem: string; keyPem: string };
    const store = createSiteIdentityStore<Gw>({ dir, extraFields: ['certPem', 'keyPem'] });
    const { version: _v, ...old } = { ...identity('gw_1'), certPem: 'CERT', keyPem: 'KEY' };
    await writeFile(store.file, JSON.stringify(old));
    expect(await store.load()).toEqual({ ...identity('gw_1'), certPem: 'CERT', keyPem: 'KEY' });
    expect(JSON.parse(await readFile(store.file, 'utf8'))).toMatchObject({ version: 1, certPem: 'CERT' });
    await writeFile(store.file, JSON.stringify({ ...identity('gw_1'), certPem: 'CERT' }));
    await expect(store.load()).rejects.toMatchObject({ code: SiteLinkErrors.IDENTITY_CORRUPT });
  });
});
