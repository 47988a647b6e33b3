import { z } from 'zod';
import { MAX_BLKSIZE, MIN_BLKSIZE } from './packet/opcodes.js';
import { TftpError, TftpErrors } from './errors.js';

const MiB = 1024 * 1024;

const writeSchema = z
  .strictObject({
    /** Directory WRQ files land in (jailed like reads). */
    dir: z.string().min(1),
    /** Replace an existing file; otherwise ERROR 6. @default false */
    overwrite: z.boolean().default(false),
    /** Largest file accepted, in bytes. @default 1 GiB */
    maxBytes: z.number().int().positive().default(1024 * MiB),
  })
  .readonly();

/** TFTP server config. Defaults live here; unknown keys are rejected. */
export const tftpServerConfigSchema = z
  .strictObject({
    /** Address to bind. @default "0.0.0.0" */
    address: z.string().min(1).default('0.0.0.0'),
    /** UDP port; 0 picks a free one (read it from `address()` after start). @default 69 */
    port: z.number().int().min(0).max(65535).default(69),
    /** Directory files are served from. Optional when a resolver is given. */
    root: z.string().min(1).optional(),
    /** Largest blksize granted; larger requests are clamped. 1468 fits a 1500-byte MTU. @default 1468 */
    maxBlksize: z.number().int().min(MIN_BLKSIZE).max(MAX_BLKSIZE).default(1468),
    /** Largest windowsize granted (RFC 7440). @default 64 */
    maxWindowsize: z.number().int().min(1).max(64).default(64),
    /** Retransmit timeout when the client sets none, in ms. @default 1000 */
    timeoutMs: z.number().int().min(5).max(255_000).default(1000),
    /**
     * Largest `timeout` option (RFC 2349) granted, in ms. A client asking for more gets no
     * `timeout` in the OACK (the server declines it) and our own `timeoutMs` is used.
     * @default 5000
     */
    maxTimeoutMs: z.number().int().min(1000).max(255_000).default(5000),
    /**
     * A transfer with no progress (no ACK advancing the window, no new DATA block) for this
     * long is ended with an ERROR and its slot freed, whatever timeout was agreed. @default 10000
     */
    stallMs: z.number().int().min(50).max(600_000).default(10_000),
    /** Retransmissions of one packet before the transfer is dropped. @default 5 */
    retries: z.number().int().min(0).max(100).default(5),
    /** Concurrent transfers; beyond it a request gets a "server busy" ERROR. @default 200 */
    maxTransfers: z.number().int().min(1).max(10_000).default(200),
    /** ERROR code sent when busy: 0 (see message) or 3 (allocation exceeded). @default 0 */
    busyErrorCode: z.union([z.literal(0), z.literal(3)]).default(0),
    /** Per-transfer bandwidth cap in bytes/s; 0 = none. @default 0 */
    transferBytesPerSec: z.number().int().min(0).default(0),
    /** Whole-server bandwidth cap in bytes/s; 0 = none. @default 0 */
    globalBytesPerSec: z.number().int().min(0).default(0),
    /** Byte budget of the shared read cache (LRU over chunks of hot files). @default 256 MiB */
    cacheBytes: z.number().int().min(0).default(256 * MiB),
    /** Size of one cache chunk. @default 1 MiB */
    cacheChunkBytes: z.number().int().min(4096).max(64 * MiB).default(MiB),
    /** What to do with a leading "/": serve it relative to the root, or refuse (ERROR 2). @default "relative" */
    absolutePaths: z.enum(['relative', 'reject']).default('relative'),
    /** Accept netascii requests (converted on the fly). @default true */
    netascii: z.boolean().default(true),
    /** Write requests: refused unless set. */
    write: writeSchema.optional(),
    /**
     * Transfer worker threads. 0 serves every transfer on the thread that listens. With N > 0
     * the listening socket, request parsing, the resolver and the events stay on the calling
     * thread, and each read of a file (or of resolver bytes) runs in one of N workers
     * (least loaded first) on its own socket, from that worker's read cache (each gets
     * cacheBytes / N). Streams from a resolver and write requests stay on the calling thread.
     * @default 0
     */
    workers: z.number().int().min(0).max(64).default(0),
    /**
     * Busy-poll budget in microseconds: after sending, the transfer's event loop polls for
     * the ACK for up to this long instead of sleeping, which removes the wake-up from each
     * lockstep round trip (about 2x the single-client rate on loopback) at the cost of CPU
     * while transfers run; a client slower than the budget is not spun for. 0 = off.
     * @default 200
     */
    busyPollUs: z.number().int().min(0).max(10_000).default(200),
    /** Kernel socket buffers for transfer sockets, in bytes (0 = kernel default). @default 1 MiB */
    socketBufferBytes: z.number().int().min(0).default(MiB),
  })
  .readonly();

export type TftpServerConfigInput = z.input<typeof tftpServerConfigSchema>;
export type TftpServerConfig = z.output<typeof tftpServerConfigSchema>;

/** Validates once at the edge; the error lists every bad path with what was expected. */
export function parseTftpServerConfig(input: unknown): TftpServerConfig {
  const r = tftpServerConfigSchema.safeParse(input ?? {});
  if (!r.success) {
    const issues = r.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
    throw new TftpError(
      TftpErrors.CONFIG_INVALID,
      `invalid tftp config: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      { details: { issues } },
    );
  }
  return Object.freeze(r.data);
}
