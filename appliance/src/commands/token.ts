import { z } from '@outpost/common';
import { adminOptions, checkDuration, parseCommand, positiveInt } from '../args.js';
import { callApi, expectShape } from '../client/api.js';
import { resolveTarget } from '../client/target.js';
import { UsageError } from '../errors.js';
import { usage } from '../help.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';
import { formatTable, formatTime } from '../table.js';
import { addressesOf, addService, describeGrant, grantOptions, type ServiceGrant } from './grant-options.js';

const KINDS = ['agent', 'site-server'] as const;

const createdSchema = z.looseObject({
  id: z.string(),
  token: z.string(),
  for: z.enum(KINDS),
  uses: z.number(),
  expiresAt: z.union([z.string(), z.number()]).optional(),
  grant: z.looseObject({ services: z.record(z.string(), z.unknown()), sites: z.array(z.string()).optional(), addresses: z.array(z.string()).optional(), names: z.array(z.string()).optional() }).optional(),
});

/** `outpost token create ...` */
export async function tokenCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    io.out(usage('token'));
    return 0;
  }
  if (sub === undefined) throw new UsageError('missing sub-command: create', 'token');
  if (sub !== 'create') throw new UsageError(`unknown sub-command 'token ${sub}' (expected create)`, 'token');
  const cmd = 'token create';
  const { values } = parseCommand(cmd, {
    args: rest,
    options: { ...adminOptions, ...grantOptions, for: { type: 'string' }, uses: { type: 'string' }, expires: { type: 'string' }, note: { type: 'string' } },
  });
  if (values.help) {
    io.out(usage(cmd));
    return 0;
  }
  const kind = values.for;
  if (kind === undefined) throw new UsageError('missing --for agent|site-server', cmd);
  if (!(KINDS as readonly string[]).includes(kind)) throw new UsageError(`--for must be agent or site-server, got '${kind}'`, cmd);
  const grantGiven = [values.service, values.address, values.name, values.site].some((v) => v !== undefined);
  if (kind === 'agent' && grantGiven) throw new UsageError('--service, --address, --name and --site are for --for site-server: an agent is granted nothing', cmd);
  if (kind === 'site-server' && values.service === undefined) throw new UsageError('a site-server token needs at least one --service (what the site server may run)', cmd);
  const services: ServiceGrant = {};
  for (const s of values.service ?? []) addService(services, s, cmd);
  const addresses = addressesOf(values.address, cmd);
  const uses = positiveInt(values.uses, 'uses', cmd);
  checkDuration(values.expires, cmd);
  const target = await resolveTarget(values, io);
  const body = {
    for: kind,
    ...(uses === undefined ? {} : { uses }),
    ...(values.expires === undefined ? {} : { expires: values.expires }),
    ...(values.note === undefined ? {} : { note: values.note }),
    ...(kind === 'site-server'
      ? { grant: { services, ...(values.site ? { sites: values.site } : {}), ...(addresses ? { addresses } : {}), ...(values.name ? { names: values.name } : {}) } }
      : {}),
  };
  const raw = await callApi(target, 'POST', '/tokens', body);
  const created = expectShape(createdSchema, raw, 'token');
  if (values.json) {
    printJson(io, raw);
    return 0;
  }
  printLines(io, formatTable(['TOKEN', 'FOR', 'USES', 'EXPIRES'], [[created.token, created.for, String(created.uses), formatTime(created.expiresAt)]]));
  if (created.grant) {
    const g = created.grant;
    io.out('');
    io.out(`Grants: ${describeGrant(g.services)}`);
    io.out(`  addresses: ${g.addresses?.join(', ') || "(the address it enrolls from)"}`);
    if (g.names?.length) io.out(`  names: ${g.names.join(', ')}`);
    if (g.sites?.length) io.out(`  sites: ${g.sites.join(', ')}`);
  }
  io.out('');
  io.out('The token is shown only this once.');
  if (created.for === 'agent') io.out(`Enroll an agent with it: enrollToken in its config, or OUTPOST_AGENT__ENROLL_TOKEN=${created.token}`);
  return 0;
}
