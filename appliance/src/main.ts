import { readFile } from 'node:fs/promises';
import { isOutpostError } from '@outpost/common';
import { agentsCommand } from './commands/agents.js';
import { agentCommand, gatewayCommand } from './commands/gateway.js';
import { siteServerCommand, siteServersCommand } from './commands/site-servers.js';
import { siteCommand } from './commands/site.js';
import { tokenCommand } from './commands/token.js';
import { jobCommand, jobsCommand } from './commands/jobs.js';
import { runCommand } from './commands/runs.js';
import { taskCommand, tasksCommand } from './commands/tasks.js';
import { packageCommand, packagesCommand } from './commands/packages.js';
import { bootImageCommand, bootImagesCommand, bootsCommand, computerCommand, computersCommand } from './commands/boot.js';
import { adminCommand } from './commands/admins.js';
import { roleCommand } from './commands/roles.js';
import { ApiError } from './client/api.js';
import { auditCommand } from './commands/audit.js';
import { coreCommand } from './commands/core.js';
import { hierarchyCommand } from './commands/hierarchy.js';
import { UsageError } from './errors.js';
import { usage } from './help.js';
import { processIo, type CliIo } from './io.js';

/** The appliance's version, from its package.json (beside dist/ in the repo and in the .deb alike). */
async function applianceVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

type Command = (argv: readonly string[], io: CliIo) => Promise<number>;

// The commands that run services load them only when called, so an admin command
// (`outpost site list`) starts without importing every service.
const startCommand: Command = async (argv, io) => (await import('./commands/start.js')).startCommand(argv, io);
const tftpCommand: Command = async (argv, io) => (await import('./commands/tftp.js')).tftpCommand(argv, io);

const COMMANDS: Record<string, Command> = {
  start: startCommand,
  site: siteCommand,
  token: tokenCommand,
  agents: agentsCommand,
  agent: agentCommand,
  gateway: gatewayCommand,
  'site-servers': siteServersCommand,
  'site-server': siteServerCommand,
  tftp: tftpCommand,
  task: taskCommand,
  tasks: tasksCommand,
  job: jobCommand,
  jobs: jobsCommand,
  run: runCommand,
  computer: computerCommand,
  computers: computersCommand,
  'boot-image': bootImageCommand,
  'boot-images': bootImagesCommand,
  boots: bootsCommand,
  package: packageCommand,
  packages: packagesCommand,
  admin: adminCommand,
  role: roleCommand,
  audit: auditCommand,
  core: coreCommand,
  hierarchy: hierarchyCommand,
};

/**
 * Runs one `outpost` command line and returns its exit status: 0 done, 1 error (printed
 * as `error CODE: message`), 2 bad command line (printed with the usage).
 */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (err) {
    return report(err, io);
  }
}

async function dispatch(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.err(usage());
    return 2;
  }
  if (name === '--help' || name === '-h') {
    io.out(usage());
    return 0;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    io.out(`outpost ${await applianceVersion()} (node ${process.version})`);
    return 0;
  }
  if (name === 'help') {
    io.out(usage(rest.join(' ') || undefined));
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) throw new UsageError(name.startsWith('-') ? `unknown option '${name}' (a command comes first)` : `unknown command '${name}'`);
  return command(rest, io);
}

function report(err: unknown, io: CliIo): number {
  if (err instanceof UsageError) {
    io.err(`error ${err.code}: ${err.message}`);
    io.err('');
    io.err(usage(err.command));
    return 2;
  }
  if (isOutpostError(err)) {
    io.err(`error ${err.code}: ${err.message}`);
    // A refusal names the permission it needed, whatever the message says.
    const permission = err instanceof ApiError && err.code === 'CORE_FORBIDDEN' ? err.details?.permission : undefined;
    if (typeof permission === 'string' && !err.message.includes(permission)) io.err(`missing permission: ${permission}`);
    return 1;
  }
  const code = (err as { code?: unknown }).code;
  io.err(`error ${typeof code === 'string' ? code : 'UNEXPECTED'}: ${err instanceof Error ? err.message : String(err)}`);
  if (io.env.OUTPOST_DEBUG && err instanceof Error && err.stack) io.err(err.stack);
  return 1;
}
