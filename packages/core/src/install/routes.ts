import { createReadStream } from 'node:fs';
import type { Router } from '@koa/router';
import { OutpostError, publicRoute, readJson, validate, z, type AppState } from '@outpost/common';
import { can } from '../admins/guard.js';
import { siteInScope } from '../admins/scope.js';
import { checkEnrollToken } from '../enrollment.js';
import type { TokenRecord } from '../model.js';
import type { CoreContext } from '../module.js';
import { name as siteName } from '../routes/schemas.js';
import { AGENT_FILE, agentDeb, FILE_NAME, type ArtifactDir } from './artifacts.js';
import { InstallErrors } from './errors.js';
import type { SignedManifest } from './manifest.js';
import { installScript } from './script.js';
import type { InstallStager } from './stage.js';

/** What the routes need beyond the core context: the artifacts, the work key, the CA. */
export interface InstallDeps {
  artifacts: ArtifactDir;
  sign(coreUrl: string): Promise<SignedManifest>;
  workKeyPem: string;
  /** The core's CA certificate (PEM) and the sha256 (hex) of its DER. */
  ca: { pem: string; fingerprint: string };
  /** Stages the install files to sites' package servers; their mirrors for a site's link. */
  stager: InstallStager;
}

const stageBody = z.strictObject({ site: siteName });
const scriptQuery = z.strictObject({ token: z.string().min(1).max(512) });
const fileParams = z.strictObject({ name: z.string().regex(FILE_NAME, 'a file name of the manifest') });

const refused = (): OutpostError => new OutpostError(InstallErrors.TOKEN_REFUSED, 'this link is not valid (ask your administrator for a new one)', { status: 401 });

/** The record of `token` when it is a live agent enrollment token with a use left (enrollment's own check). Never spends it. */
function liveAgentToken(ctx: CoreContext, token: string): TokenRecord | undefined {
  try {
    return checkEnrollToken(ctx.registry.store.tokens, token, 'agent', ctx.clock.now());
  } catch {
    return undefined;
  }
}

/** Admin routes: stage the install files to a site's package servers. */
export function installAdminRoutes(router: Router<AppState>, deps: InstallDeps): void {
  router.post('/api/v1/install/stage', can('packages.enable'), async (k) => {
    const { site } = await readJson(k, stageBody);
    siteInScope(k, site);
    k.body = await deps.stager.stage(site);
  });
}

/** Public routes (no credential): the installer, the manifest and the files. */
export function installRoutes(router: Router<AppState>, ctx: CoreContext, deps: InstallDeps): void {
  router.get('/install/agent.sh', publicRoute(), async (k) => {
    const { token } = validate(scriptQuery, k.query, 'query');
    // A token made on another core sharing the store may not have reached this one yet.
    let record = liveAgentToken(ctx, token);
    if (!record) {
      await ctx.store.sync();
      record = liveAgentToken(ctx, token);
      if (!record) throw refused();
    }
    const coreUrl = ctx.url();
    const signed = await deps.sign(coreUrl);
    const single = signed.files.find((f) => f.name === AGENT_FILE);
    const deb = agentDeb(signed.files);
    if (!single && !deb) {
      throw new OutpostError(InstallErrors.NO_AGENT, `the core has no agent to install in ${deps.artifacts.dir} (npm run package:agent builds it)`, { status: 503 });
    }
    // A site's token downloads from the site's package servers first (still checked against the signed manifest).
    const mirrors = record.site !== undefined && ctx.registry.store.sites.has(record.site) ? deps.stager.mirrors(record.site, signed.files) : [];
    k.set('cache-control', 'no-store');
    k.type = 'text/x-shellscript; charset=utf-8';
    k.body = installScript({
      coreUrl,
      coreUrls: [coreUrl],
      token,
      caPem: coreUrl.startsWith('https:') ? deps.ca.pem : undefined,
      mirrors,
      caFingerprint: deps.ca.fingerprint,
      workKeyPem: deps.workKeyPem,
      manifest: signed.manifest,
      signature: signed.signature,
      agentFile: single?.name ?? '',
      debFile: deb?.name ?? '',
    });
  });

  router.get('/install/manifest', publicRoute(), async (k) => {
    k.body = await deps.sign(ctx.url());
  });

  router.get('/install/files/:name', publicRoute(), async (k) => {
    const { name } = validate(fileParams, k.params, 'path');
    const file = (await deps.artifacts.list()).find((f) => f.name === name);
    if (!file) throw new OutpostError(InstallErrors.FILE_NOT_FOUND, `no install file '${name}'`, { status: 404 });
    k.type = 'application/octet-stream';
    k.length = file.size;
    k.set('x-outpost-sha256', file.sha256);
    k.body = createReadStream(deps.artifacts.path(name));
  });
}
