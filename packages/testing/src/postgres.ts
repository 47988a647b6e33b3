import { execFile } from 'node:child_process';
import { chmod, chown, readFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { e2eGate, isRoot, type E2eGate } from './e2e.js';
import { freePort } from './ports.js';
import { removeDir, tempDir } from './temp.js';

const run = promisify(execFile);

/** The newest PostgreSQL server binaries Debian installed (`/usr/lib/postgresql/N/bin`), or undefined. */
export function postgresBinDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  // Synchronous on purpose: gates are decided when a test file is collected.
  const versions = readdirSync(base).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (existsSync(join(base, v, 'bin', 'initdb'))) return join(base, v, 'bin');
  return undefined;
}

/**
 * Whether a test that needs a PostgreSQL server runs: Debian's `postgresql` package (as
 * root the server runs as its `postgres` user, since initdb refuses root). Skipped with a
 * reason otherwise, a failure under `OUTPOST_E2E=required` (see {@link e2eGate}).
 */
export function postgresGate(name: string): E2eGate {
  return e2eGate(name, { other: postgresBinDir() ? [] : ["Debian's postgresql package (/usr/lib/postgresql/N/bin)"] });
}

export interface TestPostgres {
  /** `postgres://outpost@127.0.0.1:PORT/outpost` */
  url: string;
  port: number;
  dir: string;
  /** Stops the server (fast shutdown); `start()` brings it back on the same port and data. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** A standby (started with `standbyOf`) becomes a primary. */
  promote(): Promise<void>;
  /** Stops it and removes its directory. */
  destroy(): Promise<void>;
  /** The server log so far (for failure messages). */
  log(): Promise<string>;
}

/**
 * A throwaway PostgreSQL server for one test file: initdb in a temp dir, listening on
 * 127.0.0.1 at a free port with its socket in the same dir, user and database `outpost`,
 * trust authentication on loopback only. As root it runs as the `postgres` user (initdb
 * and postgres refuse root). With `standbyOf` it is a hot standby of that server,
 * streaming its WAL (promote() makes it the primary).
 */
export async function startPostgres(opts: { fsync?: boolean; standbyOf?: TestPostgres } = {}): Promise<TestPostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)');
  const dir = await tempDir('outpost-pg-');
  const data = join(dir, 'data');
  const asUser = isRoot();
  if (asUser) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  await chmod(dir, 0o700);
  const cmd = (file: string, args: string[]) => (asUser ? run('runuser', ['-u', 'postgres', '--', join(bin, file), ...args]) : run(join(bin, file), args));
  // A hot standby: a base backup of the primary that streams from it (-R writes standby.signal and primary_conninfo).
  if (opts.standbyOf) await cmd('pg_basebackup', ['-h', '127.0.0.1', '-p', String(opts.standbyOf.port), '-U', 'outpost', '-D', data, '-R', '-X', 'stream', '-c', 'fast', '--no-sync']);
  else await cmd('initdb', ['-D', data, '-U', 'outpost', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=${opts.fsync === false ? 'off' : 'on'} -c synchronous_commit=${opts.fsync === false ? 'off' : 'on'} -c max_connections=200`;
  const logFile = join(dir, 'server.log');
  const pgCtl = (action: string, extra: string[] = []) => cmd('pg_ctl', ['-D', data, '-l', logFile, '-o', options, '-w', '-t', '60', action, ...extra]);
  await pgCtl('start');
  if (!opts.standbyOf) await cmd('createdb', ['-h', '127.0.0.1', '-p', String(port), '-U', 'outpost', 'outpost']);
  const pg: TestPostgres = {
    url: `postgres://outpost@127.0.0.1:${port}/outpost`,
    port,
    dir,
    async stop() {
      await pgCtl('stop', ['-m', 'fast']).catch(() => undefined);
    },
    async start() {
      await pgCtl('start');
    },
    async promote() {
      await cmd('pg_ctl', ['-D', data, '-w', '-t', '60', 'promote']);
    },
    async destroy() {
      await pg.stop();
      await removeDir(dir);
    },
    log: () => readFile(logFile, 'utf8').catch(() => ''),
  };
  return pg;
}

/** Runs `psql -c SQL` against the test server (as its superuser `outpost`); the output. */
export async function psql(pg: TestPostgres, sql: string): Promise<string> {
  const { stdout } = await run('psql', [pg.url, '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
  return stdout.trim();
}
