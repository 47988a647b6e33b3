import { OutpostError, z } from '@outpost/common';
import { adminOptions, checkDuration, parseCommand, positiveInt } from '../args.js';
import { ApiError, callApi, expectShape, type Target } from '../client/api.js';
import { resolveTarget } from '../client/target.js';
import { ApplianceErrors } from '../errors.js';
import type { CliIo } from '../io.js';
import { printJson } from '../output.js';

export const INSTALL_USAGE: Record<string, string> = {
  'agent install-command': `Usage: outpost agent install-command [--site NAME] [--uses N] [--expires DURATION] [--json]

Creates an agent enrollment token and prints the one line that installs and enrolls the
agent on a Linux x86_64 machine:
  curl -fsS 'https://core:8080/install/agent.sh?token=T' | sudo sh
For an https core the line first writes the core's CA certificate and passes it to curl
(--cacert), so the script comes only from this core.
  --uses N            machines the line may enroll (1)
  --expires DURATION  how long the line works (the core's default, 24h)
  --site NAME         the site the machines are for: the installer downloads the agent
                      from that site's package servers (staged now; the core until one is
                      ready), checking each file against the sha256 the core signed`,
  'agent push': `Usage: outpost agent push HOST... --ssh-user USER [--ssh-key FILE] [--port P] [--concurrency N]
                          [--known-hosts FILE] [--connect-timeout SECONDS] [--prefix DIR] [--json]

Installs and enrolls the agent on each HOST ([USER@]NAME[:PORT], [IPv6]:PORT) over SSH: one
enrollment token for them all (uses = number of hosts, expires in 1h); the core's installer
runs on each host (as root, else with sudo -n). Prints a table: host, result, agent id or
reason (unreachable, auth-failed, unsupported-os, install-failed); exit code 1 when any failed.
  --ssh-user USER          the login on the hosts
  --ssh-key FILE           the private key (else ssh's defaults and agent)
  --port P                 SSH port where HOST names none (22)
  --concurrency N          hosts at once (10)
  --known-hosts FILE       known_hosts to use (new host keys are added: accept-new)
  --connect-timeout S      seconds to wait for a host (10)
  --prefix DIR             install under DIR without root (OUTPOST_PREFIX; tests, trials)`,
};

const createdSchema = z.looseObject({ id: z.string(), token: z.string(), uses: z.number(), expiresAt: z.union([z.string(), z.number()]).optional() });
const manifestSchema = z.looseObject({ manifest: z.string() });
const stagedSchema = z.looseObject({
  package: z.looseObject({ id: z.string(), version: z.string() }),
  servers: z.array(z.looseObject({ name: z.string(), state: z.string() })),
  warnings: z.array(z.string()),
});

/** `'…'` for sh: the value as one single-quoted word. */
export const shWord = (v: string): string => `'${v.replace(/'/g, `'\\''`)}'`;

/** The core's own URL as it tells agents (the `core` line of its signed install manifest). */
export async function publicCoreUrl(target: Target): Promise<string> {
  const { manifest } = expectShape(manifestSchema, JSON.parse(await installGet(target, '/install/manifest')), 'install manifest');
  const line = manifest.split('\n').find((l) => l.startsWith('core '));
  return line ? line.slice(5) : target.url;
}

const errorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

/**
 * A GET outside the core's JSON API (`/install/...`, the CA's PEM): the text, or the
 * core's error as an {@link ApiError} (`CORE_INSTALL_NO_AGENT`, ...).
 */
export async function installGet(target: Target, path: string, bearer = false): Promise<string> {
  let res: Response;
  try {
    res = await fetch(`${target.url}${path}`, { ...(bearer ? { headers: { authorization: `Bearer ${target.token}` } } : {}), signal: AbortSignal.timeout(30_000) });
  } catch (cause) {
    throw new OutpostError(ApplianceErrors.CORE_UNREACHABLE, `cannot reach the core at ${target.url} (${(cause as Error).message}); is it running? (URL from ${target.source})`, { cause });
  }
  const text = await res.text();
  if (res.ok) return text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const e = errorBody.safeParse(parsed);
  if (e.success) throw new ApiError(e.data.error.code, e.data.error.message, res.status);
  throw new OutpostError(ApplianceErrors.BAD_RESPONSE, `GET ${target.url}${path}: ${res.status} (is this an Outpost core that serves install links?)`);
}

async function caCertificate(target: Target): Promise<string> {
  const pem = await installGet(target, '/api/v1/ca/certificate', true);
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new OutpostError(ApplianceErrors.BAD_RESPONSE, "the core's CA certificate is not PEM");
  return pem.trim();
}

/**
 * The line an administrator hands out. An https core's CA is pinned with `--cacert` rather
 * than `--pinnedpubkey`: the core makes a new HTTPS key at each start and renewal, so a
 * pinned leaf key would break the line at the next restart; its CA stays.
 */
export async function installLine(target: Target, token: string): Promise<{ line: string; url: string }> {
  const core = await publicCoreUrl(target);
  const url = `${core}/install/agent.sh?token=${encodeURIComponent(token)}`;
  if (!core.startsWith('https:')) return { url, line: `curl -fsS ${shWord(url)} | sudo sh` };
  const pem = await caCertificate(target);
  const words = pem.split('\n').map((l) => shWord(l.trim())).join(' ');
  return { url, line: `printf '%s\\n' ${words} > outpost-ca.pem && curl -fsS --cacert outpost-ca.pem ${shWord(url)} | sudo sh` };
}

/**
 * Stages the install files to the site's package servers (`POST /install/stage`) and says
 * how far it is on stderr. A refusal (no `packages.enable`, no packages module) is a warning:
 * the line still works, downloading from the core.
 */
async function stageToSite(target: Target, site: string, io: CliIo): Promise<z.output<typeof stagedSchema> | undefined> {
  let staged: z.output<typeof stagedSchema>;
  try {
    staged = expectShape(stagedSchema, await callApi(target, 'POST', '/install/stage', { site }), 'install staging');
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    io.err(`warning: the install files are not staged to site ${site} (${err.code}: ${err.message}); machines download them from the core`);
    return undefined;
  }
  for (const w of staged.warnings) io.err(`warning: ${w}`);
  if (staged.servers.length > 0) {
    const ready = staged.servers.filter((s) => s.state === 'ready').length;
    io.err(`install files ${staged.package.version} staged to site ${site}: ${staged.servers.map((s) => `${s.name} ${s.state}`).join(', ')}${ready < staged.servers.length ? '; until one is ready, machines download from the core' : ''}`);
  }
  return staged;
}

/** `outpost agent install-command [--site S] [--uses N] [--expires D]`. */
export async function agentInstallCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'agent install-command';
  const { values } = parseCommand(cmd, { args: [...argv], options: { ...adminOptions, site: { type: 'string' }, uses: { type: 'string' }, expires: { type: 'string' } } });
  if (values.help) {
    io.out(INSTALL_USAGE[cmd]!);
    return 0;
  }
  const uses = positiveInt(values.uses, 'uses', cmd);
  checkDuration(values.expires, cmd);
  const target = await resolveTarget(values, io);
  // A site that does not exist is refused here (404 from the core), before a token is made.
  if (values.site !== undefined) await callApi(target, 'GET', `/sites/${encodeURIComponent(values.site)}`);
  const body = {
    for: 'agent',
    ...(uses === undefined ? {} : { uses }),
    ...(values.expires === undefined ? {} : { expires: values.expires }),
    note: values.site === undefined ? 'outpost agent install-command' : `outpost agent install-command --site ${values.site}`,
    ...(values.site === undefined ? {} : { site: values.site }),
  };
  const created = expectShape(createdSchema, await callApi(target, 'POST', '/tokens', body), 'token');
  const { line, url } = await installLine(target, created.token);
  const staged = values.site === undefined ? undefined : await stageToSite(target, values.site, io);
  if (values.json) printJson(io, { command: line, url, tokenId: created.id, uses: created.uses, expiresAt: created.expiresAt, ...(values.site ? { site: values.site, staged: staged ?? null } : {}) });
  else io.out(line);
  return 0;
}
