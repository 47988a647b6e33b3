import { relative, resolve } from 'node:path';
import { OutpostError } from '@outpost/common';
import { migrateCoreStore, storeConfigSchema, type CoreConfig } from '@outpost/core';
import { parseCommand } from '../args.js';
import { loadApplianceConfig } from '../config/load.js';
import { firstDefaultConfig } from '../client/target.js';
import { ApplianceErrors, UsageError } from '../errors.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';

export const CORE_USAGE: Record<string, string> = {
  core: `Usage: outpost core migrate --to postgres URL [--table T] [--config FILE] [--json]
       outpost core migrate --to level --from URL [--table T] [--config FILE] [--json]

Copies the core's records between its two stores and verifies the copy (entries and a
SHA-256 over every key and value, on both sides). The core must be stopped; the target
must be empty. --to postgres copies the level database in the config's core dataDir into
PostgreSQL (URL: a libpq connection string); --to level copies PostgreSQL back into the
dataDir (small installs). Then set core.store in the config and start the core.
  --table T   the PostgreSQL table (default outpost_core)`,
};

/** `outpost core migrate ...` */
export async function coreCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'core';
  if (argv[0] !== 'migrate') throw new UsageError(argv[0] === undefined ? 'a sub-command is required (migrate)' : `unknown sub-command 'core ${argv[0]}' (expected migrate)`, cmd);
  const { values, positionals } = parseCommand(cmd, {
    args: argv.slice(1),
    options: { to: { type: 'string' }, from: { type: 'string' }, table: { type: 'string' }, config: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
  if (values.help) {
    io.out(CORE_USAGE.core!);
    return 0;
  }
  if (positionals.length > (values.to === 'postgres' ? 1 : 0)) throw new UsageError(`unexpected argument '${positionals.at(-1)}'`, cmd);
  const to = values.to;
  if (to !== 'postgres' && to !== 'level') throw new UsageError('--to must be postgres or level', cmd);
  const file = values.config ? resolve(io.cwd, values.config) : await firstDefaultConfig(io.cwd);
  if (!file) throw new OutpostError(ApplianceErrors.NO_CREDENTIALS, 'no config with a core section found: give --config FILE', { status: 400 });
  const config = await loadApplianceConfig(file, io.env);
  if (!config.core) throw new OutpostError(ApplianceErrors.NO_CREDENTIALS, `config ${relative(io.cwd, file) || file} runs no core`, { status: 400 });
  const core: CoreConfig = { ...config.core, dataDir: resolve(io.cwd, config.core.dataDir) };
  const table = values.table ?? 'outpost_core';
  const pg = (url: string) => storeConfigSchema.parse({ kind: 'postgres', url, table });
  let from: CoreConfig;
  let target: CoreConfig;
  if (to === 'postgres') {
    const url = positionals[0];
    if (!url) throw new UsageError('--to postgres needs the URL: outpost core migrate --to postgres URL', cmd);
    from = { ...core, store: storeConfigSchema.parse({ kind: 'level' }) };
    target = { ...core, store: pg(url) };
  } else {
    if (!values.from) throw new UsageError('--to level needs --from URL (the PostgreSQL store to copy)', cmd);
    from = { ...core, store: pg(values.from) };
    target = { ...core, store: storeConfigSchema.parse({ kind: 'level' }) };
  }
  let last = 0;
  const result = await migrateCoreStore(from, target, (n) => {
    if (!values.json && n - last >= 10_000) {
      io.err(`copied ${n} entries...`);
      last = n;
    }
  });
  if (values.json) printJson(io, result);
  else
    printLines(io, [
      `copied ${result.target.entries} entries from ${result.from} to ${result.to}`,
      `verified: ${result.target.entries} entries on both sides, sha256 ${result.target.sha256}`,
      to === 'postgres' ? `now set in ${relative(io.cwd, file) || file}: core.store: { kind: postgres, url: ..., table: ${table} }` : `now set core.store: { kind: level } (or remove it) in ${relative(io.cwd, file) || file}`,
    ]);
  return 0;
}
