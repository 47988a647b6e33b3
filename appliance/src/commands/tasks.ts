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
  'task add': `Usage: outpost task add NAME [--timeout DURATION] -- PROGRAM ARGS...
       outpost task add NAME --script FILE [--interpreter sh] [--timeout DURATION]
       outpost task add NAME --builtin reboot|shutdown

Defines a reusable task: a program run without a shell, a script file's text run by
its interpreter, or an agent built-in (carried out only where the agent allows it).
  --timeout DURATION  the step is killed (its whole process tree) after this (default 1h)
  --description TEXT`,
  tasks: `Usage: outpost tasks [--json]

Lists tasks: name, kind, what they run, timeout.`,
};

const taskSchema = z.looseObject({ name: z.string(), kind: z.string(), program: z.string().optional(), args: z.array(z.string()).optional(), interpreter: z.string().optional(), builtin: z.string().optional(), timeoutMs: z.number() });

const help = (io: CliIo, cmd: string): number => {
  io.out(TASK_USAGE[cmd]!);
  return 0;
};

/** `outpost task add ...` */
export async function taskCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help' || sub === undefined) return help(io, 'task add');
  if (sub !== 'add') throw new UsageError(`unknown sub-command 'task ${sub}' (expected add)`);
  const cmd = 'task add';
  const { values, positionals, tokens } = parseCommand(cmd, {
    args: rest,
    allowPositionals: true,
    tokens: true,
    options: { ...adminOptions, timeout: { type: 'string' }, script: { type: 'string' }, interpreter: { type: 'string' }, builtin: { type: 'string' }, description: { type: 'string' } },
  });
  if (values.help) return help(io, cmd);
  const name = positionals[0];
  if (!name) throw new UsageError('missing the task NAME');
  const dashdash = tokens.find((t) => t.kind === 'option-terminator');
  const command = dashdash ? positionals.slice(1) : [];
  if (!dashdash && positionals.length > 1) throw new UsageError(`unexpected '${positionals[1]}': put the program after --`);
  const kinds = [command.length > 0, values.script !== undefined, values.builtin !== undefined].filter(Boolean).length;
  if (kinds !== 1) throw new UsageError('give exactly one of: -- PROGRAM ARGS..., --script FILE, --builtin NAME');
  const body: Record<string, unknown> = { name, ...(values.timeout ? { timeout: values.timeout } : {}), ...(values.description ? { description: values.description } : {}) };
  if (command.length > 0) Object.assign(body, { kind: 'command', program: command[0], args: command.slice(1) });
  else if (values.script !== undefined) {
    Object.assign(body, { kind: 'script', script: await readFile(values.script, 'utf8'), ...(values.interpreter ? { interpreter: values.interpreter } : {}) });
  } else Object.assign(body, { kind: 'builtin', builtin: values.builtin });
  const target = await resolveTarget(values, io);
  const created = await callApi(target, 'POST', '/tasks', body);
  if (values.json) printJson(io, created);
  else io.out(`task ${name} added`);
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
    t.kind === 'command' ? [t.program ?? '', ...(t.args ?? [])].join(' ') : t.kind === 'script' ? `script (${t.interpreter ?? 'sh'})` : (t.builtin ?? '');
  printLines(io, formatTable(['NAME', 'KIND', 'RUNS', 'TIMEOUT'], list.items.map((t) => [t.name, t.kind, what(t).slice(0, 60), `${Math.round(t.timeoutMs / 1000)}s`])));
  return 0;
}
