// Building a binary .deb from a staged root: the control file, md5sums, changelog.Debian.gz,
// copyright, modes and mtimes normalized, then `dpkg-deb --build --root-owner-group`.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, utimes, lutimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';

export const MAINTAINER = 'Outpost maintainers <maintainers@outpost.example.org>';
export const HOMEPAGE = 'https://github.com/outpost/outpost';

/** Runs a command; throws with its output when it fails. */
export function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** Every path under `dir` (files, links and directories), depth first, sorted. */
export async function walk(dir) {
  const out = [];
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop();
    for (const name of (await readdir(d)).sort()) {
      const p = join(d, name);
      const s = await lstat(p);
      out.push({ path: p, stat: s });
      if (s.isDirectory()) stack.push(p);
    }
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * Debian's modes (directories 0755, files 0644, 0755 when any x bit was set) and one mtime
 * (the release's, not npm's 1985 stamps: lintian flags those), so builds are reproducible.
 */
export async function normalize(root, epoch) {
  const when = new Date(epoch * 1000);
  for (const { path, stat } of await walk(root)) {
    if (stat.isSymbolicLink()) {
      await lutimes(path, when, when);
      continue;
    }
    if (stat.isDirectory()) await chmod(path, 0o755);
    else await chmod(path, stat.mode & 0o111 ? 0o755 : 0o644);
    await utimes(path, when, when);
  }
  await utimes(root, when, when);
}

/** `Depends` for the ELF files given, as dpkg-shlibdeps computes them from the system's shlibs. */
export function shlibDepends(elfFiles) {
  const work = spawnSync('mktemp', ['-d'], { encoding: 'utf8' }).stdout.trim();
  try {
    spawnSync('mkdir', ['-p', join(work, 'debian')]);
    spawnSync('sh', ['-c', `printf 'Source: outpost\\n\\nPackage: outpost\\nArchitecture: amd64\\n' > debian/control`], { cwd: work });
    const out = sh('dpkg-shlibdeps', ['-O', ...elfFiles.map((f) => `-e${f}`)], { cwd: work });
    const line = out.split('\n').find((l) => l.startsWith('shlibs:Depends='));
    if (!line) throw new Error(`dpkg-shlibdeps printed no shlibs:Depends: ${out}`);
    return line.slice('shlibs:Depends='.length).trim();
  } finally {
    spawnSync('rm', ['-rf', work]);
  }
}

/** The Debian changelog entry of this build, gzipped as `changelog.Debian.gz` is (-9n). */
export function changelog(pkg, version, epoch, lines) {
  const date = new Date(epoch * 1000).toUTCString().replace(/GMT$/, '+0000');
  const items = lines.map((l) => `  * ${l}`).join('\n');
  const text = `${pkg} (${version}) unstable; urgency=medium\n\n${items}\n\n -- ${MAINTAINER}  ${date}\n`;
  // gzip -n: no name, no time in the header (reproducible); level 9 (lintian asks for it).
  return gzipSync(Buffer.from(text), { level: 9 });
}

/** A control paragraph: `Description` as short line + indented long text. */
export function control(fields) {
  const lines = [];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || v === '') continue;
    if (k === 'Description') {
      const [short, ...rest] = v.split('\n');
      lines.push(`Description: ${short}`);
      for (const l of rest) lines.push(l.trim() === '' ? ' .' : ` ${l}`);
    } else lines.push(`${k}: ${v}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Writes DEBIAN/ (control with Installed-Size, md5sums, conffiles, maintainer scripts) into
 * `root` and builds `out`. `scripts` maps postinst/prerm/postrm to their text.
 */
export async function buildDeb({ root, out, fields, scripts, conffiles = [], epoch, compress = 'xz' }) {
  await normalize(root, epoch);
  const sums = [];
  let kib = 0;
  for (const { path, stat } of await walk(root)) {
    const rel = relative(root, path);
    if (rel === 'DEBIAN' || rel.startsWith('DEBIAN/')) continue;
    // dpkg-gencontrol's count: each file's size rounded up to KiB, each directory or link 1.
    if (stat.isFile()) {
      kib += Math.ceil(stat.size / 1024);
      const md5 = createHash('md5').update(await readFile(path)).digest('hex');
      if (!rel.startsWith('etc/')) sums.push(`${md5}  ${rel}`);
    } else kib += 1;
  }
  const debian = join(root, 'DEBIAN');
  await mkdir(debian, { recursive: true });
  await writeFile(join(debian, 'control'), control({ ...fields, 'Installed-Size': String(kib) }));
  await writeFile(join(debian, 'md5sums'), `${sums.join('\n')}\n`);
  if (conffiles.length > 0) await writeFile(join(debian, 'conffiles'), `${conffiles.join('\n')}\n`);
  for (const [name, text] of Object.entries(scripts)) await writeFile(join(debian, name), text, { mode: 0o755 });
  await normalize(debian, epoch);
  for (const name of Object.keys(scripts)) await chmod(join(debian, name), 0o755);
  await rm(out, { force: true });
  const threads = ['--threads-max=2'];
  const z = compress === 'gzip' ? ['-Zgzip', '-z9'] : ['-Zxz', '-z6', ...threads];
  sh('dpkg-deb', ['--build', '--root-owner-group', ...z, root, out], { env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) } });
}

/** A staging dir for one package, removed by the caller. */
export const stagingDir = (name) => mkdtemp(join(tmpdir(), `outpost-deb-${name}-`));

/** The release time: SOURCE_DATE_EPOCH, else the last commit's, else now. */
export function releaseEpoch(root) {
  if (process.env.SOURCE_DATE_EPOCH && /^\d+$/.test(process.env.SOURCE_DATE_EPOCH)) return Number(process.env.SOURCE_DATE_EPOCH);
  const r = spawnSync('git', ['log', '-1', '--format=%ct'], { cwd: root, encoding: 'utf8' });
  const t = Number(r.stdout?.trim());
  return r.status === 0 && Number.isInteger(t) && t > 0 ? t : Math.floor(Date.now() / 1000);
}
