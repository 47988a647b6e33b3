import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** @default 'info' */
  level?: LevelWithSilent;
  /** Pretty, coloured lines instead of JSON. @default true when stdout is a TTY */
  pretty?: boolean;
  /** Extra fields on every line (e.g. `{ service: 'core' }`). */
  base?: Record<string, unknown>;
}

/**
 * The process's one logger: JSON lines (pretty on a TTY). Modules take
 * `logger.child({ module: 'x' })`; requests and transfers get children with their ids.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const pretty = options.pretty ?? Boolean(process.stdout.isTTY);
  return pino({
    level: options.level ?? 'info',
    base: { pid: process.pid, ...options.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } } : {}),
  });
}

/** A logger that drops everything (tests that do not look at logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
