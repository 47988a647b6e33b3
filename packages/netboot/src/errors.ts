import { OutpostError } from '@outpost/common';

/** Codes raised by @outpost/netboot. Each is documented in the package README. */
export const NetbootErrors = {
  CONFIG_INVALID: 'NETBOOT_CONFIG_INVALID',
  BIND_FAILED: 'NETBOOT_BIND_FAILED',
  NOT_STARTED: 'NETBOOT_NOT_STARTED',
  NO_ENROLL_TOKEN: 'NETBOOT_NO_ENROLL_TOKEN',
  ENROLL_REJECTED: 'NETBOOT_ENROLL_REJECTED',
  CORE_UNREACHABLE: 'NETBOOT_CORE_UNREACHABLE',
  CORE_ERROR: 'NETBOOT_CORE_ERROR',
  IMAGE_FILE_NOT_FOUND: 'NETBOOT_IMAGE_FILE_NOT_FOUND',
  HASH_MISMATCH: 'NETBOOT_HASH_MISMATCH',
  NO_SERVER_ADDRESS: 'NETBOOT_NO_SERVER_ADDRESS',
  IDENTITY_CORRUPT: 'NETBOOT_IDENTITY_CORRUPT',
} as const;

export type NetbootErrorCode = (typeof NetbootErrors)[keyof typeof NetbootErrors];

export class NetbootError extends OutpostError {
  constructor(code: NetbootErrorCode, message: string, options: { status?: number; cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(code, message, options);
    this.name = 'NetbootError';
  }
}
