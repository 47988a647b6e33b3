import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { OutpostError, validateConfig, writeFileAtomic, type RawConfig } from '@outpost/common';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { agentConfigSchema } from '../config.js';
import { AgentErrors } from '../errors.js';
import { IDENTITY_FILE } from '../identity-store.js';

export interface EnrollArgs {
  configFile: string;
  coreUrl: string;
  token: string;
  caFingerprint?: string | undefined;
  dataDir?: string | undefined;
  name?: string | undefined;
}

export interface EnrollWritten {
  configFile: string;
  coreUrl: string[];
  dataDir: string;
  /** The id of an identity already in the data dir: the token is then kept for a cloned image only. */
  existingId: string | undefined;
}

const isRecord = (v: unknown): v is RawConfig => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * `outpost-agent enroll`: writes (or updates) the agent config the service runs with: the
 * core URL(s), the enrollment token, the CA fingerprint to pin and the data dir. Other keys
 * of an existing file are kept; a whole Outpost config is updated in its `agent:` section.
 * The file is written atomically, mode 0600 (it holds the token). Nothing is sent to the
 * core: the agent enrolls at its next start, and needs the token no more once it has.
 */
export async function writeEnrollConfig(args: EnrollArgs): Promise<EnrollWritten> {
  let text: string | undefined;
  try {
    text = await readFile(args.configFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new OutpostError(AgentErrors.CONFIG_WRITE, `cannot read ${args.configFile}: ${(err as Error).message}`, { cause: err });
    }
  }
  let doc: RawConfig = {};
  if (text !== undefined && text.trim() !== '') {
    let parsed: unknown;
    try {
      parsed = parseYaml(text);
    } catch (cause) {
      throw new OutpostError(AgentErrors.CONFIG_WRITE, `cannot parse ${args.configFile}: ${(cause as Error).message}; not overwriting it`, { cause });
    }
    if (!isRecord(parsed)) throw new OutpostError(AgentErrors.CONFIG_WRITE, `${args.configFile} is not a mapping of config keys; not overwriting it`);
    doc = parsed;
  }
  const inSection = isRecord(doc.agent);
  const section: RawConfig = { ...(inSection ? (doc.agent as RawConfig) : doc) };
  section.coreUrl = args.coreUrl;
  section.enrollToken = args.token;
  delete section.enrollTokenFile;
  if (args.caFingerprint !== undefined) section.caFingerprint = args.caFingerprint;
  if (args.dataDir !== undefined) section.dataDir = args.dataDir;
  if (args.name !== undefined) section.name = args.name;
  // Refused here, not at the service's start: a bad URL or fingerprint is the installer's to fix.
  const config = validateConfig(agentConfigSchema, section, { file: args.configFile });
  const out = inSection ? { ...doc, agent: section } : section;
  try {
    const body = extname(args.configFile).toLowerCase() === '.json' ? `${JSON.stringify(out, null, 2)}\n` : stringifyYaml(out);
    await writeFileAtomic(args.configFile, body, { mode: 0o600, mkdir: true });
  } catch (cause) {
    throw new OutpostError(AgentErrors.CONFIG_WRITE, `cannot write ${args.configFile}: ${(cause as Error).message}`, { cause });
  }
  let existingId: string | undefined;
  try {
    const id: unknown = JSON.parse(await readFile(join(config.dataDir, IDENTITY_FILE), 'utf8'));
    existingId = isRecord(id) && typeof id.id === 'string' ? id.id : undefined;
  } catch {
    existingId = undefined;
  }
  return { configFile: args.configFile, coreUrl: [...config.coreUrl], dataDir: config.dataDir, existingId };
}
