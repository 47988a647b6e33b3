import { z } from '@outpost/common';
import { adminOptions, parseCommand, positiveInt } from '../args.js';
import { callApi, expectShape } from '../client/api.js';
import { resolveTarget } from '../client/target.js';
import { UsageError } from '../errors.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';
import { formatTable, formatTime } from '../table.js';
import { addPackage, walkPackageDir } from './package-add.js';

export const PACKAGE_USAGE: Record<string, string> = {
  'package add': `Usage: outpost package add DIR --name NAME [--version V] [--json]

Adds every regular file under DIR as package NAME (symbolic links are skipped). Files
are hashed here, then streamed to the core, which checks each one's sha256; the package
is ready once every file is in. Without --version the version is derived from the
content, so re-running the same command after an interruption resumes the upload.`,
  'package enable': `Usage: outpost package enable NAME [--servers ID...|--site NAME] [--max-servers N] [--json]

Assigns the package to package servers (default: all of them, unconstrained first) in
the order given; at most N servers download at once (default: the core's). A constrained
server is fed by an unconstrained one of its site (added when not listed; refused when
its site has none).`,
  'package disable': `Usage: outpost package disable NAME [--json]

Removes the package from every package server; it stays in the core.`,
  'package rm': `Usage: outpost package rm NAME [--json]

Deletes the package everywhere; content no other package holds is freed at once.`,
  'package show': `Usage: outpost package show NAME [--json]

Shows the package and, per package server: state (pending, downloading, ready, failed),
bytes done, last error, next retry and its codebase URL.`,
  packages: `Usage: outpost packages [--json]

Lists packages: name, version, state, files, size, and servers ready of assigned.`,
};

const help = (io: CliIo, cmd: string): number => {
  io.out(PACKAGE_USAGE[cmd]!);
  return 0;
};

const serverSchema = z.looseObject({
  id: z.string(),
  name: z.string().optional(),
  constrained: z.boolean().optional(),
  state: z.string(),
  released: z.boolean().optional(),
  waitingFor: z.string().optional(),
  bytesDone: z.number(),
  bytesTotal: z.number(),
  lastError: z.string().optional(),
  nextRetryAt: z.string().optional(),
  codebase: z.string().optional(),
});
const viewSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  version: z.string(),
  state: z.string(),
  size: z.number(),
  files: z.number(),
  enabled: z.boolean(),
  manifestHash: z.string(),
  missing: z.array(z.looseObject({ path: z.string(), size: z.number(), received: z.number(), problem: z.string().optional() })).optional(),
  servers: z.array(serverSchema),
  warnings: z.array(z.string()).optional(),
});
const summarySchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  version: z.string(),
  state: z.string(),
  files: z.number(),
  size: z.number(),
  enabled: z.boolean(),
  servers: z.looseObject({ total: z.number(), ready: z.number(), failed: z.number() }),
});

/** 1536 → `1.5 KiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

const packagePath = (ref: string): string => `/packages/${encodeURIComponent(ref)}`;

/** `outpost package add|enable|disable|rm|show ...` */
export async function packageCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'add':
      return packageAdd(rest, io);
    case 'enable':
      return packageEnable(rest, io);
    case 'disable':
    case 'rm':
    case 'show':
      return packageSimple(sub, rest, io);
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      io.out(['package add', 'package enable', 'package disable', 'package rm', 'package show'].map((c) => PACKAGE_USAGE[c]!.split('\n')[0]).join('\n'));
      return 0;
    default:
      throw new UsageError(`unknown sub-command 'package ${sub}' (expected add, enable, disable, rm or show)`);
  }
}

async function packageAdd(argv: string[], io: CliIo): Promise<number> {
  const cmd = 'package add';
  const { values, positionals } = parseCommand(cmd, {
    args: argv,
    allowPositionals: true,
    options: { ...adminOptions, name: { type: 'string' }, version: { type: 'string' } },
  });
  if (values.help) return help(io, cmd);
  const dir = positionals[0];
  if (!dir || positionals.length > 1) throw new UsageError('give one DIR', cmd);
  if (!values.name) throw new UsageError('--name NAME is required', cmd);
  const target = await resolveTarget(values, io);
  const files = await walkPackageDir(dir, (path, why) => io.err(`outpost: skipped ${path} (${why})`));
  const r = await addPackage(target, { name: values.name, version: values.version, files }, (line) => io.err(`outpost: ${line}`));
  if (values.json) {
    printJson(io, { ...r.view, uploaded: { files: r.uploadedFiles, bytes: r.uploadedBytes, resumedBytes: r.resumedBytes } });
    return 0;
  }
  const total = files.reduce((n, f) => n + f.size, 0);
  io.out(`package ${r.view.name}@${r.view.version} (${r.view.id}): ${files.length} file${files.length === 1 ? '' : 's'}, ${formatBytes(total)}, ${r.view.state}`);
  io.out(`  uploaded ${r.uploadedFiles} file${r.uploadedFiles === 1 ? '' : 's'} (${formatBytes(r.uploadedBytes)})${r.resumedBytes > 0 ? `, resumed after ${formatBytes(r.resumedBytes)} already in` : ''}; the rest was in the core already`);
  return 0;
}

async function packageEnable(argv: string[], io: CliIo): Promise<number> {
  const cmd = 'package enable';
  const { values, positionals } = parseCommand(cmd, {
    args: argv,
    allowPositionals: true,
    options: { ...adminOptions, servers: { type: 'string', multiple: true }, site: { type: 'string' }, 'max-servers': { type: 'string' } },
  });
  if (values.help) return help(io, cmd);
  const name = positionals[0];
  if (!name) throw new UsageError('missing the package NAME', cmd);
  // `--servers a b c`: ids may follow one --servers as positionals.
  const servers = values.servers ? [...values.servers, ...positionals.slice(1)] : undefined;
  if (!servers && positionals.length > 1) throw new UsageError(`unexpected '${positionals[1]}'`, cmd);
  if (servers && values.site !== undefined) throw new UsageError('give --servers or --site, not both', cmd);
  let maxServers: number | undefined;
  if (values['max-servers'] === '0') maxServers = 0;
  else maxServers = positiveInt(values['max-servers'], 'max-servers', cmd);
  const target = await resolveTarget(values, io);
  const body = { ...(servers ? { servers } : {}), ...(values.site !== undefined ? { site: values.site } : {}), ...(maxServers !== undefined ? { maxServers } : {}) };
  const view = expectShape(viewSchema, await callApi(target, 'POST', `${packagePath(name)}/enable`, body), 'package');
  if (values.json) {
    printJson(io, view);
    return 0;
  }
  for (const w of view.warnings ?? []) io.err(`outpost: warning: ${w}`);
  io.out(`package ${view.name}@${view.version} enabled on ${view.servers.length} package server${view.servers.length === 1 ? '' : 's'}: ${view.servers.map((s) => s.name ?? s.id).join(', ')}`);
  return 0;
}

async function packageSimple(sub: 'disable' | 'rm' | 'show', argv: string[], io: CliIo): Promise<number> {
  const cmd = `package ${sub}`;
  const { values, positionals } = parseCommand(cmd, { args: argv, allowPositionals: true, options: adminOptions });
  if (values.help) return help(io, cmd);
  const name = positionals[0];
  if (!name || positionals.length > 1) throw new UsageError('give one package NAME', cmd);
  const target = await resolveTarget(values, io);
  if (sub === 'rm') {
    const r = expectShape(z.looseObject({ freedBytes: z.number() }), await callApi(target, 'DELETE', packagePath(name)), 'answer');
    if (values.json) printJson(io, r);
    else io.out(`package ${name} deleted; ${formatBytes(r.freedBytes)} freed`);
    return 0;
  }
  if (sub === 'disable') {
    const view = expectShape(viewSchema, await callApi(target, 'POST', `${packagePath(name)}/disable`), 'package');
    if (values.json) printJson(io, view);
    else io.out(`package ${view.name}@${view.version} disabled`);
    return 0;
  }
  const raw = await callApi(target, 'GET', packagePath(name));
  const view = expectShape(viewSchema, raw, 'package');
  if (values.json) {
    printJson(io, raw);
    return 0;
  }
  printLines(io, showLines(view));
  return 0;
}

function showLines(v: z.output<typeof viewSchema>): string[] {
  const lines = [
    `package ${v.name}@${v.version}  ${v.id}  ${v.state}  ${v.enabled ? 'enabled' : 'not enabled'}  ${v.files} file${v.files === 1 ? '' : 's'}  ${formatBytes(v.size)}`,
    `  manifest ${v.manifestHash}`,
  ];
  if (v.missing?.length) {
    lines.push(`  missing ${v.missing.length} file${v.missing.length === 1 ? '' : 's'}:`);
    for (const m of v.missing.slice(0, 20)) lines.push(`    ${m.path}  ${m.received}/${m.size} bytes${m.problem ? `  ${m.problem}` : ''}`);
  }
  if (v.servers.length === 0) {
    lines.push(v.enabled ? '  no package servers' : '  (run: outpost package enable NAME)');
    return lines;
  }
  lines.push('');
  const pct = (s: z.output<typeof serverSchema>): string =>
    `${formatBytes(s.bytesDone)}/${formatBytes(s.bytesTotal)}${s.bytesTotal > 0 ? ` ${Math.floor((100 * s.bytesDone) / s.bytesTotal)}%` : ''}`;
  lines.push(
    ...formatTable(
      ['SERVER', 'KIND', 'STATE', 'BYTES', 'LAST ERROR', 'NEXT RETRY', 'CODEBASE'],
      v.servers.map((s) => [
        s.name ?? s.id,
        s.constrained === undefined ? '' : s.constrained ? 'constrained' : 'unconstrained',
        s.waitingFor && s.state === 'pending' ? `waiting (${s.waitingFor})` : s.state,
        pct(s),
        (s.lastError ?? '').slice(0, 60),
        s.nextRetryAt ? formatTime(s.nextRetryAt) : '',
        s.codebase ?? '',
      ]),
    ),
  );
  return lines;
}

/** `outpost packages` */
export async function packagesCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'packages';
  const { values, positionals } = parseCommand(cmd, { args: [...argv], allowPositionals: true, options: adminOptions });
  if (values.help) return help(io, cmd);
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`, cmd);
  const target = await resolveTarget(values, io);
  const list = expectShape(z.looseObject({ items: z.array(summarySchema) }), await callApi(target, 'GET', '/packages'), 'package list');
  if (values.json) {
    printJson(io, list);
    return 0;
  }
  if (list.items.length === 0) {
    io.out('no packages');
    return 0;
  }
  printLines(
    io,
    formatTable(
      ['NAME', 'VERSION', 'STATE', 'FILES', 'SIZE', 'ENABLED', 'SERVERS READY'],
      list.items.map((p) => [p.name, p.version, p.state, String(p.files), formatBytes(p.size), p.enabled ? 'yes' : 'no', p.enabled ? `${p.servers.ready}/${p.servers.total}${p.servers.failed ? ` (${p.servers.failed} failed)` : ''}` : '']),
    ),
  );
  return 0;
}
