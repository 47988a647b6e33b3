#!/usr/bin/env node
// Builds the Debian packages (real dpkg-deb, no debhelper: the maintainer scripts are
// hand-written in appliance/deb/<package>/ in the shape of debhelper's snippets):
//
//   outpost-agent_<v>-<r>_amd64.deb   the single-file agent (scripts/package/agent.mjs) as
//                                     /usr/bin/outpost-agent, its hardened unit, the
//                                     outpost user, config written at install from
//                                     OUTPOST_CORE_URL / OUTPOST_ENROLL_TOKEN / OUTPOST_CA_FINGERPRINT
//   outpost_<v>-<r>_amd64.deb         the appliance (`outpost`) with the Node.js runtime it
//                                     runs on and its production node_modules bundled in
//                                     /usr/lib/outpost, the units of appliance/systemd
//
//   node scripts/package/deb.mjs [--out DIR] [--revision N] [--only agent|appliance]
//                                [--agent-exe FILE] [--compress xz|gzip]
//   (npm run package:deb: tsc --build first)
//
// DIR defaults to dist-pkg/. --agent-exe packs an already built single file instead of
// building one. Needs dpkg-deb, dpkg-shlibdeps (dpkg-dev) and strip (binutils).
import { copyFile, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { buildDeb, changelog, HOMEPAGE, MAINTAINER, releaseEpoch, sh, shlibDepends, stagingDir } from './deb/build.mjs';
import { copyright } from './deb/copyright.mjs';
import { copyTree, licenses, productionTree } from './deb/node-modules.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DEB_DIR = join(ROOT, 'appliance/deb');
const UNITS = join(ROOT, 'appliance/systemd');
/** Where units go: /lib/systemd/system on bookworm (the /usr merge moves them in trixie). */
const UNIT_DIR = 'lib/systemd/system';

function fail(message) {
  console.error(`package:deb: ${message}`);
  process.exit(1);
}

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    revision: { type: 'string', default: '1' },
    only: { type: 'string' },
    'agent-exe': { type: 'string' },
    compress: { type: 'string', default: 'xz' },
  },
  strict: true,
});
if (!/^[0-9][0-9a-z.+~]*$/.test(values.revision)) fail(`--revision ${values.revision} is not a Debian revision`);
if (values.only && !['agent', 'appliance'].includes(values.only)) fail('--only takes agent or appliance');
if (!['xz', 'gzip'].includes(values.compress)) fail('--compress takes xz or gzip');
if (process.platform !== 'linux' || process.arch !== 'x64') fail(`builds amd64 packages only on linux x64 (this is ${process.platform} ${process.arch})`);
const outDir = resolve(values.out ?? join(ROOT, 'dist-pkg'));
const epoch = releaseEpoch(ROOT);
const year = new Date(epoch * 1000).getUTCFullYear();
const version = async (pkgDir) => `${JSON.parse(await readFile(join(ROOT, pkgDir, 'package.json'), 'utf8')).version}-${values.revision}`;
const script = (pkg, name) => readFile(join(DEB_DIR, pkg, name), 'utf8');
const scripts = async (pkg) => ({ postinst: await script(pkg, 'postinst'), prerm: await script(pkg, 'prerm'), postrm: await script(pkg, 'postrm') });

/** Node's LICENSE next to this runtime (official tarball, nodesource, Debian), gzipped. */
async function nodeLicense() {
  const prefix = resolve(dirname(process.execPath), '..');
  for (const f of [join(prefix, 'LICENSE'), join(prefix, 'share/doc/nodejs/LICENSE'), join(prefix, 'share/doc/node/LICENSE')]) {
    const text = await readFile(f).catch(() => undefined);
    if (text) return gzipSync(text, { level: 9 });
  }
  return gzipSync(Buffer.from(`Node.js ${process.version}: see https://github.com/nodejs/node/blob/${process.version}/LICENSE\n`), { level: 9 });
}

/** usr/share/doc/PKG: copyright, changelog.Debian.gz, Node's license, README.Debian. */
async function docs(root, pkg, ver, copyrightText, readme) {
  const doc = join(root, 'usr/share/doc', pkg);
  await mkdir(doc, { recursive: true });
  await writeFile(join(doc, 'copyright'), copyrightText);
  await writeFile(join(doc, 'changelog.Debian.gz'), changelog(pkg, ver, epoch, [`Outpost ${ver.split('-')[0]}, Debian revision ${values.revision}.`, 'Built by scripts/package/deb.mjs (npm run package:deb).']));
  await writeFile(join(doc, 'nodejs-LICENSE.gz'), await nodeLicense());
  await writeFile(join(doc, 'README.Debian'), readme);
}

async function lintianOverrides(root, pkg) {
  const text = await readFile(join(DEB_DIR, pkg, 'lintian-overrides'), 'utf8');
  const dir = join(root, 'usr/share/lintian/overrides');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, pkg), text);
}

/** The packaged agent unit: appliance/systemd/outpost-agent.service, hardening and all, running the single file. */
function agentUnit(text) {
  const from = 'ExecStart=/usr/bin/outpost start --config /etc/outpost/agent.yaml';
  if (!text.includes(from)) fail(`appliance/systemd/outpost-agent.service has no line '${from}' to replace`);
  const body = text
    .split('\n')
    .filter((l, i, all) => !(l.startsWith('#') && all.slice(0, i).every((p) => p.startsWith('#'))))
    .join('\n')
    .replace(from, 'ExecStart=/usr/bin/outpost-agent run --config /etc/outpost/agent.yaml')
    .replace('Wants=network-online.target\n', 'Wants=network-online.target\n# Written at install (postinst) or by outpost-agent enroll: nothing to run before it.\nConditionPathExists=/etc/outpost/agent.yaml\n')
    .replace('Environment=NODE_ENV=production\n', 'Environment=NODE_ENV=production\n# OUTPOST_AGENT__<KEY>=value overrides (heartbeat.via...), optional.\nEnvironmentFile=-/etc/default/outpost-agent\n');
  return `# outpost-agent.service (package outpost-agent): the single-file agent, from
# appliance/systemd/outpost-agent.service with its hardening. Its config,
# /etc/outpost/agent.yaml, is written at install from OUTPOST_CORE_URL,
# OUTPOST_ENROLL_TOKEN and OUTPOST_CA_FINGERPRINT; it enrolls at its first start.
${body}`;
}

async function buildAgent() {
  const pkg = 'outpost-agent';
  const ver = await version('packages/agent');
  const root = await stagingDir(pkg);
  try {
    let exe = values['agent-exe'] ? resolve(values['agent-exe']) : undefined;
    if (!exe) {
      const seaOut = join(root, '..', `${pkg}-sea-${process.pid}`);
      sh(process.execPath, [join(ROOT, 'scripts/package/agent.mjs'), '--out', seaOut], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
      exe = join(seaOut, 'outpost-agent-linux-x64');
    }
    await mkdir(join(root, 'usr/bin'), { recursive: true });
    await copyFile(exe, join(root, 'usr/bin/outpost-agent'));
    if (!values['agent-exe']) await rm(dirname(exe), { recursive: true, force: true });
    await mkdir(join(root, UNIT_DIR), { recursive: true });
    await writeFile(join(root, UNIT_DIR, 'outpost-agent.service'), agentUnit(await readFile(join(UNITS, 'outpost-agent.service'), 'utf8')));
    const tree = await licenses(ROOT, await productionTree(ROOT, 'packages/agent'));
    await docs(
      root,
      pkg,
      ver,
      copyright({ year, node: 'usr/bin/outpost-agent', bundled: [{ files: 'usr/bin/outpost-agent', packages: tree }] }),
      await readFile(join(DEB_DIR, pkg, 'README.Debian'), 'utf8'),
    );
    await lintianOverrides(root, pkg);
    const out = join(outDir, `${pkg}_${ver}_amd64.deb`);
    await buildDeb({
      root,
      out,
      epoch,
      compress: values.compress,
      scripts: await scripts(pkg),
      fields: {
        Package: pkg,
        Version: ver,
        Architecture: 'amd64',
        Maintainer: MAINTAINER,
        Depends: `adduser, ${shlibDepends([join(root, 'usr/bin/outpost-agent')])}`,
        Section: 'admin',
        Priority: 'optional',
        Homepage: HOMEPAGE,
        Description: `Outpost agent for managed computers
The agent of Outpost, a site-server suite: it enrolls with an Outpost core
once, heartbeats, polls its config and runs the jobs the core signs.
.
This package holds the agent as one executable (the Node.js runtime is
inside it), a hardened systemd unit running it as the outpost user, and
writes /etc/outpost/agent.yaml at install from OUTPOST_CORE_URL,
OUTPOST_ENROLL_TOKEN and OUTPOST_CA_FINGERPRINT (environment, or
/etc/default/outpost-agent).`,
      },
    });
    return out;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** Configs shipped in /etc/outpost (conffiles): the ones a unit names and that run as they are. */
const CONFFILES = { 'outpost.yaml': 'all-in-one.yaml', 'core.yaml': 'core.yaml' };

async function buildAppliance() {
  const pkg = 'outpost';
  const ver = await version('appliance');
  const root = await stagingDir(pkg);
  try {
    const lib = join(root, 'usr/lib/outpost');
    // The runtime: this Node.js, stripped (its symbols are not needed to run it).
    await mkdir(join(lib, 'bin'), { recursive: true });
    await copyFile(process.execPath, join(lib, 'bin/node'));
    sh('strip', ['--strip-unneeded', '--remove-section=.comment', join(lib, 'bin/node')]);
    // The production node_modules, from the workspace's install (native addons built for linux x64).
    const tree = await productionTree(ROOT, 'appliance');
    const console_ = join(ROOT, 'packages/console');
    if (!(await stat(join(console_, 'dist/index.html')).catch(() => undefined))) fail('packages/console/dist is missing: run npm run build first');
    const withSelf = [
      { location: 'node_modules/@outpost/appliance', target: 'appliance', workspace: true, name: '@outpost/appliance' },
      // The web console the core serves: its own build output (preact is bundled in it).
      { location: 'node_modules/@outpost/console', target: 'packages/console', workspace: true, name: '@outpost/console' },
      ...tree,
    ];
    await copyTree(ROOT, withSelf, lib);
    await mkdir(join(root, 'usr/bin'), { recursive: true });
    await writeFile(
      join(root, 'usr/bin/outpost'),
      `#!/bin/sh\n# The outpost command: the appliance on the Node.js runtime this package bundles.\nexec /usr/lib/outpost/bin/node /usr/lib/outpost/node_modules/@outpost/appliance/bin/outpost.js "$@"\n`,
      { mode: 0o755 },
    );
    // Units: every role's but the agent's (the outpost-agent package has its own).
    await mkdir(join(root, UNIT_DIR), { recursive: true });
    for (const f of (await readdir(UNITS)).filter((f) => f.endsWith('.service') && f !== 'outpost-agent.service')) {
      await copyFile(join(UNITS, f), join(root, UNIT_DIR, f));
    }
    await mkdir(join(root, 'etc/outpost'), { recursive: true });
    for (const [to, from] of Object.entries(CONFFILES)) await copyFile(join(ROOT, 'configs', from), join(root, 'etc/outpost', to));
    const examples = join(root, 'usr/share/doc', pkg, 'examples');
    await mkdir(examples, { recursive: true });
    for (const f of (await readdir(join(ROOT, 'configs'))).filter((f) => f.endsWith('.yaml'))) await copyFile(join(ROOT, 'configs', f), join(examples, f));
    const bundled = (await licenses(ROOT, tree)).filter((p) => !p.name.startsWith('@outpost/'));
    await docs(
      root,
      pkg,
      ver,
      copyright({ year, node: 'usr/lib/outpost/bin/node', bundled: [{ files: 'usr/lib/outpost/node_modules/*', packages: bundled }] }),
      await readFile(join(DEB_DIR, pkg, 'README.Debian'), 'utf8'),
    );
    await lintianOverrides(root, pkg);
    // npm's `#!/usr/bin/env node` scripts are loaded by node, never run: not executable here.
    sh('find', [join(lib, 'node_modules'), '-type', 'f', '-perm', '/111', '-exec', 'chmod', 'a-x', '{}', '+']);
    const elves = sh('find', [lib, '-type', 'f', '(', '-name', '*.node', '-o', '-path', '*/bin/node', ')'], {}).split('\n').filter(Boolean);
    const out = join(outDir, `${pkg}_${ver}_amd64.deb`);
    await buildDeb({
      root,
      out,
      epoch,
      compress: values.compress,
      scripts: await scripts(pkg),
      conffiles: Object.keys(CONFFILES).map((f) => `/etc/outpost/${f}`),
      fields: {
        Package: pkg,
        Version: ver,
        Architecture: 'amd64',
        Maintainer: MAINTAINER,
        Depends: `adduser, ${shlibDepends(elves)}`,
        Suggests: 'outpost-agent',
        Section: 'admin',
        Priority: 'optional',
        Homepage: HOMEPAGE,
        Description: `site-server suite: core, package, task, netboot and gateway
Outpost runs a core server (sites, agents, packages, jobs) and the site
services close to managed computers: package servers, task servers,
network boot and an Internet gateway. The outpost command runs any set of
them from one config file and administers a core.
.
This package bundles the Node.js runtime it runs on and its npm
dependencies in /usr/lib/outpost, and ships a hardened systemd unit per
role (none enabled at install).`,
      },
    });
    return out;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const started = Date.now();
await mkdir(outDir, { recursive: true });
const built = [];
try {
  if (values.only !== 'appliance') built.push(await buildAgent());
  if (values.only !== 'agent') built.push(await buildAppliance());
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}
for (const f of built) {
  const { size } = await stat(f);
  console.log(`${relative(process.cwd(), f) || f}: ${(size / 1024 / 1024).toFixed(1)} MiB`);
}
console.log(`package:deb: ${built.length} package(s) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
