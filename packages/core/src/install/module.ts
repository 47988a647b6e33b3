import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OutpostError } from '@outpost/common';
import { CA_FILES, certificateFingerprint } from '../ca/authority.js';
import type { CoreConfig } from '../config.js';
import type { CoreContext, CoreModule } from '../module.js';
import { loadOrCreateWorkKey } from '../tasks/work-key.js';
import { ArtifactDir } from './artifacts.js';
import { installConfigSchema } from './config.js';
import { InstallErrors } from './errors.js';
import { signManifest } from './manifest.js';
import { installAdminRoutes, installRoutes, type InstallDeps } from './routes.js';
import { InstallStager } from './stage.js';

/** The repo's `dist-pkg` (where `npm run package:*` writes), from this file's place in packages/core. */
const repoDistPkg = (): string => fileURLToPath(new URL('../../../../dist-pkg', import.meta.url));

/** `install.dir`, else the repo's dist-pkg when it exists, else `<dataDir>/install`. */
export function installDir(core: CoreConfig): string {
  const configured = (core.install ?? installConfigSchema.parse({})).dir;
  if (configured !== undefined) return configured;
  const repo = repoDistPkg();
  return existsSync(repo) ? repo : join(core.dataDir, 'install');
}

/**
 * The one-line enrollment link: `GET /install/agent.sh?token=T` (a POSIX installer for
 * one live agent token), the signed manifest and the files of the install directory.
 * See README.md here. Starts after `ca` and `tasks` (their CA and work key exist then).
 */
export function createInstallModule(coreConfig: CoreConfig): CoreModule {
  let deps: InstallDeps | undefined;
  return {
    name: 'install',
    async start(ctx: CoreContext) {
      const artifacts = new ArtifactDir(installDir(coreConfig));
      const { key } = await loadOrCreateWorkKey(coreConfig.dataDir);
      const caFile = join(coreConfig.dataDir, CA_FILES.dir, CA_FILES.cert);
      let pem: string;
      try {
        pem = await readFile(caFile, 'utf8');
      } catch (cause) {
        throw new OutpostError(InstallErrors.DIR, `cannot read the core's CA certificate ${caFile}: ${(cause as Error).message}`, { cause, details: { file: caFile } });
      }
      deps = {
        artifacts,
        sign: async (coreUrl) => signManifest(key.privateKey, coreUrl, await artifacts.list()),
        workKeyPem: key.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
        ca: { pem, fingerprint: certificateFingerprint(pem) },
        stager: new InstallStager(ctx, artifacts, ctx.log.child({ module: 'install' })),
      };
      ctx.log.info({ dir: artifacts.dir, files: (await artifacts.list()).map((f) => f.name) }, 'install files');
    },
    routes(router) {
      if (!deps) throw new Error('install module: routes before start');
      installAdminRoutes(router, deps);
    },
    publicRoutes(router, ctx) {
      if (!deps) throw new Error('install module: routes before start');
      installRoutes(router, ctx, deps);
    },
  };
}
