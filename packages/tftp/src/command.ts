import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { pino, type Logger } from 'pino';
import { createTftpServer, type TftpServer } from './server/server.js';
import { TftpError, TftpErrors } from './errors.js';
import { isOutpostError } from '@outpost/common';

export interface CommandIo {
  /** Where usage and errors go. @default process.stderr */
  stderr?: { write(s: string): unknown };
  /** Logger for the server. @default pino to stdout at info */
  logger?: Logger;
  /** Stops the server when aborted (tests); SIGINT and SIGTERM always do. */
  signal?: AbortSignal;
  /** Called once the server listens. */
  onListening?: (server: TftpServer) => void;
}

export const USAGE = `usage: outpost tftp serve DIR [options]

Serves DIR over TFTP in the foreground until SIGINT or SIGTERM.

options:
  --port N             UDP port (default 69; 0 = any free port)
  --address A          address to bind (default 0.0.0.0)
  --max-blksize N      largest blksize granted, 8..65464 (default 1468)
  --max-windowsize N   largest windowsize granted, 1..64 (default 64)
  --max-transfers N    concurrent transfers (default 200)
  --workers N          transfer worker threads, 0 = serve on the listening thread
                       (default: 2 on a machine with 2 or more cores, else 0)
  --busy-poll-us N     after each send, poll for the ACK up to N µs instead of
                       sleeping (default 200; 0 = off: less CPU, slower lockstep)
  --allow-write DIR    accept write requests into DIR (default: refused)
  --log-level L        pino level (default info)
  -h, --help           this text
`;

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]+$/.test(v)) throw new TftpError(TftpErrors.USAGE, `--${name} expects a number, got "${v}"`);
  return Number(v);
}

/**
 * Transfer workers when --workers is not given: 2 where there are 2 cores or more (the
 * listening thread stays light: it parses requests and resolves paths), none on one core.
 */
export function defaultWorkers(cores = availableParallelism()): number {
  return cores >= 2 ? 2 : 0;
}

/**
 * `outpost tftp serve DIR ...`: `argv` is what follows `tftp`. Resolves with the exit
 * code: 0 after a clean stop, 2 on a usage error, 1 when the server cannot start.
 */
export async function runTftpServeCommand(argv: string[], io: CommandIo = {}): Promise<number> {
  const stderr = io.stderr ?? process.stderr;
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        port: { type: 'string' },
        address: { type: 'string' },
        'max-blksize': { type: 'string' },
        'max-windowsize': { type: 'string' },
        'max-transfers': { type: 'string' },
        workers: { type: 'string' },
        'busy-poll-us': { type: 'string' },
        'allow-write': { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    stderr.write(USAGE);
    return 0;
  }
  if (positionals[0] !== 'serve' || positionals.length !== 2) {
    stderr.write(USAGE);
    return 2;
  }
  let server: TftpServer;
  const logger = io.logger ?? pino({ level: values['log-level'] ?? 'info' });
  try {
    server = createTftpServer(
      {
        root: positionals[1],
        port: int('port', values.port) ?? 69,
        address: values.address ?? '0.0.0.0',
        maxBlksize: int('max-blksize', values['max-blksize']),
        maxWindowsize: int('max-windowsize', values['max-windowsize']),
        maxTransfers: int('max-transfers', values['max-transfers']),
        workers: int('workers', values.workers) ?? defaultWorkers(),
        busyPollUs: int('busy-poll-us', values['busy-poll-us']),
        write: values['allow-write'] !== undefined ? { dir: values['allow-write'] } : undefined,
      },
      { logger },
    );
  } catch (err) {
    stderr.write(`${isOutpostError(err) ? `${err.code}: ` : ''}${(err as Error).message}\n`);
    return 2;
  }
  try {
    await server.start();
  } catch (err) {
    stderr.write(`${isOutpostError(err) ? `${err.code}: ` : ''}${(err as Error).message}\n`);
    return 1;
  }
  io.onListening?.(server);
  await new Promise<void>((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      io.signal?.removeEventListener('abort', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    if (io.signal?.aborted) done();
    else io.signal?.addEventListener('abort', done, { once: true });
  });
  await server.stop();
  return 0;
}
