import { readFile } from 'node:fs/promises';
import { z } from '@outpost/common';
import { adminOptions, parseCommand } from '../args.js';
import { callApi, expectShape } from '../client/api.js';
import { resolveTarget } from '../client/target.js';
import { UsageError } from '../errors.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';
import { formatTable } from '../table.js';

export const TASK_USAGE: Record<string, string> = {
  'task add': `Usage: outpost task add NAME [--timeout DURATION] [--server] -- PROGRAM ARGS...
       outpost task add NAME --script FILE [--interpreter sh] [--server] [--timeout DURATION]
       outpost task add NAME --builtin reboot|shutdown

Defines a reusable task: a program run without a shell, a script file's text run by
its interpreter, or an agent built-in (carried out only where the agent allows it).
  --server            a server task: the core runs it (once per target agent, with
                      OUTPOST_AGENT_ID, OUTPOST_AGENT_NAME, OUTPOST_RUN_ID set), not the agents
  --timeout DURATION  the step is killed (its whole process tree) after this (default 1h)
  --description TEXT`,
  'task edit': `Usage: outpost task edit NAME [--timeout DURATION] [--description TEXT] [-- PROGRAM ARGS... | --script FILE [--interpreter I] | --builtin B] [--server | --agent]

Changes a task; what is not given stays. Runs already created keep the old definition.`,
  'task rm': `Usage: outpost task rm NAME [--json]

Removes a task (refused while a job uses it: CORE_TASK_IN_USE).`,
  'task clone': `Usage: outpost task clone NAME NEW-NAME [--json]

Copies a task under a new name.`,
  tasks: `Usage: outpost tasks [--json]

Lists tasks: name, kind, what they run, timeout.`,
};

const taskSchema = z.looseObject({
  name: z.string(),
  kind: z.string(),
  description: z.string().optional(),
  program: z.string().optional(),
  args: z.array(z.string()).optional(),
  env: z.record(z.string(), z.string()).optional(),
  cwd: z.string().optional(),
  script: z.string().optional(),
  interpreter: z.string().optional(),
  builtin: z.string().optional(),
  timeoutMs: z.number(),
});

const help = (io: CliIo, cmd: string): number => {
  io.out(TASK_USAGE[cmd]!);
  return 0;
};

const whatOptions = {
  timeout: { type: 'string' },
  script: { type: 'string' },
  interpreter: { type: 'string' },
  builtin: { type: 'string' },
  description: { type: 'string' },
  server: { type: 'boolean' },
} as const;

/** `outpost task add|edit|rm|clone ...` */
export async function taskCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help' || sub === undefined) {
    io.out(['task add', 'task edit', 'task rm', 'task clone'].map((c) => TASK_USAGE[c]).join('\n\n'));
    return 0;
  }
  if (sub === 'add') return taskAddOrEdit('task add', rest, io);
  if (sub === 'edit') return taskAddOrEdit('task edit', rest, io);
  if (sub === 'rm') return taskRm(rest, io);
  if (sub === 'clone') return taskClone(rest, io);
  throw new UsageError(`unknown sub-command 'task ${sub}' (expected add, edit, rm or clone)`);
}

async function taskAddOrEdit(cmd: 'task add' | 'task edit', rest: string[], io: CliIo): Promise<number> {
  const edit = cmd === 'task edit';
  const { values, positionals, tokens } = parseCommand(cmd, {
    args: rest,
    allowPositionals: true,
    tokens: true,
    options: { ...adminOptions, ...whatOptions, ...(edit ? { agent: { type: 'boolean' } } : {}) },
  });
  if (values.help) return help(io, cmd);
  const name = positionals[0];
  if (!name) throw new UsageError('missing the task NAME', cmd);
  const dashdash = tokens.find((t) => t.kind === 'option-terminator');
  const command = dashdash ? positionals.slice(1) : [];
  if (!dashdash && positionals.length > 1) throw new UsageError(`unexpected '${positionals[1]}': put the program after --`, cmd);
  const kinds = [command.length > 0, values.script !== undefined, values.builtin !== undefined].filter(Boolean).length;
  if (kinds > 1 || (!edit && kinds === 0)) throw new UsageError('give exactly one of: -- PROGRAM ARGS..., --script FILE, --builtin NAME', cmd);
  const onAgent = 'agent' in values && values.agent === true;
  if (values.server && onAgent) throw new UsageError('give --server or --agent, not both', cmd);
  if (values.builtin !== undefined && values.server) throw new UsageError('a built-in runs on agents only; drop --server', cmd);
  const target = await resolveTarget(values, io);

  // The body the core's PUT/POST /tasks takes: start from the task as it is (edit).
  let body: Record<string, unknown> = { name };
  if (edit) {
    const cur = expectShape(taskSchema, await callApi(target, 'GET', `/tasks/${encodeURIComponent(name)}`), 'task');
    body = { name, kind: cur.kind, timeout: cur.timeoutMs };
    for (const k of ['description', 'program', 'args', 'env', 'cwd', 'script', 'interpreter', 'builtin'] as const) if (cur[k] !== undefined) body[k] = cur[k];
  }
  const serverNow = body.kind === 'server';
  if (kinds === 1) {
    for (const k of ['program', 'args', 'env', 'cwd', 'script', 'interpreter', 'builtin']) delete body[k];
    if (values.script !== undefined) {
      body.script = await readFile(values.script, 'utf8');
      if (values.interpreter) body.interpreter = values.interpreter;
    } else if (command.length > 0) Object.assign(body, { program: command[0], args: command.slice(1) });
    else body.builtin = values.builtin;
  } else if (values.interpreter !== undefined) {
    if (body.script === undefined) throw new UsageError('--interpreter applies to a script task only', cmd);
    body.interpreter = values.interpreter;
  }
  const server = values.server === true || (serverNow && !onAgent);
  if (values.builtin !== undefined) body.kind = 'builtin';
  else if (server) body.kind = 'server';
  else if (body.script !== undefined) body.kind = 'script';
  else if (body.program !== undefined) body.kind = 'command';
  if (values.timeout) body.timeout = values.timeout;
  if (values.description !== undefined) body.description = values.description;

  const saved = edit ? await callApi(target, 'PUT', `/tasks/${encodeURIComponent(name)}`, body) : await callApi(target, 'POST', '/tasks', body);
  if (values.json) printJson(io, saved);
  else io.out(`task ${name} ${edit ? 'changed' : 'added'}`);
  return 0;
}

async function taskRm(rest: string[], io: CliIo): Promise<number> {
  const cmd = 'task rm';
  const { values, positionals } = parseCommand(cmd, { args: rest, allowPositionals: true, options: adminOptions });
  if (values.help) return help(io, cmd);
  const name = positionals[0];
  if (!name || positionals.length > 1) throw new UsageError('give one task NAME', cmd);
  const target = await resolveTarget(values, io);
  await callApi(target, 'DELETE', `/tasks/${encodeURIComponent(name)}`);
  if (values.json) printJson(io, { name, removed: true });
  else io.out(`task ${name} removed`);
  return 0;
}

async function taskClone(rest: string[], io: CliIo): Promise<number> {
  const cmd = 'task clone';
  const { values, positionals } = parseCommand(cmd, { args: rest, allowPositionals: true, options: adminOptions });
  if (values.help) return help(io, cmd);
  const [from, to] = positionals;
  if (!from || !to || positionals.length > 2) throw new UsageError('give the task NAME and the NEW-NAME', cmd);
  const target = await resolveTarget(values, io);
  const created = await callApi(target, 'POST', `/tasks/${encodeURIComponent(from)}/clone`, { name: to });
  if (values.json) printJson(io, created);
  else io.out(`task ${to} cloned from ${from}`);
  return 0;
}

/** `outpost tasks` */
export async function tasksCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'tasks';
  const { values } = parseCommand(cmd, { args: [...argv], options: adminOptions });
  if (values.help) return help(io, cmd);
  const target = await resolveTarget(values, io);
  const list = expectShape(z.looseObject({ items: z.array(taskSchema) }), await callApi(target, 'GET', '/tasks'), 'task list');
  if (values.json) {
    printJson(io, list);
    return 0;
  }
  if (list.items.length === 0) {
    io.out('no tasks');
    return 0;
  }
  const what = (t: z.infer<typeof taskSchema>): string =>
    t.script !== undefined ? `script (${t.interpreter ?? 'sh'})` : t.program !== undefined ? [t.program, ...(t.args ?? [])].join(' ') : (t.builtin ?? '');
  printLines(io, formatTable(['NAME', 'KIND', 'RUNS', 'TIMEOUT'], list.items.map((t) => [t.name, t.kind, what(t).slice(0, 60), `${Math.round(t.timeoutMs / 1000)}s`])));
  return 0;
}
