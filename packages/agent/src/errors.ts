import { OutpostError } from '@outpost/common';

/** Codes raised by @outpost/agent. Each is documented in the package README ("Errors"). */
export const AgentErrors = {
  /** No identity in the data dir and neither `enrollToken` nor `enrollTokenFile` set. */
  NO_ENROLL_TOKEN: 'AGENT_NO_ENROLL_TOKEN',
  /** `enrollTokenFile` cannot be read or is empty. */
  TOKEN_FILE_UNREADABLE: 'AGENT_TOKEN_FILE_UNREADABLE',
  /** The core refused the enrollment token (invalid, expired, used up, wrong kind). */
  ENROLL_REJECTED: 'AGENT_ENROLL_REJECTED',
  /** The core answered 401 to the agent's stored credential. */
  IDENTITY_REJECTED: 'AGENT_IDENTITY_REJECTED',
  /** The identity file exists but is not a valid identity. */
  IDENTITY_CORRUPT: 'AGENT_IDENTITY_CORRUPT',
  /** The identity file cannot be written. */
  IDENTITY_WRITE: 'AGENT_IDENTITY_WRITE',
  /** The core cannot be reached (connection refused, reset, timeout). */
  CORE_UNREACHABLE: 'AGENT_CORE_UNREACHABLE',
  /** The core answered with an error status. `details.status` and `details.coreCode` say which. */
  CORE_ERROR: 'AGENT_CORE_ERROR',
  /** The core answered 2xx with a body that is not what the API promises. */
  CORE_BAD_RESPONSE: 'AGENT_CORE_BAD_RESPONSE',
  /** The core's CA certificate does not have the configured `caFingerprint` (or the core sent none). */
  CA_MISMATCH: 'AGENT_CA_MISMATCH',
  /** The identity was enrolled on another computer (its machine id differs) and no token is configured to enroll this one. */
  CLONED_IDENTITY: 'AGENT_CLONED_IDENTITY',
  /** `outpost-agent enroll` cannot write the config file. */
  CONFIG_WRITE: 'AGENT_CONFIG_WRITE',
  /** Bad command line for the `outpost-agent` command. */
  CLI_USAGE: 'AGENT_CLI_USAGE',
} as const;

export type AgentErrorCode = (typeof AgentErrors)[keyof typeof AgentErrors];

/** An error answered by the core: the HTTP status and the core's error code, if any. */
export class CoreHttpError extends OutpostError {
  readonly httpStatus: number;
  readonly coreCode: string | undefined;

  constructor(method: string, path: string, status: number, coreCode: string | undefined, message: string | undefined) {
    super(
      AgentErrors.CORE_ERROR,
      `${method} ${path}: core answered ${status}${coreCode ? ` ${coreCode}` : ''}${message ? `: ${message}` : ''}`,
      { status: 502, details: { status, coreCode } },
    );
    this.name = 'CoreHttpError';
    this.httpStatus = status;
    this.coreCode = coreCode;
  }
}

export function isCoreHttpError(err: unknown): err is CoreHttpError {
  return err instanceof CoreHttpError;
}
