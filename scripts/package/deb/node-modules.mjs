// The production dependency tree of a workspace package, read from the workspace's
// package-lock.json and copied from its installed node_modules into a staging dir: what
// `npm ci --omit=dev` of that package alone would install, without npm or the network.
// Workspace packages (links in node_modules) are copied as real directories holding
// what `npm pack` would put in them (package.json and the package's `files`).
import { cp, mkdir, readFile, readdir, rm, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';

/** @typedef {{ name?: string, version?: string, license?: string, link?: boolean, resolved?: string, dependencies?: Record<string,string>, optionalDependencies?: Record<string,string>, peerDependencies?: Record<string,string>, peerDependenciesMeta?: Record<string,{optional?: boolean}>, os?: string[], cpu?: string[] }} LockEntry */

/** Whether an entry's `os`/`cpu` fields allow linux x64 (npm's `!name` negations included). */
function fitsLinuxX64(entry) {
  const fits = (list, value) => {
    if (!list || list.length === 0) return true;
    if (list.includes(`!${value}`)) return false;
    const positive = list.filter((v) => !v.startsWith('!'));
    return positive.length === 0 || positive.includes(value);
  };
  return fits(entry.os, 'linux') && fits(entry.cpu, 'x64');
}

/** Where node would find `name` from the package at lockfile location `from`. */
function resolveFrom(packages, from, name) {
  const parts = from === '' ? [] : from.split('/');
  for (let i = parts.length; i >= 0; i--) {
    const base = parts.slice(0, i).join('/');
    if (base.endsWith('/node_modules') || base === 'node_modules') continue;
    const at = base === '' ? `node_modules/${name}` : `${base}/node_modules/${name}`;
    if (packages[at]) return at;
  }
  return undefined;
}

/**
 * The packages `start` (a lockfile location: `appliance`, `packages/agent`) needs at run
 * time: its dependencies, optional ones that exist for linux x64, and non-optional peers,
 * transitively. Returns `{ location, target, entry, workspace }` per package, where
 * `location` is where it goes under the staging root (workspace links' contents moved under
 * the link's place) and `target` the lockfile location of its files in the workspace.
 */
export async function productionTree(root, start) {
  /** @type {{ packages: Record<string, LockEntry> }} */
  const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8'));
  const packages = lock.packages;
  if (!packages[start]) throw new Error(`${start} is not in package-lock.json`);
  /** link targets (`packages/core`) -> link locations (`node_modules/@outpost/core`) */
  const links = new Map();
  for (const [at, e] of Object.entries(packages)) if (e.link && e.resolved) links.set(e.resolved, at);
  const place = (target) => {
    for (const [t, at] of links) if (target === t || target.startsWith(`${t}/`)) return at + target.slice(t.length);
    return target;
  };
  const out = new Map();
  const queue = [start];
  let guard = 0;
  while (queue.length > 0) {
    if (++guard > 100_000) throw new Error('dependency walk did not end');
    const from = queue.shift();
    const e = packages[from];
    const needs = [
      ...Object.keys(e.dependencies ?? {}).map((n) => [n, false]),
      ...Object.keys(e.optionalDependencies ?? {}).map((n) => [n, true]),
      ...Object.keys(e.peerDependencies ?? {})
        .filter((n) => e.peerDependenciesMeta?.[n]?.optional !== true)
        .map((n) => [n, false]),
    ];
    for (const [name, optional] of needs) {
      const at = resolveFrom(packages, from, name);
      if (!at) {
        if (optional) continue;
        throw new Error(`${from || '<root>'} needs ${name}, which package-lock.json does not hold`);
      }
      const link = packages[at];
      const target = link.link ? link.resolved : at;
      if (out.has(target)) continue;
      const entry = packages[target];
      if (!fitsLinuxX64(entry)) {
        if (optional) continue;
        throw new Error(`${name} (${target}) is not for linux x64`);
      }
      out.set(target, { location: place(target), target, entry, workspace: Boolean(link.link), name });
      queue.push(target);
    }
  }
  return [...out.values()].sort((a, b) => a.location.localeCompare(b.location));
}

/** Dotfiles of a package (.npmignore, .eslintrc, .github...): its authors' tooling, not run time. */
const DOTFILE = /\/\./;

/** Folders of prebuilt binaries that are not for linux x64: not shipped. */
const FOREIGN_PREBUILD = /^(?!linux-x64$)/;

/**
 * Copies `tree` (from {@link productionTree}) from the workspace at `root` into `dest`
 * (a `node_modules` parent: `dest/node_modules/...`). Third-party packages are copied
 * whole but for their nested node_modules (placed by their own entries) and prebuilt
 * binaries for other platforms; workspace packages get package.json and their `files`.
 */
export async function copyTree(root, tree, dest) {
  for (const p of tree) {
    const from = join(root, p.target);
    const to = join(dest, p.location);
    await mkdir(to, { recursive: true });
    if (p.workspace) {
      const manifest = JSON.parse(await readFile(join(from, 'package.json'), 'utf8'));
      for (const f of ['package.json', ...(manifest.files ?? [])]) {
        const s = await stat(join(from, f)).catch(() => undefined);
        if (!s) throw new Error(`${p.name}: ${f} is missing (run the build first)`);
        await cp(join(from, f), join(to, f), { recursive: true, filter: (src) => !src.endsWith('.tsbuildinfo') });
      }
      continue;
    }
    for (const name of await readdir(from)) {
      if (name === 'node_modules') continue;
      await cp(join(from, name), join(to, name), { recursive: true, verbatimSymlinks: true, filter: (src) => !DOTFILE.test(src.slice(from.length)) });
    }
    const prebuilds = join(to, 'prebuilds');
    const platforms = await readdir(prebuilds).catch(() => []);
    for (const platform of platforms) if (FOREIGN_PREBUILD.test(platform)) await rm(join(prebuilds, platform), { recursive: true, force: true });
    // musl builds beside the glibc ones (node-gyp-build picks by libc): Debian is glibc.
    for (const f of await readdir(join(prebuilds, 'linux-x64')).catch(() => [])) if (/[.]musl[.]/.test(f)) await rm(join(prebuilds, 'linux-x64', f), { force: true });
  }
}

/** `name version license` of each package in `tree`, for the copyright file. */
export async function licenses(root, tree) {
  const out = [];
  for (const p of tree) {
    const manifest = JSON.parse(await readFile(join(root, p.target, 'package.json'), 'utf8'));
    const license = typeof manifest.license === 'string' ? manifest.license : (manifest.license?.type ?? 'see its package');
    out.push({ name: manifest.name ?? p.name, version: manifest.version ?? '', license, location: posix.normalize(p.location) });
  }
  return out;
}
