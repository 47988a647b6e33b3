import { OutpostError } from '@outpost/common';
import { PackageErrors } from './errors.js';
import type { ServerStatusRecord } from './model.js';

/** A package server as staging sees it. */
export interface PackageServerInfo {
  id: string;
  name: string;
  constrained: boolean;
  /** Base URL of its HTTP listener (codebases are `<url>/packages/<id>`). */
  url: string;
  /** Sites it serves (assigned, or through its address). */
  sites: readonly string[];
  online: boolean;
}

/** Where a package server may fetch a package's files: `<url>/<path>`. */
export interface Source {
  url: string;
  /** `core`: send the site server's bearer credential. */
  kind: 'core' | 'codebase';
  serverId?: string;
  /** The source is in one of the fetching server's sites. */
  inSite?: boolean;
}

const sharesSite = (a: PackageServerInfo, b: PackageServerInfo): boolean => a.sites.some((s) => b.sites.includes(s));
const byKindThenName = (a: PackageServerInfo, b: PackageServerInfo): number =>
  Number(a.constrained) - Number(b.constrained) || a.name.localeCompare(b.name) || a.id.localeCompare(b.id);

export interface TargetPlan {
  targets: string[];
  /** Unconstrained servers added to feed constrained targets in their sites. */
  feeders: string[];
  warnings: string[];
}

/**
 * Which package servers an enable stages to, in wave order: the listed ids as given,
 * else those of a site, else all (unconstrained first, then by name). A constrained
 * target needs an unconstrained server in one of its sites to feed it; when one exists
 * but is not a target it is added just before (a warning says so); when none exists the
 * enable is refused with `CORE_PACKAGE_NO_FEEDER`, naming the sites. With no server at all
 * an enable of "all" is refused (`CORE_PACKAGE_NO_SERVERS`) unless `allowNone` (a core whose
 * child cores stage the package to theirs, or a child applying its parent's enable).
 */
export function planTargets(
  all: readonly PackageServerInfo[],
  input: { servers?: readonly string[] | undefined; site?: string | undefined },
  opts: { allowNone?: boolean } = {},
): TargetPlan {
  const byId = new Map(all.map((s) => [s.id, s]));
  let chosen: PackageServerInfo[];
  if (input.servers && input.servers.length > 0) {
    chosen = [];
    for (const id of input.servers) {
      const s = byId.get(id) ?? all.find((x) => x.name === id);
      if (!s) {
        throw new OutpostError(PackageErrors.NOT_A_PACKAGE_SERVER, `'${id}' is not a package server (no site server with that id or name runs the package service)`, {
          status: 404,
          details: { server: id },
        });
      }
      if (!chosen.includes(s)) chosen.push(s);
    }
  } else if (input.site !== undefined) {
    chosen = all.filter((s) => s.sites.includes(input.site!)).sort(byKindThenName);
    if (chosen.length === 0) throw new OutpostError(PackageErrors.NO_SERVERS, `no package server serves site '${input.site}'`, { status: 409 });
  } else {
    chosen = [...all].sort(byKindThenName);
    if (chosen.length === 0 && opts.allowNone) return { targets: [], feeders: [], warnings: [] };
    if (chosen.length === 0) throw new OutpostError(PackageErrors.NO_SERVERS, 'no package servers are enrolled', { status: 409 });
  }
  const out: PackageServerInfo[] = [];
  const feeders: string[] = [];
  const warnings: string[] = [];
  const orphans: { server: string; sites: readonly string[] }[] = [];
  for (const s of chosen) {
    if (s.constrained) {
      const feeding = all.filter((f) => !f.constrained && sharesSite(f, s)).sort(byKindThenName);
      if (feeding.length === 0) {
        orphans.push({ server: s.name, sites: s.sites });
        continue;
      }
      if (!feeding.some((f) => out.includes(f) || chosen.includes(f))) {
        const f = feeding[0]!;
        out.push(f);
        feeders.push(f.id);
        warnings.push(`added unconstrained package server ${f.name} to feed constrained ${s.name} (site ${f.sites.filter((x) => s.sites.includes(x)).join(', ')})`);
      }
    }
    if (!out.includes(s)) out.push(s);
  }
  if (orphans.length > 0) {
    const sites = [...new Set(orphans.flatMap((o) => o.sites))];
    throw new OutpostError(
      PackageErrors.NO_FEEDER,
      `constrained package server(s) ${orphans.map((o) => o.server).join(', ')} ${sites.length ? `in site(s) ${sites.join(', ')} ` : 'with no site '}have no unconstrained package server in their site to fetch from; enroll one there first`,
      { status: 409, details: { servers: orphans.map((o) => o.server), sites } },
    );
  }
  return { targets: out.map((s) => s.id), feeders, warnings };
}

/** Why a released-eligible target still waits, or undefined when it may start. */
export function waitingFor(
  target: PackageServerInfo,
  targets: readonly string[],
  status: ReadonlyMap<string, ServerStatusRecord>,
  servers: ReadonlyMap<string, PackageServerInfo>,
): string | undefined {
  const inSiteReady = targets.some((id) => {
    const o = servers.get(id);
    return id !== target.id && o !== undefined && sharesSite(o, target) && status.get(id)?.state === 'ready';
  });
  if (inSiteReady) return undefined;
  if (target.constrained) return 'a ready package server in its site';
  // One unconstrained server per site crosses the WAN; the others follow from it.
  const crossing = targets.find((id) => {
    const o = servers.get(id);
    const st = status.get(id);
    return id !== target.id && o !== undefined && !o.constrained && sharesSite(o, target) && st?.released === true && st.state !== 'failed';
  });
  return crossing ? `package server ${servers.get(crossing)!.name} to bring it into the site` : undefined;
}

/**
 * The targets to release now: in wave order, while fewer than `maxServers` (0: no
 * limit) released servers are pending or downloading. Servers that must wait for a
 * source in their site are passed over (they stay queued) without blocking later ones.
 */
export function nextReleases(
  targets: readonly string[],
  status: ReadonlyMap<string, ServerStatusRecord>,
  servers: ReadonlyMap<string, PackageServerInfo>,
  maxServers: number,
): string[] {
  let active = 0;
  for (const id of targets) {
    const st = status.get(id);
    if (st?.released && (st.state === 'pending' || st.state === 'downloading') && servers.has(id)) active++;
  }
  let slots = maxServers === 0 ? Number.POSITIVE_INFINITY : maxServers - active;
  const out: string[] = [];
  const view = new Map(status);
  for (const id of targets) {
    if (slots <= 0) break;
    const s = servers.get(id);
    const st = view.get(id);
    if (!s || st?.released) continue;
    if (waitingFor(s, targets, view, servers) !== undefined) continue;
    out.push(id);
    view.set(id, { ...(st ?? { packageId: '', serverId: id, state: 'pending', bytesDone: 0, bytesTotal: 0, updatedAt: 0 }), released: true });
    slots--;
  }
  return out;
}

/**
 * Where `server` may fetch a package from, best first: ready codebases in its own sites
 * (unconstrained first); then, for an unconstrained server only, `upstream` (a parent
 * core's package servers, for a package sent down by it), the core (when it holds the
 * content: `coreFilesUrl` given) and ready codebases elsewhere. A constrained server never
 * gets a source outside its sites.
 */
export function sourcesFor(
  server: PackageServerInfo,
  packageId: string,
  targets: readonly string[],
  status: ReadonlyMap<string, ServerStatusRecord>,
  servers: ReadonlyMap<string, PackageServerInfo>,
  coreFilesUrl: string | undefined,
  upstream: readonly Source[] = [],
): Source[] {
  const ready = targets
    .filter((id) => id !== server.id && status.get(id)?.state === 'ready' && servers.has(id))
    .map((id) => servers.get(id)!)
    .sort(byKindThenName);
  const codebase = (s: PackageServerInfo, inSite: boolean): Source => ({ url: `${s.url}/packages/${packageId}`, kind: 'codebase', serverId: s.id, inSite });
  const out = ready.filter((s) => sharesSite(s, server)).map((s) => codebase(s, true));
  if (!server.constrained) {
    out.push(...upstream);
    if (coreFilesUrl !== undefined) out.push({ url: coreFilesUrl, kind: 'core' });
    for (const s of ready) if (!sharesSite(s, server)) out.push(codebase(s, false));
  }
  return out;
}
