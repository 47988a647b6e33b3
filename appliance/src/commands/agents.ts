import { z } from '@outpost/common';
import { adminOptions, parseCommand, positiveInt } from '../args.js';
import { callApi, expectShape } from '../client/api.js';
import { resolveTarget } from '../client/target.js';
import { UsageError } from '../errors.js';
import { usage } from '../help.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';
import { formatTable, formatTime } from '../table.js';

const STATES = ['online', 'poll-only', 'offline'] as const;
const PAGE = 1000;

const agentSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  state: z.string(),
  ips: z.array(z.string()).default([]),
  sites: z.array(z.string()).default([]),
  os: z.string().optional(),
  lastContact: z.union([z.string(), z.number()]).optional(),
  lastContactVia: z.string().optional(),
});
const pageSchema = z.looseObject({ items: z.array(z.unknown()), next: z.string().optional() });

/** `outpost agents [--state S] [--site NAME] [--limit N]`: every page unless --limit. */
export async function agentsCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'agents';
  const { values } = parseCommand(cmd, {
    args: [...argv],
    options: { ...adminOptions, state: { type: 'string' }, site: { type: 'string' }, limit: { type: 'string' } },
  });
  if (values.help) {
    io.out(usage(cmd));
    return 0;
  }
  if (values.state !== undefined && !(STATES as readonly string[]).includes(values.state)) {
    throw new UsageError(`--state must be one of ${STATES.join(', ')}, got '${values.state}'`, cmd);
  }
  const limit = positiveInt(values.limit, 'limit', cmd);
  const target = await resolveTarget(values, io);
  const items: unknown[] = [];
  let after: string | undefined;
  do {
    const query = new URLSearchParams();
    if (values.state !== undefined) query.set('state', values.state);
    if (values.site !== undefined) query.set('site', values.site);
    query.set('limit', String(Math.min(PAGE, limit === undefined ? PAGE : limit - items.length)));
    if (after !== undefined) query.set('after', after);
    const page = expectShape(pageSchema, await callApi(target, 'GET', `/agents?${query}`), 'agent list');
    items.push(...page.items);
    after = page.next;
  } while (after !== undefined && (limit === undefined || items.length < limit));

  if (values.json) {
    printJson(io, { items });
    return 0;
  }
  const agents = items.map((a) => expectShape(agentSchema, a, 'agent'));
  if (agents.length === 0) {
    io.out('no agents');
    return 0;
  }
  printLines(
    io,
    formatTable(
      ['ID', 'NAME', 'STATE', 'LAST CONTACT', 'VIA', 'SITES', 'ADDRESSES', 'OS'],
      agents.map((a) => [a.id, a.name, a.state, formatTime(a.lastContact), a.lastContactVia ?? '', a.sites.join(','), a.ips.join(','), a.os ?? '']),
    ),
  );
  return 0;
}
