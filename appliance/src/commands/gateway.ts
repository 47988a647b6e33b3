import { z } from '@outpost/common';
import { adminOptions, parseCommand } from '../args.js';
import { callApi, expectShape } from '../client/api.js';
import { resolveTarget } from '../client/target.js';
import { UsageError } from '../errors.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';
import { formatTable, formatTime } from '../table.js';

const HELP_GATEWAY = `Usage: outpost gateway connections [--agent ID] [--json]
  Tunnels open through the Internet gateways, as the gateways last reported them.`;
const HELP_AGENT = `Usage: outpost agent revoke ID [--reason TEXT] [--json]
  Revoke every certificate of an agent (or site server) and block new ones: gateways
  close its tunnels and refuse it.
       outpost agent unblock ID
       outpost agent install-command [--site S] [--uses N] [--expires D]
       outpost agent push HOST... --ssh-user U [--ssh-key F] [--port P] [--concurrency N]`;

const connSchema = z.looseObject({
  gateway: z.string(),
  principal: z.string(),
  kind: z.string(),
  remote: z.string(),
  target: z.string(),
  since: z.string(),
  bytesIn: z.number(),
  bytesOut: z.number(),
});
const tableSchema = z.looseObject({ gateways: z.array(z.looseObject({ id: z.string(), name: z.string(), connections: z.number() })), items: z.array(z.unknown()) });

/** `outpost gateway connections [--agent ID]`. */
export async function gatewayCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'gateway';
  const { values, positionals } = parseCommand(cmd, { args: [...argv], options: { ...adminOptions, agent: { type: 'string' } }, allowPositionals: true });
  if (values.help || positionals[0] !== 'connections') {
    if (values.help) {
      io.out(HELP_GATEWAY);
      return 0;
    }
    throw new UsageError(`unknown gateway sub-command '${positionals[0] ?? ''}'\n${HELP_GATEWAY}`, cmd);
  }
  const target = await resolveTarget(values, io);
  const query = values.agent ? `?principal=${encodeURIComponent(values.agent)}` : '';
  const table = expectShape(tableSchema, await callApi(target, 'GET', `/gateway/connections${query}`), 'connection table');
  if (values.json) {
    printJson(io, table);
    return 0;
  }
  const rows = table.items.map((c) => expectShape(connSchema, c, 'connection'));
  const names = new Map(table.gateways.map((g) => [g.id, g.name]));
  io.out(`${table.gateways.length} gateway(s) reporting, ${rows.length} tunnel(s)`);
  if (rows.length > 0) {
    printLines(
      io,
      formatTable(
        ['GATEWAY', 'PRINCIPAL', 'KIND', 'FROM', 'TARGET', 'SINCE', 'BYTES IN', 'BYTES OUT'],
        rows.map((c) => [names.get(c.gateway) ?? c.gateway, c.principal, c.kind, c.remote, c.target, formatTime(c.since), String(c.bytesIn), String(c.bytesOut)]),
      ),
    );
  }
  return 0;
}

/** `outpost agent revoke ID [--reason TEXT]` and `outpost agent unblock ID`. */
export async function agentCommand(argv: readonly string[], io: CliIo): Promise<number> {
  if (argv[0] === 'install-command') return (await import('./agent-install.js')).agentInstallCommand(argv.slice(1), io);
  if (argv[0] === 'push') return (await import('./agent-push.js')).agentPushCommand(argv.slice(1), io);
  const cmd = 'agent';
  const { values, positionals } = parseCommand(cmd, { args: [...argv], options: { ...adminOptions, reason: { type: 'string' } }, allowPositionals: true });
  if (values.help) {
    io.out(HELP_AGENT);
    return 0;
  }
  const [sub, id] = positionals;
  if ((sub !== 'revoke' && sub !== 'unblock') || !id) throw new UsageError(`expected 'agent revoke ID' or 'agent unblock ID'\n${HELP_AGENT}`, cmd);
  const target = await resolveTarget(values, io);
  if (sub === 'unblock') {
    await callApi(target, 'DELETE', `/ca/principals/${encodeURIComponent(id)}/block`);
    io.out(`${id} unblocked`);
    return 0;
  }
  const res = expectShape(z.looseObject({ revoked: z.array(z.string()) }), await callApi(target, 'POST', `/ca/principals/${encodeURIComponent(id)}/block`, { reason: values.reason ?? 'revoked with outpost agent revoke' }), 'revocation');
  if (values.json) printJson(io, res);
  else io.out(`${id} blocked; ${res.revoked.length} certificate(s) revoked`);
  return 0;
}
