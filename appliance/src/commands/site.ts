import { z } from '@outpost/common';
import { adminOptions, parseCommand } from '../args.js';
import { callApi, expectShape } from '../client/api.js';
import { resolveTarget } from '../client/target.js';
import { UsageError } from '../errors.js';
import { usage } from '../help.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';
import { formatTable } from '../table.js';

const siteSchema = z.looseObject({
  name: z.string(),
  subnets: z.array(z.string()),
  description: z.string().optional(),
  siteServers: z.array(z.string()).optional(),
  agents: z.number().optional(),
});
const siteListSchema = z.looseObject({ items: z.array(siteSchema) });

/** `outpost site add|list|rm ...` */
export async function siteCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'add':
      return siteAdd(rest, io);
    case 'list':
    case 'ls':
      return siteList(rest, io);
    case 'rm':
    case 'remove':
      return siteRemove(rest, io);
    case undefined:
      throw new UsageError('missing sub-command: add, list or rm', 'site');
    case '--help':
    case '-h':
    case 'help':
      io.out(usage('site'));
      return 0;
    default:
      throw new UsageError(`unknown sub-command 'site ${sub}' (expected add, list or rm)`, 'site');
  }
}

async function siteAdd(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'site add';
  const { values, tokens } = parseCommand(cmd, {
    args: [...argv],
    allowPositionals: true,
    tokens: true,
    options: { ...adminOptions, subnet: { type: 'string', multiple: true }, description: { type: 'string' } },
  });
  if (values.help) {
    io.out(usage(cmd));
    return 0;
  }
  // NAME is the first positional; positionals after a --subnet are more subnets.
  let name: string | undefined;
  const subnets: string[] = [];
  let afterSubnet = false;
  for (const t of tokens) {
    if (t.kind === 'option') {
      afterSubnet = t.name === 'subnet';
      if (t.name === 'subnet' && t.value !== undefined) subnets.push(...t.value.split(',').filter((s) => s !== ''));
    } else if (t.kind === 'positional') {
      if (afterSubnet) subnets.push(...t.value.split(',').filter((s) => s !== ''));
      else if (name === undefined) name = t.value;
      else throw new UsageError(`unexpected argument '${t.value}' (one site NAME; subnets go after --subnet)`, cmd);
    }
  }
  if (name === undefined) throw new UsageError('missing site NAME', cmd);
  if (subnets.length === 0) throw new UsageError('give at least one --subnet CIDR', cmd);
  const target = await resolveTarget(values, io);
  const body = { name, subnets, ...(values.description === undefined ? {} : { description: values.description }) };
  const created = expectShape(siteSchema, await callApi(target, 'POST', '/sites', body), 'site');
  if (values.json) printJson(io, created);
  else io.out(`added site ${created.name}: ${created.subnets.join(', ')}`);
  return 0;
}

async function siteList(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'site list';
  const { values } = parseCommand(cmd, { args: [...argv], options: adminOptions });
  if (values.help) {
    io.out(usage(cmd));
    return 0;
  }
  const target = await resolveTarget(values, io);
  const raw = await callApi(target, 'GET', '/sites');
  const list = expectShape(siteListSchema, raw, 'site list');
  if (values.json) {
    printJson(io, raw);
    return 0;
  }
  if (list.items.length === 0) {
    io.out('no sites yet; add one with: outpost site add NAME --subnet CIDR');
    return 0;
  }
  printLines(
    io,
    formatTable(
      ['NAME', 'SUBNETS', 'SITE SERVERS', 'AGENTS', 'DESCRIPTION'],
      list.items.map((s) => [s.name, s.subnets.join(','), String(s.siteServers?.length ?? 0), String(s.agents ?? 0), s.description ?? '']),
    ),
  );
  return 0;
}

async function siteRemove(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'site rm';
  const { values, positionals } = parseCommand(cmd, { args: [...argv], allowPositionals: true, options: adminOptions });
  if (values.help) {
    io.out(usage(cmd));
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'missing site NAME' : 'one site NAME at a time', cmd);
  const name = positionals[0]!;
  const target = await resolveTarget(values, io);
  await callApi(target, 'DELETE', `/sites/${encodeURIComponent(name)}`);
  if (values.json) printJson(io, { name, deleted: true });
  else io.out(`removed site ${name}`);
  return 0;
}
