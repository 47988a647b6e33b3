import { z } from '@outpost/common';
import { adminOptions, parseCommand } from '../args.js';
import { callApi, expectShape } from '../client/api.js';
import { resolveTarget } from '../client/target.js';
import { UsageError } from '../errors.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';
import { formatTable, formatTime } from '../table.js';
import { showHierarchyRun } from './hierarchy.js';

export const RUN_USAGE = `Usage: outpost run show ID [--json]
       outpost run cancel ID [--json]

show: counts per state, the time of every hop (dispatched to the task server, tickled,
fetched, started, ended, recorded; ms after the run was created: p50, p99, max),
failures grouped by error, the slowest agents, and agents not reached with the reason.
cancel: agents that have not finished stop; running steps are killed.`;

const hop = z.object({ count: z.number(), p50: z.number(), p99: z.number(), max: z.number() });
const showSchema = z.looseObject({
  id: z.string(),
  job: z.string(),
  state: z.string(),
  agents: z.number(),
  createdAt: z.string(),
  durationMs: z.number(),
  counts: z.record(z.string(), z.number()),
  hops: z.record(z.string(), hop),
  via: z.record(z.string(), z.number()),
  failures: z.array(z.object({ error: z.string(), count: z.number() })),
  slowest: z.array(z.looseObject({ agent: z.string(), ms: z.number(), state: z.string() })),
  notReached: z.looseObject({ reasons: z.record(z.string(), z.number()), agents: z.array(z.looseObject({ agent: z.string(), name: z.string().optional(), state: z.string(), reason: z.string() })) }),
});

/** `outpost run show|cancel ID` */
export async function runCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    io.out(RUN_USAGE);
    return 0;
  }
  if (sub !== 'show' && sub !== 'cancel') throw new UsageError(`unknown sub-command 'run ${sub}' (expected show or cancel)`);
  const { values, positionals } = parseCommand(`run ${sub}`, { args: rest, allowPositionals: true, options: adminOptions });
  if (values.help) {
    io.out(RUN_USAGE);
    return 0;
  }
  const id = positionals[0];
  if (!id || positionals.length > 1) throw new UsageError('give one run ID');
  const target = await resolveTarget(values, io);
  if (sub === 'cancel') {
    const r = await callApi(target, 'POST', `/runs/${encodeURIComponent(id)}/cancel`);
    if (values.json) printJson(io, r);
    else io.out(`run ${id} cancelled`);
    return 0;
  }
  // A run over the hierarchy (started on a parent with --all, --core or --site): every agent with its core.
  if (id.startsWith('hr_')) return showHierarchyRun(target, id, io, values.json === true);
  const raw = await callApi(target, 'GET', `/runs/${encodeURIComponent(id)}`);
  if (values.json) {
    printJson(io, raw);
    return 0;
  }
  const r = expectShape(showSchema, raw, 'run');
  const counts = Object.entries(r.counts).filter(([, n]) => n > 0).map(([s, n]) => `${s} ${n}`).join(', ');
  const lines = [
    `run ${r.id}  job ${r.job}  ${r.state}  ${r.agents} agent${r.agents === 1 ? '' : 's'}  created ${formatTime(r.createdAt)}  ${(r.durationMs / 1000).toFixed(1)}s`,
    `states: ${counts || '-'}`,
    `reached via: ${Object.entries(r.via).map(([v, n]) => `${v} ${n}`).join(', ') || '-'}`,
    '',
    ...formatTable(['HOP (ms after start)', 'AGENTS', 'P50', 'P99', 'MAX'], Object.entries(r.hops).map(([h, s]) => [h, String(s.count), String(s.p50), String(s.p99), String(s.max)])),
  ];
  if (r.failures.length) lines.push('', ...formatTable(['FAILURE', 'AGENTS'], r.failures.map((f) => [f.error, String(f.count)])));
  if (r.slowest.length) lines.push('', ...formatTable(['SLOWEST AGENT', 'MS', 'STATE'], r.slowest.map((s) => [s.agent, String(s.ms), s.state])));
  const nr = Object.entries(r.notReached.reasons);
  if (nr.length) {
    lines.push('', `not reached: ${nr.map(([k, n]) => `${k} ${n}`).join(', ')}`);
    lines.push(...formatTable(['AGENT', 'NAME', 'STATE', 'REASON'], r.notReached.agents.map((a) => [a.agent, a.name ?? '', a.state, a.reason])));
  }
  printLines(io, lines);
  return 0;
}
