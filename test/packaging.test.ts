// PACKAGING (slow-ish, ~5-10 s): each service packs on its own with `npm pack -w`, and
// its tarball installs outside the workspace and runs. The install is `npm ci --offline`
// from a lockfile derived from the workspace's (test/fixtures/pack-lock.ts): every
// third-party package at the version and integrity the workspace installed, so it needs
// only the tarballs the workspace's `npm ci` put in the npm cache, on any machine. (A
// plain `npm install` of the tarballs needs each dependency's full registry metadata,
// which only a cache warmed by an earlier `npm install` holds.) Everything happens in a
// temp dir; the network is never used.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '@outpost/testing';
import { lockForTarballs, type Lockfile, type PackedTarball } from './fixtures/pack-lock.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Service packages that must pack and install alone (agent and others once they exist). */
const PACKAGES = ['common', 'pg-level', 'core', 'agent'].filter((p) => existsSync(join(ROOT, 'packages', p, 'package.json'))).map((p) => `@outpost/${p}`);

/**
 * npm's environment without the npm_* settings of an enclosing `npm test` (its prefix
 * would send the install into the workspace), except the cache: the install must use the
 * cache the workspace was installed from.
 */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) || /^npm_config_cache$/i.test(k)) env[k] = v;
  return env;
}

interface Packed {
  name: string;
  version: string;
  filename: string;
  integrity: string;
  files: { path: string }[];
}

/** The package.json inside a tarball, as npm will install it. */
async function packedManifest(tarball: string): Promise<PackedTarball['manifest']> {
  const { stdout } = await run('tar', ['-xzOf', tarball, 'package/package.json'], { maxBuffer: 1024 * 1024 });
  return JSON.parse(stdout) as PackedTarball['manifest'];
}

let dir: string;
let packed: Packed[];

beforeAll(async () => {
  dir = await tempDir('outpost-pack-');
  const args = ['pack', ...PACKAGES.flatMap((p) => ['-w', p]), '--pack-destination', dir, '--json'];
  const { stdout } = await run('npm', args, { cwd: ROOT, env: npmEnv(), timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
  packed = JSON.parse(stdout) as Packed[];
}, 90_000);

afterAll(async () => removeDir(dir));

describe('packaging', () => {
  it('packs each service with its built code, README and package.json only', () => {
    expect(packed.map((p) => p.name).sort()).toEqual([...PACKAGES].sort());
    for (const p of packed) {
      const paths = p.files.map((f) => f.path);
      expect(paths, p.name).toContain('dist/index.js');
      expect(paths, p.name).toContain('dist/index.d.ts');
      expect(paths, p.name).toContain('package.json');
      expect(paths.filter((f) => !/^(dist\/|bin\/|package\.json$|README\.md$|LICENSE)/.test(f)), p.name).toEqual([]);
    }
  });

  it('lets each service depend only on @outpost/common (and the core on its store library) among our packages', async () => {
    const allowed: Record<string, string[]> = { '@outpost/pg-level': [], '@outpost/core': ['@outpost/common', '@outpost/pg-level'] };
    for (const name of PACKAGES.filter((p) => p !== '@outpost/common')) {
      const pkg = JSON.parse(await readFile(join(ROOT, 'packages', name.slice('@outpost/'.length), 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
      const ours = Object.keys(pkg.dependencies ?? {}).filter((d) => d.startsWith('@outpost/'));
      expect(ours.sort(), name).toEqual(allowed[name] ?? ['@outpost/common']);
    }
  });

  it(
    'installs the tarballs offline into an empty project, which starts a core and enrolls an agent',
    async () => {
      const project = join(dir, 'project');
      await mkdir(project, { recursive: true });
      const tarballs = await Promise.all(
        packed.map(async (p): Promise<PackedTarball> => ({ manifest: await packedManifest(join(dir, p.filename)), spec: `file:../${p.filename}`, integrity: p.integrity })),
      );
      const rootLock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as Lockfile;
      const { dependencies, lockfile } = lockForTarballs('outpost-pack-check', rootLock, tarballs);
      await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'outpost-pack-check', private: true, type: 'module', dependencies }, null, 2));
      await writeFile(join(project, 'package-lock.json'), JSON.stringify(lockfile, null, 2));
      await run('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: project, env: npmEnv(), timeout: 60_000 });
      // npm ls reads the installed package.json files: it fails if any declared dependency
      // (of a tarball or of what it pulled in) is missing or out of range, or if anything
      // installed is needed by nothing.
      await run('npm', ['ls', '--all', '--offline'], { cwd: project, env: npmEnv(), timeout: 30_000, maxBuffer: 4 * 1024 * 1024 });

      await writeFile(
        join(project, 'check.mjs'),
        `import { createCore, coreConfigSchema } from '@outpost/core';
import { validateConfig, silentLogger } from '@outpost/common';
const dataDir = process.argv[2];
const core = createCore(validateConfig(coreConfigSchema, { dataDir: dataDir + '/core', http: { port: 0 }, datagram: { host: '127.0.0.1', port: 0 } }, { file: 'inline' }), { logger: silentLogger() });
await core.start();
const health = await (await fetch(core.url + '/api/v1/health')).json();
const result = { health: health.status, resolved: import.meta.resolve('@outpost/core') };
if (process.argv[3] === 'agent') {
  const { createAgent, agentConfigSchema } = await import('@outpost/agent');
  const { token } = await core.createEnrollmentToken({ for: 'agent', uses: 1 });
  const agent = createAgent(validateConfig(agentConfigSchema, { coreUrl: core.url, dataDir: dataDir + '/agent', enrollToken: token, name: 'packed', tasks: { enabled: false } }, { file: 'inline' }), {});
  await agent.start();
  result.agentId = agent.id;
  await agent.stop();
}
await core.stop();
console.log(JSON.stringify(result));
`,
      );
      const withAgent = PACKAGES.includes('@outpost/agent');
      const { stdout } = await run(process.execPath, ['check.mjs', join(dir, 'data'), withAgent ? 'agent' : ''], { cwd: project, timeout: 30_000 });
      const result = JSON.parse(stdout) as { health: string; resolved: string; agentId?: string };
      expect(result.health).toBe('ok');
      // Resolved from the installed tarball, not from the workspace.
      expect(fileURLToPath(result.resolved).startsWith(join(project, 'node_modules', '@outpost', 'core'))).toBe(true);
      if (withAgent) expect(result.agentId).toMatch(/\S/);
    },
    90_000,
  );
});
