import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseDuration } from '@outpost/common';
import { UsageError } from './errors.js';

/** Options every admin sub-command accepts (how to reach the core, output format). */
export const adminOptions = {
  // Repeated: several cores of one estate, tried in order.
  url: { type: 'string', multiple: true },
  token: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * `node:util` parseArgs, strict, with its errors turned into {@link UsageError}s for
 * `command` (exit code 2, the command's usage printed).
 */
export function parseCommand<T extends ParseArgsConfig>(command: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs<T>({ strict: true, ...config });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''), command);
    }
    throw err;
  }
}

/** Parses a positive integer option (`--uses 5`), else a usage error. */
export function positiveInt(value: string | undefined, option: string, command: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`--${option} must be a positive whole number, got '${value}'`, command);
  }
  return Number(value);
}

/** `--expires` checked here, so a typo is a usage error before anything is sent. */
export function checkDuration(value: string | undefined, command: string): void {
  if (value === undefined) return;
  try {
    parseDuration(value);
  } catch (err) {
    throw new UsageError(`--expires: ${(err as Error).message}`, command);
  }
}
