import { join } from 'node:path';
import { silentLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { grantFor } from '@outpost/testing';
import { createPackageServer, packageServerConfigSchema, type PackageServer } from '@outpost/package-server';

/**
 * A core and a package server named `name` enrolled with it, both started on 127.0.0.1
 * with every port 0, their data under `<dir>/core` and `<dir>/ps`. Stop `ps`, then `core`.
 */
export async function startCoreAndPackageServer(dir: string, name: string): Promise<{ core: Core; ps: PackageServer }> {
  const core = createCore(validateConfig(coreConfigSchema, { dataDir: join(dir, 'core'), http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 } }, { file: 'test' }), {
    logger: silentLogger(),
  });
  await core.start();
  const { token } = await core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ package: { constrained: false } }) });
  const ps = createPackageServer(
    validateConfig(
      packageServerConfigSchema,
      { name, coreUrl: core.url, dataDir: join(dir, 'ps'), enrollToken: token, http: { port: 0 }, tickle: { port: 0 }, reserveBytes: 0, watchStore: false },
      { file: 'test' },
    ),
  );
  await ps.start();
  return { core, ps };
}
