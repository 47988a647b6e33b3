import { join } from 'node:path';
import type { ApplianceConfig } from './config/schema.js';

/** Every data dir the config's services use (keys, credentials, level dbs), in start order. */
export function dataDirsOf(config: ApplianceConfig): string[] {
  const dirs: string[] = [];
  if (config.core) dirs.push(config.core.dataDir);
  for (const ps of config.packageServer ?? []) dirs.push(ps.dataDir);
  if (config.taskServer) dirs.push(config.taskServer.dataDir);
  if (config.netboot) dirs.push(config.netboot.dataDir);
  if (config.gateway) dirs.push(config.gateway.dataDir);
  if (config.agent) dirs.push(config.agent.dataDir);
  return [...new Set(dirs)];
}

/** Files the services make readable by all on purpose: the core CA's certificate and the core id next to it. */
export function publicFilesOf(config: ApplianceConfig): Set<string> {
  const out = new Set<string>();
  if (config.core) for (const f of ['ca.crt', 'core-id']) out.add(join(config.core.dataDir, 'ca', f));
  return out;
}
