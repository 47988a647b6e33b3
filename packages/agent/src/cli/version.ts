import { readConfigFile, type RawConfig } from '@outpost/common';
import { agentVersion } from '../version.js';
import { agentSection } from './agent-config-file.js';

/**
 * `outpost-agent --version`: the agent's version, the Node.js it runs on, and the core it is
 * set for (the `coreUrl` of its config, overrides applied; "not configured" when there is
 * no config or no core URL in it). Never fails on a bad config: it only reports.
 */
export async function versionText(configFile: string, env: NodeJS.ProcessEnv): Promise<string> {
  let raw: RawConfig | undefined;
  let problem: string | undefined;
  try {
    raw = agentSection(await readConfigFile(configFile), env);
  } catch (err) {
    problem = (err as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT' ? undefined : (err as Error).message;
    raw = agentSection({}, env);
  }
  const url = raw.coreUrl;
  const core = typeof url === 'string' && url.trim() !== '' ? url : Array.isArray(url) && url.length > 0 ? url.join(', ') : undefined;
  return [
    `outpost-agent ${agentVersion()} (node ${process.version})`,
    `core: ${core ?? 'not configured'} (config ${configFile}${problem ? `: ${problem}` : ''})`,
  ].join('\n');
}
