#!/usr/bin/env node
// Keeps tsconfig project references in step with package.json dependencies on our own
// workspaces, and checks every workspace is in the root solution tsconfig.json.
import { readFileSync, existsSync } from 'node:fs';
import { join, dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const readJson = (p) => JSON.parse(readFileSync(p, 'utf8'));
const byName = new Map();
for (const ws of rootPkg.workspaces) {
  const dir = join(root, ws);
  if (!existsSync(join(dir, 'package.json'))) continue;
  byName.set(readJson(join(dir, 'package.json')).name, dir);
}
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
    if (!refs.has(depDir)) problems.push(`${name}: depends on ${dep} but its tsconfig.json has no reference to ${relative(dir, depDir)}`);
    const depVersion = readJson(join(depDir, 'package.json')).version;
    if (version !== depVersion) problems.push(`${name}: depends on ${dep}@${version}, workspace is ${depVersion} (name the exact version)`);
  }
  for (const ref of refs) {
    const refName = [...byName].find(([, d]) => d === ref)?.[0];
    if (refName && !(refName in deps)) problems.push(`${name}: tsconfig references ${refName} which package.json does not depend on`);
  }
}
if (problems.length) {
  console.error(problems.map((p) => `check-references: ${p}`).join('\n'));
  process.exit(1);
}
console.log(`check-references: ${byName.size} workspaces consistent`);
