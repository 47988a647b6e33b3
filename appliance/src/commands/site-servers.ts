import { z } from '@outpost/common';
import { adminOptions, parseCommand } from '../args.js';
import { callApi, expectShape } from '../client/api.js';
import { resolveTarget } from '../client/target.js';
import { usage } from '../help.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';
import { formatTable, formatTime } from '../table.js';

const siteServerSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  address: z.string().optional(),
  services: z.record(z.string(), z.unknown()).default({}),
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
      ['ID', 'NAME', 'STATE', 'SERVICES', 'SITES', 'AGENTS', 'ADDRESS', 'LAST CONTACT'],
      list.items.map((s) => [
        s.id,
        s.name,
        s.state,
        describeServices(s.services),
        s.effectiveSites.join(','),
        String(s.load?.agents ?? 0),
        s.address ?? '',
        formatTime(s.lastContact),
      ]),
    ),
  );
  return 0;
}
