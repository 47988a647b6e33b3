import { z } from '@outpost/common';
import { adminOptions, parseCommand } from '../args.js';
import { callApi, expectShape } from '../client/api.js';
import { resolveTarget } from '../client/target.js';
import { UsageError } from '../errors.js';
import { usage } from '../help.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';
import { formatTable } from '../table.js';
import { expectPositionals, listOptions } from './list-options.js';

const roleSchema = z.looseObject({ name: z.string(), builtIn: z.boolean(), description: z.string().optional(), permissions: z.array(z.string()) });
const roleListSchema = z.looseObject({ items: z.array(roleSchema) });
const permissionListSchema = z.looseObject({ items: z.array(z.looseObject({ permission: z.string(), description: z.string() })) });

/** `outpost role add|list|rm|permissions ...` */
export async function roleCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'add':
      return roleAdd(rest, io);
    case 'list':
    case 'ls':
      return roleList(rest, io);
    case 'rm':
    case 'remove':
      return roleRemove(rest, io);
    case 'permissions':
      return permissionList(rest, io);
    case '--help':
    case '-h':
    case 'help':
      return help('role', io);
    case undefined:
      throw new UsageError('missing sub-command: add, list, rm or permissions', 'role');
    default:
      throw new UsageError(`unknown sub-command 'role ${sub}' (expected add, list, rm or permissions)`, 'role');
  }
}

async function roleAdd(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'role add';
  const { values, tokens } = parseCommand(cmd, {
    args: [...argv],
    allowPositionals: true,
    tokens: true,
    options: { ...adminOptions, allow: { type: 'string', multiple: true }, description: { type: 'string' } },
  });
  if (values.help) return help(cmd, io);
  const { positionals, lists } = listOptions(tokens, ['allow']);
  const [name] = expectPositionals(positionals, ['role NAME'], cmd);
  if (!lists.allow?.length) throw new UsageError('give at least one --allow PERMISSION (outpost role permissions lists them)', cmd);
  const target = await resolveTarget(values, io);
  const body = { name, permissions: lists.allow, ...(values.description === undefined ? {} : { description: values.description }) };
  const raw = await callApi(target, 'POST', '/roles', body);
  const role = expectShape(roleSchema, raw, 'role');
  if (values.json) printJson(io, raw);
  else io.out(`added role ${role.name}: ${role.permissions.join(', ')}`);
  return 0;
}

async function roleList(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'role list';
  const { values } = parseCommand(cmd, { args: [...argv], options: adminOptions });
  if (values.help) return help(cmd, io);
  const target = await resolveTarget(values, io);
  const raw = await callApi(target, 'GET', '/roles');
  const list = expectShape(roleListSchema, raw, 'role list');
  if (values.json) {
    printJson(io, raw);
    return 0;
  }
  printLines(
    io,
    formatTable(
      ['NAME', 'KIND', 'DESCRIPTION', 'PERMISSIONS'],
      list.items.map((r) => [r.name, r.builtIn ? 'built-in' : 'custom', r.description ?? '', r.permissions.join(',')]),
    ),
  );
  return 0;
}

async function roleRemove(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'role rm';
  const { values, positionals } = parseCommand(cmd, { args: [...argv], allowPositionals: true, options: adminOptions });
  if (values.help) return help(cmd, io);
  const [name] = expectPositionals(positionals, ['role NAME'], cmd);
  const target = await resolveTarget(values, io);
  await callApi(target, 'DELETE', `/roles/${encodeURIComponent(name!)}`);
  if (values.json) printJson(io, { name, deleted: true });
  else io.out(`removed role ${name}`);
  return 0;
}

async function permissionList(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'role permissions';
  const { values } = parseCommand(cmd, { args: [...argv], options: adminOptions });
  if (values.help) return help(cmd, io);
  const target = await resolveTarget(values, io);
  const raw = await callApi(target, 'GET', '/permissions');
  const list = expectShape(permissionListSchema, raw, 'permission list');
  if (values.json) printJson(io, raw);
  else printLines(io, formatTable(['PERMISSION', 'ALLOWS'], list.items.map((p) => [p.permission, p.description])));
  return 0;
}

function help(cmd: string, io: CliIo): number {
  io.out(usage(cmd));
  return 0;
}
