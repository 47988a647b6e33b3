import {
  applyEnvOverrides,
  CommonErrors,
  isOutpostError,
  OutpostError,
  readConfigFile,
  urlHost,
  validateConfig,
  z,
  type ConfigProblem,
  type RawConfig,
} from '@outpost/common';
import { agentConfigSchema } from '@outpost/agent';
import { packageServerConfigSchema } from '@outpost/package-server';
import type { CoreConfig } from '@outpost/core';
import { ApplianceErrors } from '../errors.js';
import { applianceFileSchema, FUTURE_SECTIONS, SERVICE_SECTIONS, type ApplianceConfig } from './schema.js';

const KNOWN = ['log', ...SERVICE_SECTIONS] as const;

/**
 * The URL a core's config says it listens on (`http://127.0.0.1:8080`; the any-address
 * shown as loopback). With port 0 the real port is known only after start.
 */
export function configuredCoreUrl(core: CoreConfig): string {
  return `http://${urlHost(core.http.host)}:${core.http.port}`;
}

/**
 * Reads an appliance config (YAML or JSON), applies `OUTPOST_*` overrides from `env`,
 * validates every section and returns it frozen. Errors name the file and every bad key
 * of every section at once: `COMMON_CONFIG_FILE_UNREADABLE`, `COMMON_CONFIG_PARSE`,
 * `COMMON_CONFIG_INVALID`, and `APPLIANCE_SERVICE_UNAVAILABLE` for a section a later
 * release adds. An `agent` section without `coreUrl` next to a `core` section gets the
 * core's URL.
 */
export async function loadApplianceConfig(file: string, env: NodeJS.ProcessEnv = {}): Promise<Readonly<ApplianceConfig>> {
  const raw = applyEnvOverrides(await readConfigFile(file), env);
  checkFutureSections(raw, file);
  const problems: ConfigProblem[] = [];
  const base = collect(problems, () => validateConfig(applianceFileSchema, raw, { file }));

  let agent: ApplianceConfig['agent'];
  const rawAgent = raw.agent;
  if (typeof rawAgent === 'object' && rawAgent !== null && !Array.isArray(rawAgent)) {
    const input: RawConfig = { ...(rawAgent as RawConfig) };
    // Next to a core, the agent defaults to it (if the core section is broken, any URL
    // will do: the config is refused anyway, and the agent's other keys still get checked).
    if (input.coreUrl === undefined && raw.core !== undefined) input.coreUrl = base?.core ? configuredCoreUrl(base.core) : 'http://127.0.0.1:8080';
    agent = collect(problems, () => validateConfig(z.object({ agent: agentConfigSchema }), { agent: input }, { file }).agent);
  }

  // Package servers: one section or a list; one without coreUrl next to a core gets the core's URL.
  let packageServer: ApplianceConfig['packageServer'];
  const rawPs = raw.packageServer;
  if (typeof rawPs === 'object' && rawPs !== null) {
    const withCore = (v: unknown): unknown => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
      const input: RawConfig = { ...(v as RawConfig) };
      if (input.coreUrl === undefined && raw.core !== undefined) input.coreUrl = base?.core ? configuredCoreUrl(base.core) : 'http://127.0.0.1:8080';
      return input;
    };
    packageServer = Array.isArray(rawPs)
      ? collect(problems, () => validateConfig(z.object({ packageServer: z.array(packageServerConfigSchema).min(1) }), { packageServer: rawPs.map(withCore) }, { file }).packageServer)
      : collect(problems, () => [validateConfig(z.object({ packageServer: packageServerConfigSchema }), { packageServer: withCore(rawPs) }, { file }).packageServer]);
  }

  if (problems.length > 0 || !base) {
    const lines = problems.map((p) => `  - ${p.path}: ${p.message}`);
    if (problems.some((p) => p.path === '(top level)')) lines.push(`  (the top-level sections are: ${KNOWN.join(', ')})`);
    throw new OutpostError(CommonErrors.CONFIG_INVALID, `invalid config (${file}):\n${lines.join('\n')}`, { details: { file, problems } });
  }
  const config: ApplianceConfig = Object.freeze({ ...base, agent, packageServer });
  if (!SERVICE_SECTIONS.some((s) => config[s] !== undefined)) {
    throw new OutpostError(
      CommonErrors.CONFIG_INVALID,
      `invalid config (${file}): it names no service; add at least one of the sections ${SERVICE_SECTIONS.join(', ')}`,
      { details: { file, problems: [{ path: '(top level)', message: 'no service section' }] } },
    );
  }
  return config;
}

/** Runs a validation; a COMMON_CONFIG_INVALID adds its problems to `problems`. */
function collect<T>(problems: ConfigProblem[], validate: () => T): T | undefined {
  try {
    return validate();
  } catch (err) {
    const found = isOutpostError(err) && err.code === CommonErrors.CONFIG_INVALID ? err.details?.problems : undefined;
    if (!Array.isArray(found)) throw err;
    problems.push(...(found as ConfigProblem[]));
    return undefined;
  }
}

function checkFutureSections(raw: RawConfig, file: string): void {
  const future = Object.keys(raw).filter((k) => (FUTURE_SECTIONS as readonly string[]).includes(k));
  if (future.length > 0) {
    throw new OutpostError(
      ApplianceErrors.SERVICE_UNAVAILABLE,
      `config ${file}: section(s) ${future.map((k) => `'${k}'`).join(', ')} name a service this version of outpost does not have yet (it runs: ${SERVICE_SECTIONS.join(', ')})`,
      { details: { file, keys: future } },
    );
  }
}
