import { OutpostError } from '@outpost/common';

/**
 * Every code @outpost/tftp raises. Each is listed in the README "Errors" table; a test
 * fails when the two disagree.
 */
export const TftpErrors = {
  /** The server config failed validation; `details.issues` lists every bad path. */
  CONFIG_INVALID: 'TFTP_CONFIG_INVALID',
  /** The server could not bind its listening socket (address in use, no permission). */
  BIND_FAILED: 'TFTP_BIND_FAILED',
  /** `root` or `write.dir` does not exist or cannot be resolved at start. */
  ROOT_INVALID: 'TFTP_ROOT_INVALID',
  /** A transfer worker (config `workers`) did not start. */
  WORKER_FAILED: 'TFTP_WORKER_FAILED',
  /** `address()` was called before `start()` resolved. */
  NOT_STARTED: 'TFTP_NOT_STARTED',
  /** Client: the peer stopped answering after the retry limit. */
  TIMEOUT: 'TFTP_TIMEOUT',
  /** Client: the server answered ERROR 1. */
  FILE_NOT_FOUND: 'TFTP_FILE_NOT_FOUND',
  /** Client: the server answered ERROR 2. */
  ACCESS_VIOLATION: 'TFTP_ACCESS_VIOLATION',
  /** Client: the server answered another ERROR; `details.tftpCode` has its code. */
  REMOTE_ERROR: 'TFTP_REMOTE_ERROR',
  /** Client: the server sent something the protocol does not allow (bad OACK value...). */
  PROTOCOL: 'TFTP_PROTOCOL',
  /** Client: more bytes arrived than `maxBytes` allows. */
  TOO_LARGE: 'TFTP_TOO_LARGE',
  /** Client: the caller's AbortSignal fired. */
  ABORTED: 'TFTP_ABORTED',
  /** Client: the local source or destination stream failed. */
  LOCAL_IO: 'TFTP_LOCAL_IO',
  /** Client options are invalid (bad blksize, missing host...). */
  BAD_OPTIONS: 'TFTP_BAD_OPTIONS',
  /** Command line: unknown flag or bad value. */
  USAGE: 'TFTP_USAGE',
} as const;
export type TftpErrorCodeName = (typeof TftpErrors)[keyof typeof TftpErrors];

export class TftpError extends OutpostError {
  constructor(
    code: TftpErrorCodeName,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'TftpError';
  }
}
