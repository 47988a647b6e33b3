import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { CommonErrors, OutpostError } from './errors.js';

/** Plain JSON-ish object tree a config file parses to. */
export type RawConfig = Record<string, unknown>;

/** Where a config came from, for error messages. */
export interface ConfigSource {
  /** The file path, or `'<defaults>'` when no file was given. */
  file: string;
}

/**
 * Reads a YAML or JSON config file (YAML is a superset of JSON; a `.json` file is parsed
 * strictly as JSON). An empty file is an empty config.
 */
export async function readConfigFile(file: string): Promise<RawConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new OutpostError(CommonErrors.CONFIG_FILE_UNREADABLE, `cannot read config file ${file}: ${(cause as Error).message}`, { cause });
  }
  let parsed: unknown;
  try {
    parsed = text.trim() === '' ? null : extname(file).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (cause) {
    throw new OutpostError(CommonErrors.CONFIG_PARSE, `cannot parse config file ${file}: ${(cause as Error).message}`, { cause });
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new OutpostError(CommonErrors.CONFIG_PARSE, `config file ${file}: the top level must be a mapping of keys to values`);
  }
  return parsed as RawConfig;
}

const snakeToCamel = (s: string): string => s.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function parseEnvValue(value: string): unknown {
  const trimmed = value.trim();
  if (trimmed === '') return value;
  try {
    return JSON.parse(trimmed);
  } catch {
    return value;
  }
}

/**
 * Applies `OUTPOST_*` environment overrides to a raw config. A variable names a key path
 * with `__` between levels and `_` inside a key (snake case becomes camelCase):
 * `OUTPOST_CORE__HTTP__PORT=8080` sets `core.http.port`, `OUTPOST_CORE__DATA_DIR=/srv`
 * sets `core.dataDir`. Values are parsed as JSON when they are JSON (numbers, booleans,
 * arrays), else taken as strings. Only names with at least one `__` are overrides, so
 * `OUTPOST_URL`, `OUTPOST_TOKEN` and `OUTPOST_E2E` keep their own meanings.
 * Returns a new object; the input is not modified.
 */
export function applyEnvOverrides(raw: RawConfig, env: NodeJS.ProcessEnv, prefix = 'OUTPOST_'): RawConfig {
  const out = structuredClone(raw);
  const names = Object.keys(env).filter((k) => k.startsWith(prefix) && k.includes('__')).sort();
  for (const name of names) {
    const path = name.slice(prefix.length).split('__').map(snakeToCamel);
    if (path.some((p) => p === '' || p === '__proto__' || p === 'constructor' || p === 'prototype')) continue;
    let node: Record<string, unknown> = out;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = parseEnvValue(env[name] ?? '');
  }
  return out;
}

/** Freezes `value` and everything reachable from it (what {@link validateConfig} returns). */
export function deepFreeze<T>(value: T): Readonly<T> {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}

/** One problem in a config: the dotted key path and what was expected there. */
export interface ConfigProblem {
  path: string;
  message: string;
}

/**
 * Validates a raw config against a service's zod schema (defaults come from the schema;
 * schemas are strict, so unknown keys are errors). Returns the parsed config, deeply
 * frozen. On failure throws `COMMON_CONFIG_INVALID` listing every bad key.
 */
export function validateConfig<S extends z.ZodType>(schema: S, raw: unknown, source: ConfigSource): Readonly<z.output<S>> {
  const result = schema.safeParse(raw);
  if (result.success) return deepFreeze(result.data);
  const problems: ConfigProblem[] = result.error.issues.map((issue) => {
    const path = issue.path.map(String).join('.') || '(top level)';
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `unknown key(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
    return { path, message };
  });
  const lines = problems.map((p) => `  - ${p.path}: ${p.message}`).join('\n');
  throw new OutpostError(CommonErrors.CONFIG_INVALID, `invalid config (${source.file}):\n${lines}`, {
    details: { file: source.file, problems },
  });
}

/** Reads the file (if any), applies environment overrides, validates and freezes. */
export async function loadConfig<S extends z.ZodType>(
  schema: S,
  options: { file?: string | undefined; env?: NodeJS.ProcessEnv; defaults?: RawConfig } = {},
): Promise<Readonly<z.output<S>>> {
  const raw = options.file ? await readConfigFile(options.file) : structuredClone(options.defaults ?? {});
  const withEnv = applyEnvOverrides(raw, options.env ?? {});
  return validateConfig(schema, withEnv, { file: options.file ?? '<defaults>' });
}
