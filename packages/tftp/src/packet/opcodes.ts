/** TFTP opcodes (RFC 1350 §5, RFC 2347 for OACK). */
export const Opcode = {
  RRQ: 1,
  WRQ: 2,
  DATA: 3,
  ACK: 4,
  ERROR: 5,
  OACK: 6,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** ERROR packet codes (RFC 1350 appendix, RFC 2347 for 8). */
export const TftpErrorCode = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_NEGOTIATION: 8,
} as const;
export type TftpErrorCode = (typeof TftpErrorCode)[keyof typeof TftpErrorCode];

/** Why a datagram could not be decoded. Decoders return these; they never throw. */
export type DecodeError =
  | 'short'
  | 'bad-opcode'
  | 'unterminated-string'
  | 'bad-mode'
  | 'empty-filename'
  | 'too-many-options'
  | 'bad-option'
  | 'oversized';

export type Decoded<T> = { ok: true; packet: T } | { ok: false; error: DecodeError };

export const MAX_BLOCK = 0xffff;
/** The largest blksize RFC 2348 allows (65535 minus IP and UDP headers). */
export const MAX_BLKSIZE = 65464;
export const MIN_BLKSIZE = 8;
export const DEFAULT_BLKSIZE = 512;
/** A request carrying more option pairs than this is refused as malformed. */
export const MAX_OPTIONS = 64;
