import { z } from '@outpost/common';
import { adminOptions, parseCommand } from '../args.js';
import { callApi, expectShape } from '../client/api.js';
import { resolveTarget } from '../client/target.js';
import { UsageError } from '../errors.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';
import { formatTable } from '../table.js';
import { hasChildren } from './hierarchy.js';

export const JOB_USAGE: Record<string, string> = {
  'job add': `Usage: outpost job add NAME --step STEP [--step STEP...] [--description TEXT]

STEP is TASK-or-JOB[:stop|:continue|:retry=N][:codes=0,3010]: on a failure stop (the
default: the rest is skipped), continue, or retry N times; codes lists the exit codes
that count as success (default 0). A name that is a job nests that job.`,
  'job run': `Usage: outpost job run NAME (--agents ID... | --site NAME | --all | --core ID...) [--expires DURATION] [--once KEY] [--json]

Runs the job on the agents; prints the run id ({"id": ...} with --json). Offline agents
run it when they next make contact, until it expires (default 24h). With --once, agents
that already ran a run with the same KEY are skipped.
On a core with child cores, --all and --site run over the whole hierarchy (this core and
every core below; --site: the agents of that site on whichever core has it), and --core
runs on the agents of the cores given: the id printed is a hierarchy run (hr_...), whose
results come up from every core (outpost run show hr_...).`,
  'job edit': `Usage: outpost job edit NAME [--step STEP...] [--description TEXT] [--json]

Changes a job: --step (repeated) replaces its steps, in order; what is not given stays.
Runs already created keep the old steps.`,
  'job rm': `Usage: outpost job rm NAME [--json]

Removes a job (refused while another job nests it: CORE_TASK_JOB_CYCLE).`,
  'job clone': `Usage: outpost job clone NAME NEW-NAME [--json]

Copies a job (its steps) under a new name.`,
  jobs: `Usage: outpost jobs [--json]

Lists jobs and their steps.`,
};

const help = (io: CliIo, cmd: string): number => {
  io.out(JOB_USAGE[cmd]!);
  return 0;
};

const stepSchema = z.looseObject({ task: z.string().optional(), job: z.string().optional(), onFailure: z.string(), retries: z.number(), successCodes: z.array(z.number()) });
const jobSchema = z.looseObject({ name: z.string(), description: z.string().optional(), steps: z.array(stepSchema) });
const namesSchema = z.looseObject({ items: z.array(z.looseObject({ name: z.string() })) });

/** Parses `NAME[:stop|:continue|:retry=N][:codes=a,b]`. */
export function parseStep(spec: string): { name: string; onFailure: 'stop' | 'continue' | 'retry'; retries: number; successCodes?: number[] } {
  const [name, ...opts] = spec.split(':');
  if (!name) throw new UsageError(`bad --step '${spec}': no task or job name`);
  const out: ReturnType<typeof parseStep> = { name, onFailure: 'stop', retries: 0 };
  for (const o of opts) {
    let m: RegExpExecArray | null;
    if (o === 'stop' || o === 'continue') out.onFailure = o;
    else if ((m = /^retry=(\d{1,3})$/.exec(o))) Object.assign(out, { onFailure: 'retry', retries: Number(m[1]) });
    else if ((m = /^codes=(-?\d+(?:,-?\d+)*)$/.exec(o))) out.successCodes = m[1]!.split(',').map(Number);
    else throw new UsageError(`bad --step '${spec}': '${o}' is not stop, continue, retry=N or codes=LIST`);
  }
  return out;
}

/** `outpost job add|edit|rm|clone|run ...` */
export async function jobCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'add') return jobAddOrEdit('job add', rest, io);
  if (sub === 'edit') return jobAddOrEdit('job edit', rest, io);
  if (sub === 'rm') return jobRm(rest, io);
  if (sub === 'clone') return jobClone(rest, io);
  if (sub === 'run') return jobRun(rest, io);
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    io.out(['job add', 'job edit', 'job rm', 'job clone', 'job run'].map((c) => JOB_USAGE[c]).join('\n\n'));
    return 0;
  }
  throw new UsageError(`unknown sub-command 'job ${sub}' (expected add, edit, rm, clone or run)`);
}

async function jobAddOrEdit(cmd: 'job add' | 'job edit', argv: string[], io: CliIo): Promise<number> {
  const edit = cmd === 'job edit';
  const { values, positionals } = parseCommand(cmd, {
    args: argv,
    allowPositionals: true,
    options: { ...adminOptions, step: { type: 'string', multiple: true }, description: { type: 'string' } },
  });
  if (values.help) return help(io, cmd);
  const name = positionals[0];
  if (!name || positionals.length > 1) throw new UsageError('give one job NAME', cmd);
  if (!edit && !values.step?.length) throw new UsageError('give at least one --step', cmd);
  if (edit && !values.step?.length && values.description === undefined) throw new UsageError('nothing to change: give --step or --description', cmd);
  const target = await resolveTarget(values, io);
  let body: Record<string, unknown> = { name };
  if (edit) {
    const cur = expectShape(jobSchema, await callApi(target, 'GET', `/jobs/${encodeURIComponent(name)}`), 'job');
    body = {
      name,
      ...(cur.description === undefined ? {} : { description: cur.description }),
      steps: cur.steps.map((s) => ({ ...(s.job === undefined ? { task: s.task } : { job: s.job }), onFailure: s.onFailure, retries: s.retries, successCodes: s.successCodes })),
    };
  }
  if (values.step?.length) {
    const tasks = new Set(expectShape(namesSchema, await callApi(target, 'GET', '/tasks'), 'task list').items.map((t) => t.name));
    body.steps = values.step.map((s) => {
      const p = parseStep(s);
      return { [tasks.has(p.name) ? 'task' : 'job']: p.name, onFailure: p.onFailure, retries: p.retries, ...(p.successCodes ? { successCodes: p.successCodes } : {}) };
    });
  }
  if (values.description !== undefined) body.description = values.description;
  const saved = edit ? await callApi(target, 'PUT', `/jobs/${encodeURIComponent(name)}`, body) : await callApi(target, 'POST', '/jobs', body);
  const n = (body.steps as unknown[]).length;
  if (values.json) printJson(io, saved);
  else io.out(`job ${name} ${edit ? 'changed' : 'added'} (${n} step${n === 1 ? '' : 's'})`);
  return 0;
}

async function jobRm(argv: string[], io: CliIo): Promise<number> {
  const cmd = 'job rm';
  const { values, positionals } = parseCommand(cmd, { args: argv, allowPositionals: true, options: adminOptions });
  if (values.help) return help(io, cmd);
  const name = positionals[0];
  if (!name || positionals.length > 1) throw new UsageError('give one job NAME', cmd);
  const target = await resolveTarget(values, io);
  await callApi(target, 'DELETE', `/jobs/${encodeURIComponent(name)}`);
  if (values.json) printJson(io, { name, removed: true });
  else io.out(`job ${name} removed`);
  return 0;
}

async function jobClone(argv: string[], io: CliIo): Promise<number> {
  const cmd = 'job clone';
  const { values, positionals } = parseCommand(cmd, { args: argv, allowPositionals: true, options: adminOptions });
  if (values.help) return help(io, cmd);
  const [from, to] = positionals;
  if (!from || !to || positionals.length > 2) throw new UsageError('give the job NAME and the NEW-NAME', cmd);
  const target = await resolveTarget(values, io);
  const created = await callApi(target, 'POST', `/jobs/${encodeURIComponent(from)}/clone`, { name: to });
  if (values.json) printJson(io, created);
  else io.out(`job ${to} cloned from ${from}`);
  return 0;
}

async function jobRun(argv: string[], io: CliIo): Promise<number> {
  const cmd = 'job run';
  const { values, positionals } = parseCommand(cmd, {
    args: argv,
    allowPositionals: true,
    options: { ...adminOptions, agents: { type: 'string', multiple: true }, site: { type: 'string' }, all: { type: 'boolean' }, core: { type: 'string', multiple: true }, expires: { type: 'string' }, once: { type: 'string' } },
  });
  if (values.help) return help(io, cmd);
  const name = positionals[0];
  if (!name) throw new UsageError('missing the job NAME');
  // `--agents a b c`: agent ids may follow one --agents as positionals.
  const agents = values.agents ? [...values.agents, ...positionals.slice(1)] : undefined;
  if (!agents && positionals.length > 1) throw new UsageError(`unexpected '${positionals[1]}'`);
  if ([agents !== undefined, values.site !== undefined, values.all === true, values.core !== undefined].filter(Boolean).length !== 1) {
    throw new UsageError('give exactly one of --agents ID..., --site NAME, --all, --core ID...');
  }
  const target = await resolveTarget(values, io);
  if (values.core !== undefined || (!agents && (await hasChildren(target)))) {
    if (values.once) throw new UsageError('--once is for runs on this core only');
    const body = { job: name, ...(values.core ? { cores: values.core } : values.site ? { site: values.site } : { all: true }), ...(values.expires ? { expires: values.expires } : {}) };
    const run = expectShape(z.looseObject({ id: z.string() }), await callApi(target, 'POST', '/hierarchy/runs', body), 'hierarchy run');
    if (values.json) printJson(io, run);
    else io.out(run.id);
    return 0;
  }
  const body = { ...(agents ? { agents } : values.site ? { site: values.site } : { all: true }), ...(values.expires ? { expires: values.expires } : {}), ...(values.once ? { once: values.once } : {}) };
  const run = expectShape(z.looseObject({ id: z.string(), agents: z.number(), skipped: z.number().optional() }), await callApi(target, 'POST', `/jobs/${encodeURIComponent(name)}/runs`, body), 'run');
  if (values.json) printJson(io, run);
  else io.out(run.id);
  return 0;
}

/** `outpost jobs` */
export async function jobsCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'jobs';
  const { values } = parseCommand(cmd, { args: [...argv], options: adminOptions });
  if (values.help) return help(io, cmd);
  const target = await resolveTarget(values, io);
  const list = expectShape(z.looseObject({ items: z.array(jobSchema) }), await callApi(target, 'GET', '/jobs'), 'job list');
  if (values.json) {
    printJson(io, list);
    return 0;
  }
  if (list.items.length === 0) {
    io.out('no jobs');
    return 0;
  }
  const stepText = (s: z.infer<typeof stepSchema>): string =>
    `${s.job ? `job ${s.job}` : s.task}${s.onFailure === 'stop' ? '' : s.onFailure === 'retry' ? `:retry=${s.retries}` : ':continue'}`;
  printLines(io, formatTable(['NAME', 'STEPS'], list.items.map((j) => [j.name, j.steps.map(stepText).join(' → ')])));
  return 0;
}
