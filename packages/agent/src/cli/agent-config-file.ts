import { applyEnvOverrides, readConfigFile, validateConfig, type RawConfig } from '@outpost/common';
import { agentConfigSchema, type AgentConfig } from '../config.js';

/** Where `outpost-agent run`, `enroll` and `--version` look for the config without `--config`. */
export const DEFAULT_CONFIG_FILE = '/etc/outpost/agent.yaml';

/**
 * The agent's raw keys from a config file, with `OUTPOST_AGENT__<KEY>` overrides applied
 * (`OUTPOST_AGENT__CORE_URL`, `OUTPOST_AGENT__ENROLL_TOKEN`, `OUTPOST_AGENT__CA_FINGERPRINT`...).
 * A whole Outpost config has an `agent:` section; a file of agent keys alone is one.
 */
export function agentSection(file: RawConfig, env: NodeJS.ProcessEnv): RawConfig {
  const hasSection = typeof file.agent === 'object' && file.agent !== null && !Array.isArray(file.agent);
  const section = applyEnvOverrides(hasSection ? file : { agent: file }, env).agent;
  return typeof section === 'object' && section !== null && !Array.isArray(section) ? (section as RawConfig) : {};
}

/** Reads, overrides and validates the agent config in `file` (throws the `COMMON_CONFIG_*` codes). */
export async function loadAgentConfig(file: string, env: NodeJS.ProcessEnv): Promise<AgentConfig> {
  return validateConfig(agentConfigSchema, agentSection(await readConfigFile(file), env), { file });
}
