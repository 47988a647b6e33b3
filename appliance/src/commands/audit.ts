import { z } from '@outpost/common';
import { adminOptions, parseCommand, positiveInt } from '../args.js';
import { callApi, expectShape } from '../client/api.js';
import { resolveTarget } from '../client/target.js';
import { UsageError } from '../errors.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';
import { formatTable, formatTime } from '../table.js';

export const AUDIT_USAGE: Record<string, string> = {
  audit: `Usage: outpost audit [--since D] [--until D] [--admin NAME] [--action A] [--result ok|refused|failed]
                     [--limit N] [--before SEQ] [--json]
       outpost audit verify [--json]

Lists audit log entries, newest first: every change made through the API, CLI or
console, sign-ins and sign-outs, and every refused request (401, 403).
  --since D, --until D  a time (2026-12-01, 2026-12-01T08:00:00Z) or a duration ago (24h, 7d)
  --admin NAME          entries of this administrator (a failed sign-in: the name tried)
  --action A            actions starting with A (sites, sites.create, admins.)
  --result R            ok, refused or failed
  --limit N             at most N entries (default 100, at most 1000)
  --before SEQ          entries before this seq (the next page: the command prints it)
verify: checks the hash chain; exit 0 when it holds, 1 naming the first broken entry.`,
  'audit verify': `Usage: outpost audit verify [--json]

Checks the audit log's hash chain from its oldest kept entry to the newest. Prints
"audit log verified: N entries (seq A..B)" and exits 0 when it holds; otherwise names
the first broken entry (changed, missing, or out of chain) and exits 1.`,
};

const entrySchema = z.looseObject({
  seq: z.number(),
  at: z.string(),
  actor: z.looseObject({ kind: z.string(), admin: z.string().optional(), id: z.string().optional(), via: z.string().optional() }),
  from: z.looseObject({ address: z.string() }),
  action: z.string(),
  object: z.string().optional(),
  outcome: z.looseObject({ status: z.number(), code: z.string().optional(), result: z.string() }),
});
const listSchema = z.looseObject({ items: z.array(entrySchema), next: z.number().optional() });
const verifySchema = z.looseObject({
  ok: z.boolean(),
  entries: z.number(),
  first: z.number().optional(),
  last: z.number().optional(),
  broken: z.object({ seq: z.number(), reason: z.string() }).optional(),
});

/** `outpost audit [filters]`, `outpost audit verify` */
export async function auditCommand(argv: readonly string[], io: CliIo): Promise<number> {
  if (argv[0] === 'verify') return auditVerify(argv.slice(1), io);
  if (argv[0] === 'help') {
    io.out(AUDIT_USAGE.audit!);
    return 0;
  }
  if (argv[0] !== undefined && !argv[0].startsWith('-')) throw new UsageError(`unknown sub-command 'audit ${argv[0]}' (expected verify, or options)`, 'audit');
  return auditList(argv, io);
}

async function auditList(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'audit';
  const { values } = parseCommand(cmd, {
    args: [...argv],
    options: {
      ...adminOptions,
      since: { type: 'string' },
      until: { type: 'string' },
      admin: { type: 'string' },
      action: { type: 'string' },
      result: { type: 'string' },
      limit: { type: 'string' },
      before: { type: 'string' },
    },
  });
  if (values.help) {
    io.out(AUDIT_USAGE.audit!);
    return 0;
  }
  if (values.result !== undefined && !['ok', 'refused', 'failed'].includes(values.result)) throw new UsageError(`--result must be ok, refused or failed, got '${values.result}'`, cmd);
  const limit = positiveInt(values.limit, 'limit', cmd);
  const before = positiveInt(values.before, 'before', cmd);
  const q = new URLSearchParams();
  for (const k of ['since', 'until', 'admin', 'action', 'result'] as const) if (values[k] !== undefined) q.set(k, values[k]);
  if (limit !== undefined) q.set('limit', String(limit));
  if (before !== undefined) q.set('before', String(before));
  const target = await resolveTarget(values, io);
  const raw = await callApi(target, 'GET', `/audit${q.size > 0 ? `?${q}` : ''}`);
  const list = expectShape(listSchema, raw, 'audit list');
  if (values.json) {
    printJson(io, raw);
    return 0;
  }
  if (list.items.length === 0) {
    io.out('no audit entries match');
    return 0;
  }
  printLines(
    io,
    formatTable(
      ['SEQ', 'TIME', 'WHO', 'ACTION', 'OBJECT', 'RESULT', 'FROM'],
      list.items.map((e) => [
        String(e.seq),
        formatTime(e.at),
        who(e.actor),
        e.action,
        e.object ?? '',
        `${e.outcome.result} ${e.outcome.status}${e.outcome.code ? ` ${e.outcome.code}` : ''}`,
        e.from.address,
      ]),
    ),
  );
  if (list.next !== undefined) io.out(`more: outpost audit --before ${list.next}${limit !== undefined ? ` --limit ${limit}` : ''} (with the same filters)`);
  return 0;
}

function who(a: z.output<typeof entrySchema>['actor']): string {
  if (a.kind === 'admin') return `${a.admin ?? '?'}${a.via ? ` (${a.via})` : ''}`;
  if (a.kind === 'anonymous') return a.admin !== undefined ? `${a.admin}? (not signed in)` : 'anonymous';
  return `${a.kind} ${a.id ?? ''}`.trim();
}

async function auditVerify(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'audit verify';
  const { values } = parseCommand(cmd, { args: [...argv], options: adminOptions });
  if (values.help) {
    io.out(AUDIT_USAGE[cmd]!);
    return 0;
  }
  const target = await resolveTarget(values, io);
  const raw = await callApi(target, 'GET', '/audit/verify');
  const v = expectShape(verifySchema, raw, 'audit verify');
  if (values.json) printJson(io, raw);
  if (v.ok) {
    if (!values.json) io.out(`audit log verified: ${v.entries} entries${v.first !== undefined ? ` (seq ${v.first}..${v.last})` : ''}`);
    return 0;
  }
  const b = v.broken ?? { seq: 0, reason: 'unknown' };
  io.err(`audit log BROKEN at entry ${b.seq}: ${b.reason} (${v.entries} entries before it verified${v.first !== undefined ? `, seq ${v.first}..${v.last}` : ''})`);
  return 1;
}
