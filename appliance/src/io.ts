/** Where a command reads its environment and writes its output; tests pass their own. */
export interface CliIo {
  /** Writes one line (a newline is added) to standard output. */
  out(line: string): void;
  /** Writes one line (a newline is added) to standard error. */
  err(line: string): void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Where `--password-stdin` reads from; none: nothing to read. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean; destroy?: () => void };
  /** Where `outpost start` listens for SIGINT/SIGTERM. */
  signals: Pick<NodeJS.EventEmitter, 'on' | 'off'>;
}

export function processIo(): CliIo {
  return {
    out: (line) => void process.stdout.write(`${line}\n`),
    err: (line) => void process.stderr.write(`${line}\n`),
    env: process.env,
    cwd: process.cwd(),
    // Only touched by a command that reads it (process.stdin opens a handle).
    get stdin() {
      return process.stdin;
    },
    signals: process,
  };
}
