import { adminOptions, checkDuration, parseCommand } from '../args.js';
import { callApi, expectShape } from '../client/api.js';
import { resolveTarget } from '../client/target.js';
import { UsageError } from '../errors.js';
import { usage } from '../help.js';
import type { CliIo } from '../io.js';
import { printJson } from '../output.js';
import { adminPath, adminSchema, issuedSchema, printIssued, printTokens } from './admin-views.js';
import { expectPositionals } from './list-options.js';

/** `outpost admin token create|list|rm ...`: an administrator's API tokens. */
export async function adminTokenCommand(argv: readonly string[], io: CliIo): Promise<number> {
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
  const raw = await callApi(target, 'POST', `${adminPath(admin!)}/tokens`, { name: values.name, ...(values.expires === undefined ? {} : { expires: values.expires }) });
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
  const a = expectShape(adminSchema, await callApi(target, 'GET', adminPath(name!)), 'administrator');
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
  await callApi(target, 'DELETE', `${adminPath(name!)}/tokens/${encodeURIComponent(id!)}`);
  if (values.json) printJson(io, { name, id, deleted: true });
  else io.out(`revoked API token ${id} of ${name}`);
  return 0;
}

function help(cmd: string, io: CliIo): number {
  io.out(usage(cmd));
  return 0;
}
