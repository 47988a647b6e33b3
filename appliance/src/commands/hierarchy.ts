import { z } from '@outpost/common';
import { adminOptions, parseCommand } from '../args.js';
import { callApi, expectShape, type Target } from '../client/api.js';
import { resolveTarget } from '../client/target.js';
import { UsageError } from '../errors.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';
import { formatTable, formatTime } from '../table.js';

export const HIERARCHY_USAGE = `Usage: outpost hierarchy token create [--expires DURATION] [--note TEXT] [--json]
       outpost hierarchy join PARENT_URL --token TOKEN [--json]
       outpost hierarchy leave
       outpost hierarchy remove CHILD_ID
       outpost hierarchy status [--json]
       outpost hierarchy replicate --now [--full] [--json]
       outpost hierarchy agents [--core ID] [--duplicates] [--json]

token create (on a parent): a one-use join token and the command to run on the child.
join (on a child): joins the parent's link listener with the token (mutual TLS from then on);
  its --token is the join token (the admin token: OUTPOST_TOKEN or --config).
leave: forgets the parent; what it owned here becomes this core's own.
remove: forgets a child at once (its link certificate stops working).
status: this core's parent and children: state ok|degraded|failed, last sync, lag, pending, last error, bytes.
replicate --now: sends what is pending both ways at once; --full asks the parent for a complete copy.
agents: the agents of the cores below (one computer on two cores is merged, see --duplicates).`;

const linkSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  state: z.string(),
  lastSync: z.string().optional().nullable(),
  lag: z.number(),
  pending: z.number().nullable().optional(),
  lastError: z.string().nullable(),
  bytes: z.object({ down: z.number(), up: z.number() }),
});
const statusSchema = z.looseObject({
  core: z.object({ id: z.string(), name: z.string() }),
  listener: z.string().nullable(),
  parent: linkSchema.extend({ url: z.string(), here: z.boolean().optional() }).nullable(),
  children: z.array(linkSchema),
});

const kib = (n: number): string => (n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`);

function printStatus(io: CliIo, raw: unknown): void {
  const s = expectShape(statusSchema, raw, 'hierarchy status');
  const lines = [`core ${s.core.name} (${s.core.id})${s.listener ? `  link listener ${s.listener}` : ''}`];
  const row = (role: string, l: z.infer<typeof linkSchema>): string[] => [role, l.name, l.id, l.state, formatTime(l.lastSync ?? undefined), String(l.lag), l.pending === null || l.pending === undefined ? '-' : String(l.pending), `${kib(l.bytes.down)} / ${kib(l.bytes.up)}`, l.lastError ?? ''];
  const rows = [...(s.parent ? [row('parent', s.parent)] : []), ...s.children.map((c) => row('child', c))];
  if (rows.length === 0) lines.push('no parent and no children');
  else lines.push('', ...formatTable(['LINK', 'NAME', 'CORE', 'STATE', 'LAST SYNC', 'LAG', 'PENDING', 'BYTES DOWN / UP', 'LAST ERROR'], rows));
  // Several cores on one PostgreSQL: the parent link's state is the holder's to show.
  if (s.parent?.here === false) lines.push('', 'the link to the parent runs on another core sharing this store (the hierarchy.child lease holder): ask that core for its state');
  printLines(io, lines);
}

/** `outpost hierarchy token create|join|leave|remove|status|replicate|agents` */
export async function hierarchyCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest0] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    io.out(HIERARCHY_USAGE);
    return sub === undefined ? 2 : 0;
  }
  let rest = rest0;
  let cmd = `hierarchy ${sub}`;
  if (sub === 'token') {
    if (rest[0] !== 'create') throw new UsageError(`unknown sub-command 'hierarchy token ${rest[0] ?? ''}' (expected create)`);
    rest = rest.slice(1);
    cmd = 'hierarchy token create';
  }
  const { values, positionals } = parseCommand(cmd, {
    args: [...rest],
    allowPositionals: true,
    options: { ...adminOptions, token: { type: 'string' }, expires: { type: 'string' }, note: { type: 'string' }, now: { type: 'boolean' }, full: { type: 'boolean' }, core: { type: 'string' }, duplicates: { type: 'boolean' } },
  });
  if (values.help) {
    io.out(HIERARCHY_USAGE);
    return 0;
  }
  // `hierarchy join --token` is the join token: the admin token comes from OUTPOST_TOKEN or --config there.
  const target: Target = await resolveTarget(cmd === 'hierarchy join' ? { ...values, token: undefined } : values, io);
  switch (cmd) {
    case 'hierarchy token create': {
      const t = expectShape(z.looseObject({ token: z.string(), expiresAt: z.string(), joinCommand: z.string() }), await callApi(target, 'POST', '/hierarchy/tokens', { ...(values.expires ? { expires: values.expires } : {}), ...(values.note ? { note: values.note } : {}) }), 'join token');
      if (values.json) printJson(io, t);
      else printLines(io, [`token (one use, expires ${formatTime(t.expiresAt)}):`, t.token, '', 'on the child core:', `  ${t.joinCommand}`]);
      return 0;
    }
    case 'hierarchy join': {
      const url = positionals[0];
      if (!url || !values.token) throw new UsageError('give the PARENT_URL and --token TOKEN');
      const r = expectShape(z.looseObject({ parent: z.string(), name: z.string(), url: z.string() }), await callApi(target, 'POST', '/hierarchy/join', { url, token: values.token }), 'join');
      if (values.json) printJson(io, r);
      else io.out(`joined ${r.name} (${r.parent}) at ${r.url}`);
      return 0;
    }
    case 'hierarchy leave':
      await callApi(target, 'POST', '/hierarchy/leave', {});
      io.out('left the parent core');
      return 0;
    case 'hierarchy remove': {
      const id = positionals[0];
      if (!id) throw new UsageError('give the CHILD_ID (see outpost hierarchy status)');
      await callApi(target, 'DELETE', `/hierarchy/children/${encodeURIComponent(id)}`);
      io.out(`removed child core ${id}`);
      return 0;
    }
    case 'hierarchy status': {
      const raw = await callApi(target, 'GET', '/hierarchy');
      if (values.json) printJson(io, raw);
      else printStatus(io, raw);
      return 0;
    }
    case 'hierarchy replicate': {
      if (!values.now) throw new UsageError('replicate needs --now');
      const raw = await callApi(target, 'POST', '/hierarchy/replicate', { full: values.full === true });
      if (values.json) printJson(io, raw);
      else printStatus(io, raw);
      return 0;
    }
    case 'hierarchy agents': {
      const q = new URLSearchParams({ ...(values.core ? { core: values.core } : {}), ...(values.duplicates ? { duplicates: 'true' } : {}) });
      const raw = expectShape(
        z.looseObject({ items: z.array(z.looseObject({ core: z.string(), id: z.string(), name: z.string().optional(), state: z.string().optional(), os: z.string().optional(), lastContact: z.string().optional(), duplicates: z.array(z.object({ core: z.string(), id: z.string() })).optional() })), merged: z.number() }),
        await callApi(target, 'GET', `/hierarchy/agents${q.size ? `?${q}` : ''}`),
        'agents',
      );
      if (values.json) printJson(io, raw);
      else {
        printLines(io, [
          ...formatTable(['CORE', 'AGENT', 'NAME', 'STATE', 'OS', 'LAST CONTACT', 'ALSO ON'], raw.items.map((a) => [a.core, a.id, a.name ?? '', a.state ?? '', a.os ?? '', formatTime(a.lastContact), (a.duplicates ?? []).map((d) => `${d.core}/${d.id}`).join(' ')])),
          ...(raw.merged ? ['', `${raw.merged} duplicate record(s) merged (same MAC on two cores; the latest contact stands)`] : []),
        ]);
      }
      return 0;
    }
    default:
      throw new UsageError(`unknown sub-command '${cmd}' (expected token create, join, leave, remove, status, replicate, agents)`);
  }
}

/** Whether the core at `target` has children (then `job run --all|--site` runs over the hierarchy). */
export async function hasChildren(target: Target): Promise<boolean> {
  try {
    const s = (await callApi(target, 'GET', '/hierarchy')) as { children?: Array<{ state: string }> };
    return (s.children ?? []).some((c) => c.state !== 'removed');
  } catch {
    return false;
  }
}

const resultSchema = z.looseObject({
  run: z.looseObject({ id: z.string(), job: z.string(), createdAt: z.number(), target: z.record(z.string(), z.unknown()) }),
  counts: z.record(z.string(), z.number()),
  cores: z.record(z.string(), z.number()),
  agents: z.array(z.looseObject({ core: z.string(), agent: z.string(), name: z.string().optional(), state: z.string(), exit: z.number().optional() })),
});

/** `outpost run show hr_...`: a run over the hierarchy, every agent with its core. */
export async function showHierarchyRun(target: Target, id: string, io: CliIo, json: boolean): Promise<number> {
  const raw = await callApi(target, 'GET', `/hierarchy/runs/${encodeURIComponent(id)}`);
  if (json) {
    printJson(io, raw);
    return 0;
  }
  const r = expectShape(resultSchema, raw, 'hierarchy run');
  const agents = [...r.agents].sort((a, b) => a.core.localeCompare(b.core) || a.agent.localeCompare(b.agent));
  printLines(io, [
    `run ${r.run.id}  job ${r.run.job}  ${agents.length} agent${agents.length === 1 ? '' : 's'} on ${Object.keys(r.cores).length} core(s)  created ${formatTime(new Date(r.run.createdAt).toISOString())}`,
    `states: ${Object.entries(r.counts).map(([s, n]) => `${s} ${n}`).join(', ') || '-'}`,
    '',
    ...formatTable(['CORE', 'AGENT', 'NAME', 'STATE', 'EXIT'], agents.map((a) => [a.core, a.agent, a.name ?? '', a.state, a.exit === undefined ? '' : String(a.exit)])),
  ]);
  return 0;
}
