import { createReadStream } from 'node:fs';
import { OutpostError, serialRunner, type Logger } from '@outpost/common';
import type { CoreContext } from '../module.js';
import { defaultVersion, manifestHash, packageId } from '../packages/manifest.js';
import type { FileEntry, PackageRecord } from '../packages/model.js';
import { packageService } from '../packages/module.js';
import type { PackageService } from '../packages/service.js';
import type { ArtifactDir, InstallFile } from './artifacts.js';
import { InstallErrors } from './errors.js';

/** The package the install files are published as: one version per set of artifacts. */
export const INSTALL_PACKAGE = 'outpost-agent-install';

/** The install files as a package manifest: each file at the top level under its own name. */
export const installEntries = (files: readonly InstallFile[]): FileEntry[] =>
  files.map((f) => ({ path: f.name, size: f.size, sha256: f.sha256 })).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

/** The id of the install package holding exactly `files` (name and default version from the manifest hash). */
export const installPackageId = (files: readonly InstallFile[]): string => packageId(INSTALL_PACKAGE, defaultVersion(manifestHash(installEntries(files))));

/** A codebase the installer may use as a mirror: a plain http(s) URL, no space or shell quote in it. */
const MIRROR_URL = /^https?:\/\/[^\s'"`$\\;&|<>()*?[\]{}]+$/;

export interface StageResult {
  package: { id: string; version: string };
  site: string;
  /** The site's package servers the install package is staged to, with their state. */
  servers: Array<{ id: string; name: string; state: string; codebase?: string | undefined }>;
  warnings: string[];
}

/**
 * The install files staged to a site's package servers like any package, so machines of a
 * branch download the agent from their own site rather than across the WAN. The package is
 * `outpost-agent-install` (source `install`), its version the artifacts' manifest hash: a
 * rebuilt agent is a new version, staged to the sites the old one was, and the old version
 * is deleted once the new one is enabled. The script still checks every byte against the
 * manifest the core signed: a package server is a mirror, never trusted for content.
 */
export class InstallStager {
  /** Changes that must not interleave go through this, one at a time. */
  readonly #serial = serialRunner();
  /** Sites whose restaging the install link started (once per version and site). */
  readonly #kicked = new Set<string>();

  constructor(
    private readonly ctx: CoreContext,
    private readonly artifacts: ArtifactDir,
    private readonly log: Logger,
  ) {}

  #packages(): PackageService | undefined {
    return packageService(this.ctx);
  }

  /** The site's package servers, online first. */
  #siteServers(svc: PackageService, site: string) {
    return [...svc.packageServers().values()].filter((s) => s.sites.includes(site)).sort((a, b) => Number(b.online) - Number(a.online) || a.name.localeCompare(b.name));
  }

  /**
   * Publishes the current artifacts as the install package (content copied into the core's
   * store, checked by hash) and stages it to `site`'s package servers, adding them to the
   * sites it is staged to already. Older versions are deleted, their sites carried over.
   */
  stage(site: string): Promise<StageResult> {
    return this.#serial(async () => {
      const svc = this.#packages();
      if (!svc) throw new OutpostError(InstallErrors.NO_PACKAGES, 'this core runs no packages module: install files are served by the core only', { status: 409 });
      this.ctx.registry.checkSites([site]);
      const files = await this.artifacts.list();
      if (files.length === 0) throw new OutpostError(InstallErrors.NO_AGENT, `the core has no agent to install in ${this.artifacts.dir} (npm run package:agent builds it)`, { status: 503 });
      const pkg = await this.#publish(svc, files);
      const old = [...svc.store.packages.values()].filter((p) => p.name === INSTALL_PACKAGE && p.id !== pkg.id);
      const mine = this.#siteServers(svc, site).map((s) => s.id);
      const known = new Set(svc.packageServers().keys());
      const targets = [...new Set([...pkg.targets, ...old.flatMap((p) => p.targets), ...mine])].filter((id) => known.has(id));
      const warnings: string[] = [];
      if (mine.length === 0) warnings.push(`site ${site} has no package server: its machines download the install files from the core`);
      else if (targets.some((id) => !pkg.targets.includes(id)) || !pkg.enabled) warnings.push(...(await svc.enable(pkg.id, { servers: targets })).warnings);
      for (const p of old) {
        await svc.delete(p.id);
        this.log.info({ package: p.id, version: p.version }, 'older install package deleted');
      }
      const status = svc.store.statusOf(pkg.id);
      return {
        package: { id: pkg.id, version: pkg.version },
        site,
        servers: this.#siteServers(svc, site).map((s) => ({ id: s.id, name: s.name, state: status.get(s.id)?.state ?? 'not staged', codebase: status.get(s.id)?.codebase })),
        warnings,
      };
    });
  }

  async #publish(svc: PackageService, files: readonly InstallFile[]): Promise<PackageRecord> {
    let { pkg, created } = await svc.create({ name: INSTALL_PACKAGE, files: installEntries(files) }, 'install');
    for (const f of pkg.files) {
      if (svc.content.has(f.sha256)) continue;
      const r = await svc.upload(pkg, f.path, 0, createReadStream(this.artifacts.path(f.path)), f.size);
      if (!r.complete) throw new OutpostError(InstallErrors.DIR, `${f.path} changed while it was published; try again`, { status: 409 });
    }
    pkg = svc.store.packages.get(pkg.id) ?? pkg;
    if (created) this.log.info({ package: pkg.id, version: pkg.version, files: pkg.files.length, bytes: pkg.size }, 'install files published as a package');
    return pkg;
  }

  /**
   * Where machines of `site` can download `files` (the current, signed set): the ready
   * codebases of the site's package servers holding exactly this version, online first.
   * When the site has package servers but this version is not staged to them (the agent
   * was rebuilt since), a restage starts in the background, once per version and site; the
   * core serves the files until it is ready.
   */
  mirrors(site: string, files: readonly InstallFile[]): string[] {
    const svc = this.#packages();
    if (!svc || files.length === 0) return [];
    const id = installPackageId(files);
    const servers = this.#siteServers(svc, site);
    if (servers.length === 0) return [];
    const pkg = svc.store.packages.get(id);
    if (!pkg?.enabled || servers.some((s) => !pkg.targets.includes(s.id))) {
      const key = `${id}\0${site}`;
      if (!this.#kicked.has(key)) {
        this.#kicked.add(key);
        this.stage(site).catch((err: unknown) => this.log.warn({ err, site }, 'cannot stage the install files to the site; the core serves them'));
      }
    }
    if (!pkg) return [];
    const status = svc.store.statusOf(id);
    return servers.flatMap((s) => {
      const st = status.get(s.id);
      return st?.state === 'ready' && st.codebase && MIRROR_URL.test(st.codebase) ? [st.codebase] : [];
    });
  }
}
