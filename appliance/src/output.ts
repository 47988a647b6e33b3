import type { CliIo } from './io.js';

/** Prints a value as indented JSON: what `--json` prints, for scripts. */
export function printJson(io: CliIo, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}

/** Prints lines. */
export function printLines(io: CliIo, lines: readonly string[]): void {
  for (const line of lines) io.out(line);
}
