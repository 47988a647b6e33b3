import { readFileSync } from 'node:fs';

/**
 * Set by the single-file build (scripts/package/agent.mjs, esbuild `define`): the bundle
 * has no package.json beside it. Undefined when running from dist/.
 */
declare const OUTPOST_AGENT_VERSION: string | undefined;

/** The agent's version: the one baked into the single file, else that of its package.json. */
export function agentVersion(): string {
  if (typeof OUTPOST_AGENT_VERSION === 'string') return OUTPOST_AGENT_VERSION;
  const pkg: unknown = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  const version = typeof pkg === 'object' && pkg !== null && 'version' in pkg ? pkg.version : undefined;
  return typeof version === 'string' ? version : '0.0.0';
}

/** True when running as the single-file agent (a Node single-executable application). */
export function isSingleFile(): boolean {
  return typeof OUTPOST_AGENT_VERSION === 'string';
}
