import { parseDuration, z } from '@outpost/common';
import { adminOptions, parseCommand, positiveInt } from '../args.js';
import { callApi, expectShape } from '../client/api.js';
import { resolveTarget } from '../client/target.js';
import { UsageError } from '../errors.js';
import { usage } from '../help.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';
import { formatTable, formatTime } from '../table.js';

const KINDS = ['agent', 'site-server'] as const;

const createdSchema = z.looseObject({
  id: z.string(),
  token: z.string(),
  for: z.enum(KINDS),
  uses: z.number(),
  expiresAt: z.union([z.string(), z.number()]).optional(),
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
    options: { ...adminOptions, for: { type: 'string' }, uses: { type: 'string' }, expires: { type: 'string' }, note: { type: 'string' } },
  });
  if (values.help) {
    io.out(usage(cmd));
    return 0;
  }
  const kind = values.for;
  if (kind === undefined) throw new UsageError('missing --for agent|site-server', cmd);
  if (!(KINDS as readonly string[]).includes(kind)) throw new UsageError(`--for must be agent or site-server, got '${kind}'`, cmd);
  const uses = positiveInt(values.uses, 'uses', cmd);
  if (values.expires !== undefined) {
    try {
      parseDuration(values.expires);
    } catch (err) {
      throw new UsageError(`--expires: ${(err as Error).message}`, cmd);
    }
  }
  const target = await resolveTarget(values, io);
  const body = {
    for: kind,
    ...(uses === undefined ? {} : { uses }),
    ...(values.expires === undefined ? {} : { expires: values.expires }),
    ...(values.note === undefined ? {} : { note: values.note }),
  };
  const raw = await callApi(target, 'POST', '/tokens', body);
  const created = expectShape(createdSchema, raw, 'token');
  if (values.json) {
    printJson(io, raw);
    return 0;
  }
  printLines(io, formatTable(['TOKEN', 'FOR', 'USES', 'EXPIRES'], [[created.token, created.for, String(created.uses), formatTime(created.expiresAt)]]));
  io.out('');
  io.out('The token is shown only this once.');
  if (created.for === 'agent') io.out(`Enroll an agent with it: enrollToken in its config, or OUTPOST_AGENT__ENROLL_TOKEN=${created.token}`);
  return 0;
}
