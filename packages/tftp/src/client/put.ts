import type { Readable } from 'node:stream';
import type { RemoteInfo } from 'node:dgram';
import { TftpError, TftpErrors } from '../errors.js';
import { Opcode, TftpErrorCode } from '../packet/opcodes.js';
import { decodePacket } from '../packet/decode.js';
import { encodeRequest } from '../packet/request.js';
import { encodeError } from '../packet/error.js';
import { ackBlock } from '../packet/ack.js';
import { BlockSender } from '../transfer/sender.js';
import { BufferSource, type ByteSource } from '../source/byte-source.js';
import { StreamSource } from '../source/stream-source.js';
import { NetasciiEncoder } from '../netascii.js';
import {
  resolveTarget,
  requestOptions,
  acceptOack,
  remoteError,
  bindClientSocket,
  Resender,
  type TftpClientOptions,
  type TransferResult,
} from './common.js';

export interface TftpPutOptions extends TftpClientOptions {
  /** What to upload: bytes, or a stream (give `size` to announce tsize). */
  data: Buffer | Readable;
  size?: number;
}

/** Uploads one file (WRQ). Rejects with a TftpError. */
export async function tftpPut(options: TftpPutOptions): Promise<TransferResult> {
  const t = await resolveTarget(options);
  const socket = await bindClientSocket(t.family, options.localAddress);
  const started = performance.now();
  let source: ByteSource;
  if (Buffer.isBuffer(options.data)) {
    source = new BufferSource(options.mode === 'netascii' ? new NetasciiEncoder().push(options.data) : options.data);
  } else source = new StreamSource(options.data, options.mode === 'netascii' ? undefined : options.size);
  const asked = requestOptions(options, source.size);
  const wrq = encodeRequest({ opcode: Opcode.WRQ, filename: options.filename, mode: options.mode ?? 'octet', options: asked });

  return new Promise<TransferResult>((resolve, reject) => {
    let peerPort = 0;
    let sender: BlockSender | undefined;
    let settled = false;
    let params = { blksize: 512, windowsize: 1, timeoutMs: undefined as number | undefined, tsize: undefined as number | undefined };
    const finish = (err: TftpError | undefined): void => {
      if (settled) return;
      settled = true;
      opening.cancel();
      sender?.cancel();
      source.close();
      options.signal?.removeEventListener('abort', onAbort);
      socket.close();
      if (err) return reject(err);
      resolve({
        bytes: sender?.bytes ?? 0,
        durationMs: performance.now() - started,
        retransmits: opening.count + (sender?.retransmits ?? 0),
        blksize: params.blksize,
        windowsize: params.windowsize,
        tsize: params.tsize,
      });
    };
    const onAbort = (): void => {
      if (peerPort) socket.send(encodeError(TftpErrorCode.NOT_DEFINED, 'aborted'), peerPort, t.address);
      finish(new TftpError(TftpErrors.ABORTED, 'transfer aborted', { cause: options.signal?.reason }));
    };
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const opening = new Resender(
      () => socket.send(wrq, t.port, t.address),
      t.timeoutMs,
      t.retries,
      () => finish(new TftpError(TftpErrors.TIMEOUT, `no answer from ${t.address}:${t.port}`)),
    );
    const startSender = (): void => {
      opening.cancel();
      sender = new BlockSender({
        socket,
        port: peerPort,
        address: t.address,
        source,
        blksize: params.blksize,
        windowsize: params.windowsize,
        timeoutMs: options.timeoutMs ?? params.timeoutMs ?? t.timeoutMs,
        retries: t.retries,
        buckets: [],
        onEnd: (end) => {
          if (end.ok) finish(undefined);
          else if (end.reason === 'read-error') finish(new TftpError(TftpErrors.LOCAL_IO, 'reading the upload failed', { cause: end.error }));
          else finish(new TftpError(TftpErrors.TIMEOUT, `transfer to ${t.address} timed out after ${end.bytes} bytes`));
        },
      });
      sender.start();
    };
    socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      if (settled) return;
      if (rinfo.address !== t.address || (peerPort !== 0 && rinfo.port !== peerPort)) {
        if (msg[1] !== Opcode.ERROR) socket.send(encodeError(TftpErrorCode.UNKNOWN_TID, 'unknown transfer ID'), rinfo.port, rinfo.address);
        return;
      }
      if (sender) {
        const b = ackBlock(msg);
        if (b >= 0) return sender.onAck(b);
      }
      const d = decodePacket(msg);
      if (!d.ok) return;
      const p = d.packet;
      if (p.opcode === Opcode.ERROR) return finish(remoteError(p));
      if (sender) return;
      if (p.opcode === Opcode.OACK) {
        peerPort = rinfo.port;
        try {
          params = acceptOack(asked, p.options);
        } catch (err) {
          socket.send(encodeError(TftpErrorCode.OPTION_NEGOTIATION, 'bad option value'), peerPort, t.address);
          return finish(err as TftpError);
        }
        startSender();
      } else if (p.opcode === Opcode.ACK && p.block === 0) {
        peerPort = rinfo.port;
        startSender();
      }
    });
  });
}
