import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { TftpError, TftpErrors } from '../errors.js';
import { MAX_BLKSIZE, MIN_BLKSIZE, TftpErrorCode } from '../packet/opcodes.js';
import type { ErrorPacket } from '../packet/error.js';

export interface TftpClientOptions {
  /** Server host (an IP literal or a name). */
  host: string;
  /** @default 69 */
  port?: number;
  /** Remote file name. */
  filename: string;
  /** @default "octet" */
  mode?: 'octet' | 'netascii';
  /** blksize to ask for (RFC 2348); unset = 512, no option sent. */
  blksize?: number;
  /** windowsize to ask for (RFC 7440); unset = 1, no option sent. */
  windowsize?: number;
  /** timeout option to send, in seconds (RFC 2349). Also the local retransmit timeout unless timeoutMs is set. */
  timeout?: number;
  /** Ask for / announce tsize (RFC 2349). @default true when any other option is set */
  tsize?: boolean;
  /** Local retransmit timeout in ms. @default timeout * 1000, else 1000 */
  timeoutMs?: number;
  /** Retransmissions of one packet before giving up. @default 5 */
  retries?: number;
  /** Local address to bind. */
  localAddress?: string;
  signal?: AbortSignal;
}

export interface TransferResult {
  bytes: number;
  durationMs: number;
  retransmits: number;
  blksize: number;
  windowsize: number;
  /** tsize from the server's OACK (get) or as announced (put). */
  tsize: number | undefined;
}

export interface Resolved {
  address: string;
  family: 'udp4' | 'udp6';
  port: number;
  timeoutMs: number;
  retries: number;
}

export function validate(o: TftpClientOptions): void {
  const bad = (m: string): never => {
    throw new TftpError(TftpErrors.BAD_OPTIONS, m);
  };
  if (!o.host) bad('host is required');
  if (!o.filename) bad('filename is required');
  if (o.blksize !== undefined && (!Number.isInteger(o.blksize) || o.blksize < MIN_BLKSIZE || o.blksize > MAX_BLKSIZE))
    bad(`blksize must be ${MIN_BLKSIZE}..${MAX_BLKSIZE}`);
  if (o.windowsize !== undefined && (!Number.isInteger(o.windowsize) || o.windowsize < 1 || o.windowsize > 65535))
    bad('windowsize must be 1..65535');
  if (o.timeout !== undefined && (!Number.isInteger(o.timeout) || o.timeout < 1 || o.timeout > 255)) bad('timeout must be 1..255');
  if (o.port !== undefined && (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535)) bad('port must be 1..65535');
}

export async function resolveTarget(o: TftpClientOptions): Promise<Resolved> {
  validate(o);
  const address = isIP(o.host) ? o.host : (await lookup(o.host)).address;
  return {
    address,
    family: isIP(address) === 6 ? 'udp6' : 'udp4',
    port: o.port ?? 69,
    timeoutMs: o.timeoutMs ?? (o.timeout !== undefined ? o.timeout * 1000 : 1000),
    retries: o.retries ?? 5,
  };
}

export function requestOptions(o: TftpClientOptions, tsizeValue: number | undefined): Array<[string, string]> {
  const opts: Array<[string, string]> = [];
  if (o.blksize !== undefined) opts.push(['blksize', String(o.blksize)]);
  if (o.windowsize !== undefined) opts.push(['windowsize', String(o.windowsize)]);
  if (o.timeout !== undefined) opts.push(['timeout', String(o.timeout)]);
  const wantTsize = o.tsize ?? opts.length > 0;
  if (wantTsize && tsizeValue !== undefined) opts.push(['tsize', String(tsizeValue)]);
  return opts;
}

/** Checks an OACK against what we asked: only asked-for options, values we can live with. */
export function acceptOack(
  asked: ReadonlyArray<readonly [string, string]>,
  got: ReadonlyArray<readonly [string, string]>,
): { blksize: number; windowsize: number; timeoutMs: number | undefined; tsize: number | undefined } {
  const askedMap = new Map(asked.map(([k, v]) => [k, Number(v)]));
  const out = { blksize: 512, windowsize: 1, timeoutMs: undefined as number | undefined, tsize: undefined as number | undefined };
  for (const [k, v] of got) {
    const n = /^[0-9]{1,15}$/.test(v) ? Number(v) : NaN;
    const want = askedMap.get(k);
    const fail = (): never => {
      throw new TftpError(TftpErrors.PROTOCOL, `server answered option ${k}=${v}, which was not asked or is out of range`);
    };
    if (want === undefined || Number.isNaN(n)) fail();
    if (k === 'blksize') {
      if (n < MIN_BLKSIZE || n > want!) fail();
      out.blksize = n;
    } else if (k === 'windowsize') {
      if (n < 1 || n > want!) fail();
      out.windowsize = n;
    } else if (k === 'timeout') {
      if (n < 1 || n > 255) fail();
      out.timeoutMs = n * 1000;
    } else if (k === 'tsize') out.tsize = n;
  }
  return out;
}

export function remoteError(p: ErrorPacket): TftpError {
  const details = { tftpCode: p.code, tftpMessage: p.message };
  if (p.code === TftpErrorCode.FILE_NOT_FOUND) return new TftpError(TftpErrors.FILE_NOT_FOUND, `server: ${p.message || 'file not found'}`, { details });
  if (p.code === TftpErrorCode.ACCESS_VIOLATION) return new TftpError(TftpErrors.ACCESS_VIOLATION, `server: ${p.message || 'access violation'}`, { details });
  return new TftpError(TftpErrors.REMOTE_ERROR, `server error ${p.code}: ${p.message}`, { details });
}

export function bindClientSocket(family: 'udp4' | 'udp6', localAddress: string | undefined): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket({ type: family });
    s.once('error', reject);
    s.bind(0, localAddress, () => {
      s.off('error', reject);
      try {
        s.setRecvBufferSize(1024 * 1024);
      } catch {
        // capped by the kernel
      }
      resolve(s);
    });
  });
}

/** Sends `pkt` now and again every timeoutMs until cancel(); calls onGiveUp after `retries` resends. */
export class Resender {
  private timer: NodeJS.Timeout | undefined;
  private left: number;
  count = 0;
  constructor(
    private readonly send: () => void,
    private readonly timeoutMs: number,
    retries: number,
    private readonly onGiveUp: () => void,
  ) {
    this.left = retries;
    send();
    this.arm();
  }
  private arm(): void {
    this.timer = setTimeout(() => {
      if (this.left-- <= 0) return this.onGiveUp();
      this.count++;
      this.send();
      this.arm();
    }, this.timeoutMs);
  }
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
