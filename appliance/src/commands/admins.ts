import { parseDuration, z } from '@outpost/common';
import { adminOptions, parseCommand } from '../args.js';
import { callApi, expectShape } from '../client/api.js';
import { readStdinLines } from '../client/stdin.js';
import { resolveTarget } from '../client/target.js';
import { UsageError } from '../errors.js';
import { usage } from '../help.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';
import { formatTable, formatTime } from '../table.js';
import { expectPositionals, listOptions } from './list-options.js';

export const adminTokenSchema = z.looseObject({ id: z.string(), name: z.string(), createdAt: z.string(), expiresAt: z.string(), expired: z.boolean() });
export const adminSchema = z.looseObject({
  name: z.string(),
  roles: z.array(z.string()),
  sites: z.array(z.string()).optional(),
  password: z.boolean(),
  sso: z.boolean(),
  createdAt: z.string(),
  updatedAt: z.string(),
  lockedUntil: z.string().optional(),
  tokens: z.array(adminTokenSchema),
});
const adminListSchema = z.looseObject({ items: z.array(adminSchema) });
export const issuedSchema = z.looseObject({ id: z.string(), name: z.string(), token: z.string(), expiresAt: z.string() });
const addedSchema = z.looseObject({ admin: adminSchema, token: issuedSchema.optional() });

type Admin = z.output<typeof adminSchema>;
type Sub = (argv: readonly string[], io: CliIo) => Promise<number>;

const SUBS: Record<string, Sub> = {
  add: adminAdd,
  list: adminList,
  ls: adminList,
  show: adminShow,
  set: adminSet,
  rm: adminRemove,
  remove: adminRemove,
  password: adminPassword,
  token: adminToken,
};

/** `outpost admin add|list|show|set|rm|password|token ...` */
export async function adminCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    io.out(usage('admin'));
    return 0;
  }
  if (sub === undefined) throw new UsageError('missing sub-command: add, list, show, set, rm, password or token', 'admin');
  const run = Object.hasOwn(SUBS, sub) ? SUBS[sub] : undefined;
  if (!run) throw new UsageError(`unknown sub-command 'admin ${sub}' (expected add, list, show, set, rm, password or token)`, 'admin');
  return run(rest, io);
}

/** `--expires` checked here, so a typo is a usage error before anything is sent. */
export function checkDuration(value: string | undefined, command: string): void {
  if (value === undefined) return;
  try {
    parseDuration(value);
  } catch (err) {
    throw new UsageError(`--expires: ${(err as Error).message}`, command);
  }
}

const scopeText = (a: Pick<Admin, 'sites'>): string => (a.sites ? `sites ${a.sites.join(', ')}` : 'every site');
const signInText = (a: Admin): string => (a.sso ? 'sso' : a.password ? 'password' : 'token only');
const path = (name: string): string => `/admins/${encodeURIComponent(name)}`;

/** Prints a just-issued API token, with the warning that it is shown once. */
export function printIssued(io: CliIo, issued: z.output<typeof issuedSchema>, admin: string, url: string): void {
  printLines(io, formatTable(['TOKEN', 'NAME', 'EXPIRES'], [[issued.token, issued.name, formatTime(issued.expiresAt)]]));
  io.out('');
  io.out(`The token is shown only this once. ${admin} uses it as OUTPOST_TOKEN (or --token):`);
  io.out(`  OUTPOST_URL=${url} OUTPOST_TOKEN=<the token> outpost site list`);
}

async function adminAdd(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'admin add';
  const { values, tokens } = parseCommand(cmd, {
    args: [...argv],
    allowPositionals: true,
    tokens: true,
    options: { ...adminOptions, role: { type: 'string', multiple: true }, site: { type: 'string', multiple: true }, 'password-stdin': { type: 'boolean' }, expires: { type: 'string' } },
  });
  if (values.help) return help(cmd, io);
  const { positionals, lists } = listOptions(tokens, ['role', 'site']);
  const [name] = expectPositionals(positionals, ['administrator NAME'], cmd);
  if (!lists.role?.length) throw new UsageError('give at least one --role (outpost role list shows them)', cmd);
  if (values['password-stdin'] && values.expires !== undefined) throw new UsageError('--expires is for the API token made without --password-stdin', cmd);
  checkDuration(values.expires, cmd);
  const password = values['password-stdin'] ? (await readStdinLines(io.stdin, ['password'], cmd))[0] : undefined;
  const target = await resolveTarget(values, io);
  const body = {
    name,
    roles: lists.role,
    ...(lists.site ? { sites: lists.site } : {}),
    ...(password === undefined ? {} : { password }),
    ...(values.expires === undefined ? {} : { tokenExpires: values.expires }),
  };
  const raw = await callApi(target, 'POST', '/admins', body);
  const added = expectShape(addedSchema, raw, 'administrator');
  if (values.json) {
    printJson(io, raw);
    return 0;
  }
  const a = added.admin;
  io.out(`added administrator ${a.name}: roles ${a.roles.join(', ')}; ${scopeText(a)}${password === undefined ? '' : '; password set'}`);
  if (added.token) {
    io.out('');
    printIssued(io, added.token, a.name, target.url);
  }
  return 0;
}

async function adminList(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'admin list';
  const { values } = parseCommand(cmd, { args: [...argv], options: adminOptions });
  if (values.help) return help(cmd, io);
  const target = await resolveTarget(values, io);
  const raw = await callApi(target, 'GET', '/admins');
  const list = expectShape(adminListSchema, raw, 'administrator list');
  if (values.json) {
    printJson(io, raw);
    return 0;
  }
  if (list.items.length === 0) {
    io.out('no administrators but the bootstrap owner; add one with: outpost admin add NAME --role ROLE');
    return 0;
  }
  printLines(
    io,
    formatTable(
      ['NAME', 'ROLES', 'SITES', 'SIGN-IN', 'TOKENS', 'LOCKED UNTIL'],
      list.items.map((a) => [a.name, a.roles.join(','), a.sites?.join(',') ?? 'all', signInText(a), String(a.tokens.filter((t) => !t.expired).length), a.lockedUntil ? formatTime(a.lockedUntil) : '']),
    ),
  );
  return 0;
}

async function adminShow(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'admin show';
  const { values, positionals } = parseCommand(cmd, { args: [...argv], allowPositionals: true, options: adminOptions });
  if (values.help) return help(cmd, io);
  const [name] = expectPositionals(positionals, ['administrator NAME'], cmd);
  const target = await resolveTarget(values, io);
  const raw = await callApi(target, 'GET', path(name!));
  const a = expectShape(adminSchema, raw, 'administrator');
  if (values.json) {
    printJson(io, raw);
    return 0;
  }
  printLines(io, [
    `administrator ${a.name}`,
    `  roles:    ${a.roles.join(', ')}`,
    `  scope:    ${scopeText(a)}`,
    `  sign-in:  ${signInText(a)}`,
    `  created:  ${formatTime(a.createdAt)}`,
    `  changed:  ${formatTime(a.updatedAt)}`,
    ...(a.lockedUntil ? [`  locked until ${formatTime(a.lockedUntil)} (failed sign-ins)`] : []),
  ]);
  io.out('');
  printTokens(io, a);
  return 0;
}

function printTokens(io: CliIo, a: Admin): void {
  if (a.tokens.length === 0) {
    io.out(`${a.name} has no API tokens; create one with: outpost admin token create ${a.name} --name NAME`);
    return;
  }
  printLines(io, formatTable(['TOKEN ID', 'NAME', 'CREATED', 'EXPIRES'], a.tokens.map((t) => [t.id, t.name, formatTime(t.createdAt), `${formatTime(t.expiresAt)}${t.expired ? ' (expired)' : ''}`])));
}

async function adminSet(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'admin set';
  const { values, tokens } = parseCommand(cmd, {
    args: [...argv],
    allowPositionals: true,
    tokens: true,
    options: { ...adminOptions, role: { type: 'string', multiple: true }, site: { type: 'string', multiple: true }, 'all-sites': { type: 'boolean' } },
  });
  if (values.help) return help(cmd, io);
  const { positionals, lists } = listOptions(tokens, ['role', 'site']);
  const [name] = expectPositionals(positionals, ['administrator NAME'], cmd);
  if (lists.site && values['all-sites']) throw new UsageError('--site and --all-sites contradict each other', cmd);
  if (values.role && !lists.role?.length) throw new UsageError('--role needs a role name', cmd);
  if (values.site && !lists.site?.length) throw new UsageError('--site needs a site name (or --all-sites)', cmd);
  if (!lists.role && !lists.site && !values['all-sites']) throw new UsageError('nothing to change: give --role, --site or --all-sites', cmd);
  const target = await resolveTarget(values, io);
  const body = { ...(lists.role ? { roles: lists.role } : {}), ...(lists.site ? { sites: lists.site } : values['all-sites'] ? { sites: null } : {}) };
  const raw = await callApi(target, 'PATCH', path(name!), body);
  const a = expectShape(adminSchema, raw, 'administrator');
  if (values.json) printJson(io, raw);
  else io.out(`changed administrator ${a.name}: roles ${a.roles.join(', ')}; ${scopeText(a)}`);
  return 0;
}

async function adminRemove(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'admin rm';
  const { values, positionals } = parseCommand(cmd, { args: [...argv], allowPositionals: true, options: adminOptions });
  if (values.help) return help(cmd, io);
  const [name] = expectPositionals(positionals, ['administrator NAME'], cmd);
  const target = await resolveTarget(values, io);
  await callApi(target, 'DELETE', path(name!));
  if (values.json) printJson(io, { name, deleted: true });
  else io.out(`removed administrator ${name} (its API tokens and console sessions with it)`);
  return 0;
}

async function adminPassword(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'admin password';
  const { values, positionals } = parseCommand(cmd, {
    args: [...argv],
    allowPositionals: true,
    options: { ...adminOptions, 'password-stdin': { type: 'boolean' }, 'current-stdin': { type: 'boolean' } },
  });
  if (values.help) return help(cmd, io);
  const [name] = expectPositionals(positionals, ['administrator NAME'], cmd);
  if (!values['password-stdin']) throw new UsageError('give --password-stdin: the password is read from standard input, never from the command line', cmd);
  const lines = await readStdinLines(io.stdin, values['current-stdin'] ? ['current password', 'new password'] : ['password'], cmd);
  const body = values['current-stdin'] ? { current: lines[0]!, password: lines[1]! } : { password: lines[0]! };
  const target = await resolveTarget(values, io);
  await callApi(target, 'PUT', `${path(name!)}/password`, body);
  if (values.json) printJson(io, { name, password: 'set' });
  else io.out(`password of ${name} set; its console sessions ended`);
  return 0;
}

async function adminToken(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'create':
      return tokenCreate(rest, io);
    case 'list':
    case 'ls':
      return tokenList(rest, io);
    case 'rm':
    case 'remove':
      return tokenRemove(rest, io);
    case '--help':
    case '-h':
    case 'help':
      return help('admin token', io);
    case undefined:
      throw new UsageError('missing sub-command: create, list or rm', 'admin token');
    default:
      throw new UsageError(`unknown sub-command 'admin token ${sub}' (expected create, list or rm)`, 'admin token');
  }
}

async function tokenCreate(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'admin token create';
  const { values, positionals } = parseCommand(cmd, { args: [...argv], allowPositionals: true, options: { ...adminOptions, name: { type: 'string' }, expires: { type: 'string' } } });
  if (values.help) return help(cmd, io);
  const [admin] = expectPositionals(positionals, ['administrator NAME'], cmd);
  if (!values.name) throw new UsageError('give the token a --name (what it is for, e.g. laptop)', cmd);
  checkDuration(values.expires, cmd);
  const target = await resolveTarget(values, io);
  const raw = await callApi(target, 'POST', `${path(admin!)}/tokens`, { name: values.name, ...(values.expires === undefined ? {} : { expires: values.expires }) });
  const issued = expectShape(issuedSchema, raw, 'API token');
  if (values.json) printJson(io, raw);
  else printIssued(io, issued, admin!, target.url);
  return 0;
}

async function tokenList(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'admin token list';
  const { values, positionals } = parseCommand(cmd, { args: [...argv], allowPositionals: true, options: adminOptions });
  if (values.help) return help(cmd, io);
  const [name] = expectPositionals(positionals, ['administrator NAME'], cmd);
  const target = await resolveTarget(values, io);
  const a = expectShape(adminSchema, await callApi(target, 'GET', path(name!)), 'administrator');
  if (values.json) printJson(io, { items: a.tokens });
  else printTokens(io, a);
  return 0;
}

async function tokenRemove(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'admin token rm';
  const { values, positionals } = parseCommand(cmd, { args: [...argv], allowPositionals: true, options: adminOptions });
  if (values.help) return help(cmd, io);
  const [name, id] = expectPositionals(positionals, ['administrator NAME', 'token ID'], cmd);
  const target = await resolveTarget(values, io);
  await callApi(target, 'DELETE', `${path(name!)}/tokens/${encodeURIComponent(id!)}`);
  if (values.json) printJson(io, { name, id, deleted: true });
  else io.out(`revoked API token ${id} of ${name}`);
  return 0;
}

function help(cmd: string, io: CliIo): number {
  io.out(usage(cmd));
  return 0;
}
