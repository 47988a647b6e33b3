import { runTftpServeCommand } from '@outpost/tftp';
import type { CliIo } from '../io.js';

/**
 * `outpost tftp serve DIR [options]`: hands everything after `tftp` to @outpost/tftp,
 * which prints its own usage and errors and returns the exit status (0, 1, or 2 for a
 * bad command line). It stops on SIGINT/SIGTERM.
 */
export async function tftpCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const stderr = {
    write(text: string): boolean {
      for (const line of text.replace(/\n$/, '').split('\n')) io.err(line);
      return true;
    },
  };
  return runTftpServeCommand([...argv], { stderr });
}
