import { OutpostError } from '@outpost/common';

/** Codes raised by the `outpost` command. Each is documented in appliance/README.md. */
export const ApplianceErrors = {
  /** Bad command line: unknown command or option, missing argument. Exit code 2. */
  USAGE: 'APPLIANCE_USAGE',
  /** No core URL or admin token could be found. */
  NO_CREDENTIALS: 'APPLIANCE_NO_CREDENTIALS',
  /** The admin token file exists but cannot be read (usually: permissions). */
  TOKEN_UNREADABLE: 'APPLIANCE_TOKEN_UNREADABLE',
  /** The core did not answer (connection refused, timeout, DNS). */
  CORE_UNREACHABLE: 'APPLIANCE_CORE_UNREACHABLE',
  /** The core answered something that is not the expected JSON. */
  BAD_RESPONSE: 'APPLIANCE_BAD_RESPONSE',
  /** The config names a service this version of `outpost` does not have. */
  SERVICE_UNAVAILABLE: 'APPLIANCE_SERVICE_UNAVAILABLE',
  /** A service did not stop within the shutdown deadline. */
  STOP_TIMEOUT: 'APPLIANCE_STOP_TIMEOUT',
  /** `outpost package add DIR`: DIR cannot be read, holds no files, or changed while it was added. */
  PACKAGE_DIR: 'APPLIANCE_PACKAGE_DIR',
  /** `outpost package add`: a file's upload kept failing (re-run the command to resume). */
  UPLOAD_FAILED: 'APPLIANCE_UPLOAD_FAILED',
} as const;

/** A command-line mistake: printed with the command's usage, exit code 2. */
export class UsageError extends OutpostError {
  /** The command whose usage to print (`'site add'`), or undefined for the top level. */
  readonly command: string | undefined;

  constructor(message: string, command?: string) {
    super(ApplianceErrors.USAGE, message);
    this.name = 'UsageError';
    this.command = command;
  }
}
