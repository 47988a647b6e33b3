import { z } from '@outpost/common';
import { adminOptions, checkDuration, parseCommand } from '../args.js';
import { callApi, expectShape } from '../client/api.js';
import { readStdinLines } from '../client/stdin.js';
import { resolveTarget } from '../client/target.js';
import { UsageError } from '../errors.js';
import { usage } from '../help.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';
import { formatTable, formatTime } from '../table.js';
import { adminTokenCommand } from './admin-tokens.js';
import { adminPath, adminSchema, issuedSchema, printIssued, printTokens, scopeText, signInText } from './admin-views.js';
import { expectPositionals, listOptions } from './list-options.js';

const adminListSchema = z.looseObject({ items: z.array(adminSchema) });
const addedSchema = z.looseObject({ admin: adminSchema, token: issuedSchema.optional() });

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
  token: adminTokenCommand,
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
  const raw = await callApi(target, 'GET', adminPath(name!));
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
  const raw = await callApi(target, 'PATCH', adminPath(name!), body);
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
  await callApi(target, 'DELETE', adminPath(name!));
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
  await callApi(target, 'PUT', `${adminPath(name!)}/password`, body);
  if (values.json) printJson(io, { name, password: 'set' });
  else io.out(`password of ${name} set; its console sessions ended`);
  return 0;
}

function help(cmd: string, io: CliIo): number {
  io.out(usage(cmd));
  return 0;
}
