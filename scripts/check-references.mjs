#!/usr/bin/env node
// Keeps tsconfig project references in step with package.json dependencies on our own
// workspaces, and checks every workspace is in the root solution tsconfig.json.
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { join, dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const readJson = (p) => JSON.parse(readFileSync(p, 'utf8'));
const byName = new Map();
// Workspaces are folders or `folder/*` globs (the only glob form npm's list here uses).
const workspaceDirs = rootPkg.workspaces.flatMap((ws) =>
  ws.endsWith('/*')
    ? readdirSync(join(root, ws.slice(0, -2)), { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => join(root, ws.slice(0, -2), d.name))
    : [join(root, ws)],
);
for (const dir of workspaceDirs) {
  if (!existsSync(join(dir, 'package.json'))) continue;
  byName.set(readJson(join(dir, 'package.json')).name, dir);
}
// Service packages depend on @outpost/common and on library workspaces (netboot on
// @outpost/tftp, the core on @outpost/pg-level) and on nothing else of ours at run time;
// only the appliance composes them (ARCHITECTURE.md).
const allowedRuntime = { '@outpost/netboot': ['@outpost/common', '@outpost/tftp'], '@outpost/core': ['@outpost/common', '@outpost/pg-level'] };
const problems = [];
const solution = readJson(join(root, 'tsconfig.json'));
const solutionRefs = new Set(solution.references.map((r) => resolve(root, r.path)));
for (const [name, dir] of byName) {
  if (!solutionRefs.has(dir)) problems.push(`tsconfig.json does not reference ${relative(root, dir)} (${name})`);
  const pkg = readJson(join(dir, 'package.json'));
  const tsconfig = readJson(join(dir, 'tsconfig.json'));
  const refs = new Set((tsconfig.references ?? []).map((r) => resolve(dir, r.path)));
  const deps = { ...pkg.dependencies, ...pkg.devDependencies };
  for (const [dep, version] of Object.entries(deps)) {
    const depDir = byName.get(dep);
    if (!depDir) continue;
    // Run-time dependencies must be built first; test-only ones (devDependencies) are
    // imported by vitest from their built output and need no reference.
    if (dep in (pkg.dependencies ?? {}) && !refs.has(depDir)) problems.push(`${name}: depends on ${dep} but its tsconfig.json has no reference to ${relative(dir, depDir)}`);
    const depVersion = readJson(join(depDir, 'package.json')).version;
    if (version !== depVersion) problems.push(`${name}: depends on ${dep}@${version}, workspace is ${depVersion} (name the exact version)`);
  }
  if (name !== '@outpost/appliance' && name !== '@outpost/testing') {
    const allowed = allowedRuntime[name] ?? ['@outpost/common'];
    for (const dep of Object.keys(pkg.dependencies ?? {})) {
      if (byName.has(dep) && !allowed.includes(dep)) problems.push(`${name}: depends at run time on ${dep}; service packages may depend only on ${allowed.join(' and ')}`);
    }
  }
  for (const ref of refs) {
    const refName = [...byName].find(([, d]) => d === ref)?.[0];
    if (refName && !(refName in deps) && refName !== '@outpost/testing') problems.push(`${name}: tsconfig references ${refName} which package.json does not depend on`);
  }
}
if (problems.length) {
  console.error(problems.map((p) => `check-references: ${p}`).join('\n'));
  process.exit(1);
}
console.log(`check-references: ${byName.size} workspaces consistent`);
