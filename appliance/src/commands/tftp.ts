import { OutpostError } from '@outpost/common';
import { ApplianceErrors } from '../errors.js';
import { usage } from '../help.js';
import type { CliIo } from '../io.js';

/** `outpost tftp ...`: hands the arguments to @outpost/tftp. */
export async function tftpCommand(argv: readonly string[], io: CliIo): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h') {
    io.out(usage('tftp'));
    return argv.length === 0 ? 2 : 0;
  }
  throw new OutpostError(ApplianceErrors.SERVICE_UNAVAILABLE, 'outpost tftp: @outpost/tftp is not part of this build yet');
}
