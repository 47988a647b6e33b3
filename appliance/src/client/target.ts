import { access, readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { OutpostError } from '@outpost/common';
import { ADMIN_TOKEN_FILE } from '@outpost/core';
import { configuredCoreUrl, loadApplianceConfig } from '../config/load.js';
import { ApplianceErrors } from '../errors.js';
import type { CliIo } from '../io.js';
import type { Target } from './api.js';

/** Config files the CLI looks at, in order, when none is given. */
export function defaultConfigCandidates(cwd: string): string[] {
  return [join(cwd, 'configs', 'all-in-one.yaml'), '/etc/outpost/outpost.yaml', '/etc/outpost/core.yaml'];
}

export interface TargetFlags {
  /** `--url`, possibly repeated (each may also be a comma-separated list). */
  url?: string | readonly string[] | undefined;
  token?: string | undefined;
  config?: string | undefined;
}

/** A core this box runs, as its config describes it. */
export interface LocalCore {
  url: string;
  dataDir: string;
  tokenFile: string;
  configFile: string;
}

const exists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  );

/** The first of {@link defaultConfigCandidates} that exists, if any. */
export async function firstDefaultConfig(cwd: string): Promise<string | undefined> {
  for (const f of defaultConfigCandidates(cwd)) if (await exists(f)) return f;
  return undefined;
}

/**
 * Finds the core described by a config: `file` when given, else the first of
 * {@link defaultConfigCandidates} that exists and has a `core:` section.
 */
export async function findLocalCore(file: string | undefined, io: Pick<CliIo, 'cwd' | 'env'>): Promise<LocalCore | undefined> {
  const candidates = file ? [resolve(io.cwd, file)] : defaultConfigCandidates(io.cwd);
  for (const candidate of candidates) {
    if (!file && !(await exists(candidate))) continue;
    const config = await loadApplianceConfig(candidate, io.env);
    if (!config.core) {
      if (file) {
        throw new OutpostError(ApplianceErrors.NO_CREDENTIALS, `config ${file} runs no core; point the CLI at one with OUTPOST_URL and OUTPOST_TOKEN (or --url/--token)`);
      }
      continue;
    }
    const { http, dataDir } = config.core;
    const shown = relative(io.cwd, candidate) || candidate;
    if (http.port === 0) {
      throw new OutpostError(
        ApplianceErrors.NO_CREDENTIALS,
        `the core in ${shown} listens on a random port (core.http.port: 0), so its URL cannot be known from the config; set OUTPOST_URL (or --url)`,
      );
    }
    const absData = resolve(io.cwd, dataDir);
    return { url: configuredCoreUrl(config.core), dataDir: absData, tokenFile: join(absData, ADMIN_TOKEN_FILE), configFile: shown };
  }
  return undefined;
}

async function readToken(core: LocalCore): Promise<string> {
  let text: string;
  try {
    text = await readFile(core.tokenFile, 'utf8');
  } catch (cause) {
    const code = (cause as { code?: string }).code;
    if (code === 'ENOENT') {
      throw new OutpostError(
        ApplianceErrors.NO_CREDENTIALS,
        `no admin token at ${core.tokenFile}: the core writes it on its first start; is it running? (outpost start --config ${core.configFile})`,
        { cause },
      );
    }
    throw new OutpostError(
      ApplianceErrors.TOKEN_UNREADABLE,
      `cannot read the admin token ${core.tokenFile} (${code ?? (cause as Error).message}): run as the user the core runs as (e.g. sudo -u outpost outpost ...), or set OUTPOST_TOKEN`,
      { cause },
    );
  }
  const token = text.trim();
  if (token === '') throw new OutpostError(ApplianceErrors.TOKEN_UNREADABLE, `the admin token file ${core.tokenFile} is empty`);
  return token;
}

/** `http(s)://host:port` of a URL, undefined when it is not an http(s) URL. */
const origin = (url: string): string | undefined => {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : undefined;
  } catch {
    return undefined;
  }
};

/** The URLs of `--url` (repeated) or `OUTPOST_URL` (comma-separated), in order, blanks and repeats dropped; undefined when neither is set. */
function givenUrls(flag: string | readonly string[] | undefined, env: string | undefined): string[] | undefined {
  const raw = flag === undefined ? env : typeof flag === 'string' ? flag : flag.join(',');
  if (raw === undefined) return undefined;
  return [...new Set(raw.split(',').map((u) => u.trim().replace(/\/+$/, '')).filter((u) => u !== ''))];
}

/**
 * Where to send admin calls and with which token: `--url`/`--token`, else `OUTPOST_URL`
 * / `OUTPOST_TOKEN`, else the core this box runs (found through its config; its admin
 * token read from `<dataDir>/admin-token`). The local token is only ever sent to the
 * local core's own URL. Several core URLs (`--url` repeated, `OUTPOST_URL=a,b`) are
 * cores of one estate: calls go to the first and fail over in order.
 */
export async function resolveTarget(flags: TargetFlags, io: Pick<CliIo, 'cwd' | 'env'>): Promise<Target> {
  const urls = givenUrls(flags.url, io.env.OUTPOST_URL);
  const token = flags.token ?? io.env.OUTPOST_TOKEN;
  const urlSource = flags.url !== undefined ? '--url' : 'OUTPOST_URL';
  if (urls !== undefined) {
    const bad = urls.length === 0 ? '' : urls.find((u) => origin(u) === undefined);
    if (bad !== undefined) throw new OutpostError(ApplianceErrors.NO_CREDENTIALS, `${urlSource} '${bad}' is not a URL (expected e.g. http://127.0.0.1:8080)`);
  }
  const first = urls?.[0];
  if (urls !== undefined && first !== undefined && token !== undefined) return { url: first, ...(urls.length > 1 ? { urls } : {}), token, source: urlSource };

  const local = await findLocalCore(flags.config, io);
  if (!local) {
    throw new OutpostError(
      ApplianceErrors.NO_CREDENTIALS,
      `no core to talk to: set OUTPOST_URL and OUTPOST_TOKEN (or --url/--token), or run where a config names one (--config FILE; looked for ${defaultConfigCandidates(io.cwd).join(', ')})`,
    );
  }
  const other = urls?.find((u) => origin(u) !== origin(local.url));
  if (other !== undefined) {
    throw new OutpostError(
      ApplianceErrors.NO_CREDENTIALS,
      `${urlSource} is ${other} but no token was given for it (the local admin token is only sent to ${local.url}); set OUTPOST_TOKEN or --token`,
    );
  }
  return {
    url: (first ?? local.url).replace(/\/+$/, ''),
    ...(urls && urls.length > 1 ? { urls } : {}),
    token: token ?? (await readToken(local)),
    source: first !== undefined ? urlSource : local.configFile,
  };
}
