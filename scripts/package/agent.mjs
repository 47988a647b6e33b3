#!/usr/bin/env node
// Builds the single-file agent: packages/agent/dist/bin.js bundled into one CommonJS file
// (esbuild), made a Node single-executable application (node --experimental-sea-config,
// postject) from a copy of this Node binary. No Node.js is needed where it runs.
//
//   node scripts/package/agent.mjs [--out DIR]     (npm run package:agent: tsc --build first)
//
// Writes DIR/outpost-agent-linux-x64 and DIR/outpost-agent-linux-x64.sha256 (sha256sum
// format). DIR defaults to dist-pkg/ at the repository root.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const AGENT = join(ROOT, 'packages/agent');
const NAME = 'outpost-agent-linux-x64';
/** The fuse Node looks for to know a blob was injected (Node's docs, "Single executable applications"). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/**
 * Native addons cannot be loaded from a single executable. `@outpost/common`'s index
 * re-exports its level db helpers, so `level` (classic-level, a native addon) is in the
 * agent's import graph though the agent never opens a db: these resolve to a stub that
 * throws if it ever is used, and the build fails if any native package is still bundled.
 */
const NATIVE = /^(level|classic-level)$/;
const NATIVE_INPUT = /node_modules\/(classic-level|node-gyp-build|bufferutil|utf-8-validate)\/|\.node$/;
/**
 * Optional modules required inside try/catch (ws's native helpers, debug's colours): not
 * installed, so esbuild leaves a require() the single file cannot serve (Node warns at
 * start). They resolve to a module that throws "not found", which their callers expect.
 */
const OPTIONAL = /^(bufferutil|utf-8-validate|supports-color)$/;

function fail(message) {
  console.error(`package:agent: ${message}`);
  process.exit(1);
}

const { values } = parseArgs({ options: { out: { type: 'string' } }, strict: true });
const outDir = resolve(values.out ?? join(ROOT, 'dist-pkg'));
if (process.platform !== 'linux' || process.arch !== 'x64') fail(`builds ${NAME} only on linux x64 (this is ${process.platform} ${process.arch})`);
const entry = join(AGENT, 'dist/bin.js');
await stat(entry).catch(() => fail(`${relative(ROOT, entry)} is missing: run tsc --build first`));
const { version } = JSON.parse(await readFile(join(AGENT, 'package.json'), 'utf8'));

const work = await mkdtemp(join(tmpdir(), 'outpost-sea-'));
try {
  const bundle = join(work, 'outpost-agent.cjs');
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: bundle,
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
    // version.ts reads package.json through import.meta.url only when no version was baked in.
    define: { OUTPOST_AGENT_VERSION: JSON.stringify(version), 'import.meta.url': 'undefined' },
    plugins: [
      {
        name: 'outpost-no-native',
        setup(b) {
          b.onResolve({ filter: NATIVE }, (args) => ({ path: args.path, namespace: 'outpost-no-native' }));
          b.onResolve({ filter: OPTIONAL }, (args) => ({ path: args.path, namespace: 'outpost-optional' }));
          b.onLoad({ filter: /.*/, namespace: 'outpost-optional' }, (args) => ({
            loader: 'js',
            contents: `throw Object.assign(new Error(${JSON.stringify(`Cannot find module '${args.path}'`)}), { code: 'MODULE_NOT_FOUND' });\n`,
          }));
          b.onLoad({ filter: /.*/, namespace: 'outpost-no-native' }, (args) => ({
            loader: 'js',
            contents: `export class Level { constructor() { throw new Error(${JSON.stringify(`${args.path} (a native addon) is not in the single-file agent`)}); } }\nexport const ClassicLevel = Level;\n`,
          }));
        },
      },
    ],
  });
  const native = Object.keys(result.metafile.inputs).filter((p) => NATIVE_INPUT.test(p));
  if (native.length > 0) fail(`native code would be bundled: ${native.join(', ')}`);

  const blob = join(work, 'sea-prep.blob');
  const seaConfig = join(work, 'sea-config.json');
  await writeFile(seaConfig, JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true }));
  const prep = spawnSync(process.execPath, ['--experimental-sea-config', seaConfig], { cwd: work, encoding: 'utf8' });
  if (prep.status !== 0) fail(`node --experimental-sea-config failed: ${prep.stderr || prep.stdout}`);

  await mkdir(outDir, { recursive: true });
  const exe = join(outDir, NAME);
  await rm(exe, { force: true });
  await copyFile(process.execPath, exe);
  await chmod(exe, 0o755);
  // Node's symbols off (~12 MiB), before the blob goes in: stripping after postject breaks
  // the file. Without binutils' strip the file keeps them (and lintian flags the .deb).
  const stripped = spawnSync('strip', ['--strip-unneeded', '--remove-section=.comment', exe], { encoding: 'utf8' });
  if (stripped.error || stripped.status !== 0) console.warn(`package:agent: not stripped (${stripped.error?.message ?? stripped.stderr.trim()})`);
  // postject's CLI in a child: its ELF library prints harmless section-name warnings, shown only when it fails.
  const postject = createRequire(import.meta.url).resolve('postject/dist/cli.js');
  const injected = spawnSync(process.execPath, [postject, exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], { encoding: 'utf8' });
  if (injected.status !== 0) fail(`postject failed: ${injected.stderr}${injected.stdout}`);

  // Prove it: the file runs on its own, with nothing on PATH and from a directory without node_modules.
  const check = spawnSync(exe, ['--version', '--config', join(work, 'none.yaml')], { cwd: work, env: { PATH: '' }, encoding: 'utf8' });
  if (check.status !== 0 || !check.stdout.includes(version)) fail(`the built file does not run: ${check.stderr || check.stdout}`);

  const hash = createHash('sha256').update(await readFile(exe)).digest('hex');
  await writeFile(`${exe}.sha256`, `${hash}  ${NAME}\n`);
  const { size } = await stat(exe);
  console.log(`${relative(process.cwd(), exe) || exe}: ${version}, ${(size / 1024 / 1024).toFixed(1)} MiB, sha256 ${hash}`);
} finally {
  await rm(work, { recursive: true, force: true });
}
