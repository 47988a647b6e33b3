/** What the server tells its caller about each transfer, and its metrics counters. */

export interface TransferInfo {
  id: number;
  kind: 'read' | 'write';
  filename: string;
  mode: 'octet' | 'netascii';
  remoteAddress: string;
  remotePort: number;
}

export interface AgreedOptions {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** The size announced in tsize, when the client asked and the size was known. */
  tsize: number | undefined;
  /** True when an OACK was sent (the client asked for at least one accepted option). */
  oack: boolean;
}

export type FailReason =
  | 'timeout'
  | 'read-error'
  | 'write-error'
  | 'too-large'
  | 'peer-error'
  | 'server-stopped'
  | 'socket-error'
  /** No progress (no ACK advancing the window, no new block) for `stallMs`: ended with an ERROR. */
  | 'stalled'
  /** The transfer worker serving it exited unexpectedly. */
  | 'worker-exit';

export interface TftpServerEvents {
  /** A request was accepted and a transfer socket opened. */
  start: [info: TransferInfo];
  /** Options agreed (sent as OACK, or defaults when none). */
  options: [info: TransferInfo, options: AgreedOptions];
  done: [info: TransferInfo, result: { bytes: number; durationMs: number; retransmits: number }];
  failed: [
    info: TransferInfo,
    result: { reason: FailReason; durationMs: number; bytes: number; retransmits: number; peerCode?: number; peerMessage?: string; error?: unknown },
  ];
  /** The client ended the transfer with ERROR 8 after our OACK: a normal end (UEFI tsize probe). */
  aborted: [info: TransferInfo, result: { reason: 'option-negotiation'; durationMs: number }];
  /** A request answered with an ERROR before any transfer started (not found, busy...). */
  refused: [request: { filename: string; remoteAddress: string; remotePort: number; tftpCode: number; reason: string }];
}

export interface TftpCounters {
  /** RRQ/WRQ datagrams decoded on the listening port (retransmitted duplicates excluded). */
  requests: number;
  reads: number;
  writes: number;
  active: number;
  completed: number;
  failed: number;
  optionAborts: number;
  refused: number;
  busy: number;
  /** Transfers ended for making no progress for `stallMs`. */
  stalled: number;
  notFound: number;
  accessDenied: number;
  malformed: number;
  unknownTid: number;
  bytesSent: number;
  bytesReceived: number;
  retransmits: number;
  duplicateAcks: number;
  strayAcks: number;
}

export function newCounters(): TftpCounters {
  return {
    requests: 0,
    reads: 0,
    writes: 0,
    active: 0,
    completed: 0,
    failed: 0,
    optionAborts: 0,
    refused: 0,
    busy: 0,
    stalled: 0,
    notFound: 0,
    accessDenied: 0,
    malformed: 0,
    unknownTid: 0,
    bytesSent: 0,
    bytesReceived: 0,
    retransmits: 0,
    duplicateAcks: 0,
    strayAcks: 0,
  };
}
