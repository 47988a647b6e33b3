import type { RemoteInfo, Socket } from 'node:dgram';
import { TftpError, TftpErrors } from '../errors.js';
import { Opcode, TftpErrorCode } from '../packet/opcodes.js';
import { encodeError } from '../packet/error.js';
import { acceptOack, Resender, type Resolved } from './common.js';

export type AgreedParams = ReturnType<typeof acceptOack>;

/*
 * What a get and a put share around their transfer: the request, resent until the server
 * answers; the abort signal; datagrams from anyone but the server's TID (ERROR 5); the
 * server's OACK (the options it agreed, or ERROR 8 when it agreed to what we never asked).
 * The owner's `fail` must be idempotent: it is called at most once by this exchange, but
 * possibly from inside begin() when the signal is already aborted.
 */
export class ClientExchange {
  /** The server's TID, once it answered (0 before). */
  peerPort = 0;
  params: AgreedParams = { blksize: 512, windowsize: 1, timeoutMs: undefined, tsize: undefined };
  private opening: Resender | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly t: Resolved,
    private readonly asked: ReadonlyArray<readonly [string, string]>,
    private readonly signal: AbortSignal | undefined,
    private readonly fail: (err: TftpError) => void,
  ) {}

  private readonly onAbort = (): void => {
    if (this.peerPort) this.sendToPeer(encodeError(TftpErrorCode.NOT_DEFINED, 'aborted'));
    this.fail(new TftpError(TftpErrors.ABORTED, 'transfer aborted', { cause: this.signal?.reason }));
  };

  /** Sends the request, again every timeout until the server answers; fails at once if already aborted. */
  begin(request: Buffer): void {
    if (this.signal?.aborted) return this.onAbort();
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
    const t = this.t;
    this.opening = new Resender(
      () => this.socket.send(request, t.port, t.address),
      t.timeoutMs,
      t.retries,
      () => this.fail(new TftpError(TftpErrors.TIMEOUT, `no answer from ${t.address}:${t.port}`)),
    );
  }

  /** Times the request was sent again. */
  get resends(): number {
    return this.opening?.count ?? 0;
  }

  /** The server answered: stop resending the request. */
  answered(rinfo: RemoteInfo): void {
    this.peerPort = rinfo.port;
    this.opening?.cancel();
  }

  /** Stops what the exchange started (resends, the abort listener). */
  end(): void {
    this.opening?.cancel();
    this.signal?.removeEventListener('abort', this.onAbort);
  }

  /** False for a datagram from anyone but the server (answered with ERROR 5 unless it is an ERROR). */
  fromPeer(msg: Buffer, rinfo: RemoteInfo): boolean {
    if (rinfo.address === this.t.address && (this.peerPort === 0 || rinfo.port === this.peerPort)) return true;
    if (msg[1] !== Opcode.ERROR) this.socket.send(encodeError(TftpErrorCode.UNKNOWN_TID, 'unknown transfer ID'), rinfo.port, rinfo.address);
    return false;
  }

  /** Takes the server's OACK. False (after ERROR 8 to the server and `fail`) when it is not acceptable. */
  takeOack(options: ReadonlyArray<readonly [string, string]>, rinfo: RemoteInfo): boolean {
    this.answered(rinfo);
    try {
      this.params = acceptOack(this.asked, options);
      return true;
    } catch (err) {
      this.sendToPeer(encodeError(TftpErrorCode.OPTION_NEGOTIATION, 'bad option value'));
      this.fail(err as TftpError);
      return false;
    }
  }

  sendToPeer(buf: Buffer): void {
    this.socket.send(buf, this.peerPort, this.t.address);
  }

  /** The retransmit timeout: the caller's, else the agreed `timeout` option, else the default. */
  timeoutMs(override: number | undefined): number {
    return override ?? this.params.timeoutMs ?? this.t.timeoutMs;
  }
}
