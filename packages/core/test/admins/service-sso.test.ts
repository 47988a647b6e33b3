import { openDatabase, silentLogger, type Database } from '@outpost/common';
import { removeDir, tempDir } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { adminsConfigSchema } from '../../src/admins/config.js';
import { AdminsService } from '../../src/admins/service.js';
import { AdminsStore } from '../../src/admins/store.js';

let dir: string | undefined;
let db: Database | undefined;
afterEach(async () => {
  await db?.close();
  await removeDir(dir);
});

async function service(): Promise<AdminsService> {
  dir = await tempDir('outpost-admins-');
  db = await openDatabase(dir);
  const store = new AdminsStore(db);
  await store.load();
  return new AdminsService(store, adminsConfigSchema.parse({}), { now: () => Date.now() }, silentLogger(), () => true);
}

describe('single sign-on accounts', () => {
  it('keep the identity of the provider that made them: the same name from another subject is refused', async () => {
    const svc = await service();
    await svc.ssoSignIn('dana', ['viewer'], undefined, '127.0.0.1', 'https://idp.example#sub-1');
    // The next sign-in of the same person refreshes roles from the groups.
    await svc.ssoSignIn('dana', ['operator'], ['hq'], '127.0.0.1', 'https://idp.example#sub-1');
    expect(svc.get('dana')).toMatchObject({ roles: ['operator'], sites: ['hq'], sso: true, ssoSubject: 'https://idp.example#sub-1' });
    const token = await svc.createToken('dana', 'cli', undefined);
    // The provider gives "dana" to someone else: no session, and the old account's token stays hers.
    await expect(svc.ssoSignIn('dana', ['owner'], undefined, '127.0.0.1', 'https://idp.example#sub-2')).rejects.toMatchObject({ code: 'CORE_SSO_FAILED' });
    expect(svc.get('dana').roles).toEqual(['operator']);
    expect(svc.verifyToken(token.token)?.id).toBe('dana');
  });

  it('never takes over a local administrator', async () => {
    const svc = await service();
    const owner = svc.bootstrapPrincipal().admin!;
    await svc.add({ name: 'lena', roles: ['admin'] }, owner);
    await expect(svc.ssoSignIn('lena', ['owner'], undefined, undefined, 'https://idp.example#x')).rejects.toMatchObject({ code: 'CORE_SSO_FAILED' });
    expect(svc.get('lena').sso).toBeUndefined();
  });
});
