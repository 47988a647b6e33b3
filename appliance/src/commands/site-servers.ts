import { z } from '@outpost/common';
import { adminOptions, parseCommand } from '../args.js';
import { UsageError } from '../errors.js';
import { addressesOf, addService, describeGrant, dropService, grantOptions, type ServiceGrant } from './grant-options.js';
import { callApi, expectShape } from '../client/api.js';
import { resolveTarget } from '../client/target.js';
import { usage } from '../help.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';
import { formatTable, formatTime } from '../table.js';

const siteServerSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  reportedAddress: z.string().optional(),
  services: z.record(z.string(), z.unknown()).default({}),
  grant: z
    .looseObject({
      services: z.record(z.string(), z.unknown()).default({}),
      addresses: z.array(z.string()).default([]),
      names: z.array(z.string()).default([]),
      sites: z.array(z.string()).default([]),
      approvedBy: z.string().optional(),
    })
    .optional(),
  effectiveSites: z.array(z.string()).default([]),
  state: z.string(),
  lastContact: z.union([z.string(), z.number()]).optional(),
  load: z.looseObject({ agents: z.number() }).optional(),
});
const listSchema = z.looseObject({ items: z.array(siteServerSchema) });

/** Describes a site server's services: `package(constrained),task,netboot`. */
function describeServices(services: Record<string, unknown>): string {
  return Object.entries(services)
    .map(([name, v]) => {
      const constrained = name === 'package' && typeof v === 'object' && v !== null && 'constrained' in v ? (v as { constrained: unknown }).constrained : undefined;
      return constrained === undefined ? name : `${name}(${constrained ? 'constrained' : 'unconstrained'})`;
    })
    .join(',');
}

/** `outpost site-servers` */
export async function siteServersCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'site-servers';
  const { values } = parseCommand(cmd, { args: [...argv], options: adminOptions });
  if (values.help) {
    io.out(usage(cmd));
    return 0;
  }
  const target = await resolveTarget(values, io);
  const raw = await callApi(target, 'GET', '/site-servers');
  const list = expectShape(listSchema, raw, 'site-server list');
  if (values.json) {
    printJson(io, raw);
    return 0;
  }
  if (list.items.length === 0) {
    io.out("no site servers; enroll one with a token from 'outpost token create --for site-server'");
    return 0;
  }
  printLines(
    io,
    formatTable(
      ['ID', 'NAME', 'STATE', 'SERVICES', 'GRANTED', 'SITES', 'AGENTS', 'ADDRESSES', 'LAST CONTACT'],
      list.items.map((s) => [
        s.id,
        s.name,
        s.state,
        describeServices(s.services),
        describeGrant(s.grant?.services),
        s.effectiveSites.join(','),
        String(s.load?.agents ?? 0),
        (s.grant?.addresses ?? []).join(','),
        formatTime(s.lastContact),
      ]),
    ),
  );
  return 0;
}

/**
 * `outpost site-server set ID [--service S]... [--no-service NAME]... [--address IP]...
 * [--name DNS]... [--site NAME]...`: changes what a site server is granted. `--service`
 * adds to its services and `--no-service` takes one away; `--address`, `--name` and
 * `--site` each replace the whole list they name.
 */
export async function siteServerCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    io.out(usage('site-server'));
    return 0;
  }
  if (sub === undefined) throw new UsageError('missing sub-command: set', 'site-server');
  if (sub !== 'set') throw new UsageError(`unknown sub-command 'site-server ${sub}' (expected set)`, 'site-server');
  const cmd = 'site-server set';
  const { values, positionals } = parseCommand(cmd, { args: rest, allowPositionals: true, options: { ...adminOptions, ...grantOptions, 'no-service': { type: 'string', multiple: true } } });
  if (values.help) {
    io.out(usage(cmd));
    return 0;
  }
  const [id, ...extra] = positionals;
  if (id === undefined) throw new UsageError('missing the site server ID', cmd);
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`, cmd);
  if ([values.service, values['no-service'], values.address, values.name, values.site].every((v) => v === undefined)) {
    throw new UsageError('nothing to change: give --service, --no-service, --address, --name or --site', cmd);
  }
  const addresses = addressesOf(values.address, cmd);
  // Every option checked before the core is asked anything.
  for (const v of values.service ?? []) addService({}, v, cmd);
  for (const v of values['no-service'] ?? []) dropService({}, v, cmd);
  const target = await resolveTarget(values, io);
  const path = `/site-servers/${encodeURIComponent(id)}`;
  const current = expectShape(siteServerSchema, await callApi(target, 'GET', path), 'site server');
  const services = { ...(current.grant?.services ?? {}) } as ServiceGrant;
  for (const s of values.service ?? []) addService(services, s, cmd);
  for (const s of values['no-service'] ?? []) dropService(services, s, cmd);
  const grant = {
    services,
    ...(addresses ? { addresses } : {}),
    ...(values.name ? { names: values.name } : {}),
    ...(values.site ? { sites: values.site } : {}),
  };
  const raw = await callApi(target, 'PATCH', path, { grant });
  const s = expectShape(siteServerSchema, raw, 'site server');
  if (values.json) {
    printJson(io, raw);
    return 0;
  }
  printLines(
    io,
    formatTable(
      ['ID', 'NAME', 'GRANTED', 'RUNNING', 'ADDRESSES', 'NAMES', 'SITES'],
      [[s.id, s.name, describeGrant(s.grant?.services), describeServices(s.services), (s.grant?.addresses ?? []).join(','), (s.grant?.names ?? []).join(','), (s.grant?.sites ?? []).join(',')]],
    ),
  );
  return 0;
}
