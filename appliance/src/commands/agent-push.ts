import { spawn } from 'node:child_process';
import PQueue from 'p-queue';
import { z } from '@outpost/common';
import { adminOptions, parseCommand, positiveInt } from '../args.js';
import { callApi, expectShape } from '../client/api.js';
import { resolveTarget } from '../client/target.js';
import { UsageError } from '../errors.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';
import { formatTable } from '../table.js';
import { INSTALL_USAGE, installGet, shWord } from './agent-install.js';


export type PushReason = 'unreachable' | 'auth-failed' | 'unsupported-os' | 'install-failed';
export interface PushResult {
  host: string;
  result: 'installed' | 'failed';
  agent?: string;
  reason?: PushReason;
  detail?: string;
}

export interface SshHost {
  host: string;
  user?: string;
  port?: number;
}

/** `[user@]name[:port]` or `[user@][v6]:port`; undefined when it is not one (nothing starts with `-`: never an ssh option). */
export function parseHost(spec: string): SshHost | undefined {
  const m = /^(?:([^@\s:-][^@\s:]*)@)?(?:\[([0-9a-fA-F:.]+)\]|([^@\s:[\]-][^@\s:[\]]*))(?::(\d{1,5}))?$/.exec(spec);
  if (!m) return undefined;
  const port = m[4] === undefined ? undefined : Number(m[4]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return { host: (m[2] ?? m[3])!, ...(m[1] ? { user: m[1] } : {}), ...(port ? { port } : {}) };
}

/** The installer's exit codes (core src/install/README.md) and ssh's own (255). */
const UNSUPPORTED_OS = 3;
const SSH_FAILED = 255;

/** What ssh's failure says: no connection, or the host refused who we are. */
export function classifySshFailure(stderr: string): PushReason {
  return /Permission denied|Too many authentication failures|Host key verification failed|no matching host key|Authentication failed/i.test(stderr) ? 'auth-failed' : 'unreachable';
}

const lastLine = (text: string): string =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .at(-1) ?? '';

export interface PushOptions {
  user: string;
  key?: string | undefined;
  port: number;
  knownHosts?: string | undefined;
  connectTimeout: number;
  prefix?: string | undefined;
}

/**
 * Runs the installer on one host with the system's OpenSSH client (BatchMode: never a
 * prompt), the script on its standard input.
 */
export function pushOne(spec: string, h: SshHost, script: string, o: PushOptions): Promise<PushResult> {
  const user = h.user ?? o.user;
  const args = ['-o', 'BatchMode=yes', '-o', `ConnectTimeout=${o.connectTimeout}`, '-o', 'StrictHostKeyChecking=accept-new', '-p', String(h.port ?? o.port), '-l', user];
  if (o.knownHosts) args.push('-o', `UserKnownHostsFile=${o.knownHosts}`);
  if (o.key) args.push('-i', o.key, '-o', 'IdentitiesOnly=yes');
  const remote = o.prefix !== undefined ? `OUTPOST_PREFIX=${shWord(o.prefix)} sh -s` : user === 'root' ? 'sh -s' : 'sudo -n sh -s';
  args.push('--', h.host, remote);
  return new Promise((resolve) => {
    const p = spawn('ssh', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.stdin.on('error', () => undefined);
    p.on('error', (e) => resolve({ host: spec, result: 'failed', reason: 'install-failed', detail: `cannot run ssh: ${e.message}` }));
    p.on('close', (code) => {
      if (code === 0) {
        const agent = /^outpost-agent enrolled: (\S+)$/m.exec(out)?.[1];
        resolve({ host: spec, result: 'installed', ...(agent ? { agent } : { detail: 'started; not enrolled yet' }) });
      } else if (code === SSH_FAILED) resolve({ host: spec, result: 'failed', reason: classifySshFailure(err), detail: lastLine(err) });
      else if (code === UNSUPPORTED_OS) resolve({ host: spec, result: 'failed', reason: 'unsupported-os', detail: lastLine(err) });
      else resolve({ host: spec, result: 'failed', reason: 'install-failed', detail: `exit ${code}: ${lastLine(err)}` });
    });
    p.stdin.end(script);
  });
}

const createdSchema = z.looseObject({ id: z.string(), token: z.string() });

/** `outpost agent push HOST... --ssh-user U [--ssh-key F] [--port P] [--concurrency N]`. */
export async function agentPushCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'agent push';
  const { values, positionals } = parseCommand(cmd, {
    args: [...argv],
    allowPositionals: true,
    options: {
      ...adminOptions,
      'ssh-user': { type: 'string' },
      'ssh-key': { type: 'string' },
      port: { type: 'string' },
      concurrency: { type: 'string' },
      'known-hosts': { type: 'string' },
      'connect-timeout': { type: 'string' },
      prefix: { type: 'string' },
    },
  });
  if (values.help) {
    io.out(INSTALL_USAGE[cmd]!);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('name at least one HOST', cmd);
  if (values['ssh-user'] === undefined) throw new UsageError('missing --ssh-user USER', cmd);
  const hosts = positionals.map((spec) => {
    const h = parseHost(spec);
    if (!h) throw new UsageError(`'${spec}' is not a host ([USER@]NAME[:PORT])`, cmd);
    return { spec, h };
  });
  if (new Set(positionals).size !== positionals.length) throw new UsageError('a host is named twice', cmd);
  const port = positiveInt(values.port, 'port', cmd) ?? 22;
  if (port > 65535) throw new UsageError('--port must be at most 65535', cmd);
  const concurrency = positiveInt(values.concurrency, 'concurrency', cmd) ?? 10;
  const connectTimeout = positiveInt(values['connect-timeout'], 'connect-timeout', cmd) ?? 10;

  const target = await resolveTarget(values, io);
  const created = expectShape(createdSchema, await callApi(target, 'POST', '/tokens', { for: 'agent', uses: hosts.length, expires: '1h', note: `outpost agent push (${hosts.length} hosts)` }), 'token');
  // The installer comes from the core once and goes to every host over SSH.
  let script: string;
  try {
    script = await installGet(target, `/install/agent.sh?token=${encodeURIComponent(created.token)}`);
  } catch (err) {
    // No host was tried: the token is of no use.
    await callApi(target, 'DELETE', `/tokens/${encodeURIComponent(created.id)}`).catch(() => undefined);
    throw err;
  }
  const options: PushOptions = { user: values['ssh-user'], key: values['ssh-key'], port, knownHosts: values['known-hosts'], connectTimeout, prefix: values.prefix };
  const queue = new PQueue({ concurrency });
  const results = await Promise.all(hosts.map(({ spec, h }) => queue.add(() => pushOne(spec, h, script, options))));
  if (values.json) printJson(io, { items: results });
  else printLines(io, formatTable(['HOST', 'RESULT', 'AGENT / REASON'], results.map((r) => [r.host, r.result, r.result === 'installed' ? (r.agent ?? r.detail ?? '') : `${r.reason}: ${r.detail ?? ''}`])));
  return results.some((r) => r.result === 'failed') ? 1 : 0;
}
