import type { Writable } from 'node:stream';
import type { RemoteInfo } from 'node:dgram';
import { TftpError, TftpErrors } from '../errors.js';
import { Opcode, TftpErrorCode } from '../packet/opcodes.js';
import { decodePacket } from '../packet/decode.js';
import { encodeRequest } from '../packet/request.js';
import { encodeAck } from '../packet/ack.js';
import { encodeError } from '../packet/error.js';
import { BlockReceiver } from '../transfer/receiver.js';
import { NetasciiDecoder } from '../netascii.js';
import { resolveTarget, requestOptions, remoteError, bindClientSocket, type TftpClientOptions, type TransferResult } from './common.js';
import { ClientExchange } from './exchange.js';

export interface TftpGetOptions extends TftpClientOptions {
  /** Write the file here instead of returning it (the stream is not ended). */
  to?: Writable;
  /** Refuse files larger than this. @default 4 GiB */
  maxBytes?: number;
}

export interface TftpGetResult extends TransferResult {
  /** The file, unless `to` was given. */
  data: Buffer | undefined;
}

/** Downloads one file (RRQ). Rejects with a TftpError (TFTP_FILE_NOT_FOUND, TFTP_TIMEOUT, ...). */
export async function tftpGet(options: TftpGetOptions): Promise<TftpGetResult> {
  const t = await resolveTarget(options);
  const socket = await bindClientSocket(t.family, options.localAddress);
  const started = performance.now();
  const asked = requestOptions(options, 0);
  const rrq = encodeRequest({ opcode: Opcode.RRQ, filename: options.filename, mode: options.mode ?? 'octet', options: asked });
  const chunks: Buffer[] = [];
  const decoder = options.mode === 'netascii' ? new NetasciiDecoder() : undefined;
  const sink = (data: Buffer): void => {
    const b = decoder ? decoder.push(data) : data;
    if (options.to) options.to.write(b);
    else chunks.push(b);
  };

  return new Promise<TftpGetResult>((resolve, reject) => {
    let receiver: BlockReceiver | undefined;
    let settled = false;
    const finish = (err: TftpError | undefined, dallyMs = 0): void => {
      if (settled) return;
      settled = true;
      ex.end();
      if (dallyMs > 0) setTimeout(() => socket.close(), dallyMs).unref();
      else {
        receiver?.cancel();
        socket.close();
      }
      if (err) return reject(err);
      if (decoder) sink(decoder.end());
      resolve({
        data: options.to ? undefined : Buffer.concat(chunks),
        bytes: receiver?.bytes ?? 0,
        durationMs: performance.now() - started,
        retransmits: ex.resends + (receiver?.retransmits ?? 0),
        blksize: ex.params.blksize,
        windowsize: ex.params.windowsize,
        tsize: ex.params.tsize,
      });
    };
    const ex = new ClientExchange(socket, t, asked, options.signal, finish);
    const startReceiver = (firstAck: Buffer | undefined): void => {
      receiver = new BlockReceiver({
        socket,
        port: ex.peerPort,
        address: t.address,
        blksize: ex.params.blksize,
        windowsize: ex.params.windowsize,
        timeoutMs: ex.timeoutMs(options.timeoutMs),
        retries: t.retries,
        maxBytes: options.maxBytes ?? 4 * 1024 ** 3,
        ...(firstAck ? { opening: firstAck } : {}),
        sink,
        onEnd: (end) => {
          if (end.ok) finish(undefined, Math.min(t.timeoutMs * 2, 5000));
          else if (end.reason === 'too-large') {
            ex.sendToPeer(encodeError(TftpErrorCode.DISK_FULL, 'file too large'));
            finish(new TftpError(TftpErrors.TOO_LARGE, `file exceeds ${options.maxBytes} bytes`));
          } else finish(new TftpError(TftpErrors.TIMEOUT, `transfer from ${t.address} timed out after ${end.bytes} bytes`));
        },
      });
      receiver.start();
    };
    socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      if (settled && !receiver) return;
      if (!ex.fromPeer(msg, rinfo)) return;
      if (receiver && msg.length >= 4 && msg[0] === 0 && msg[1] === Opcode.DATA) {
        receiver.onData((msg[2]! << 8) | msg[3]!, msg.subarray(4));
        return;
      }
      if (settled) return;
      const d = decodePacket(msg);
      if (!d.ok) return;
      const p = d.packet;
      if (p.opcode === Opcode.ERROR) return finish(remoteError(p));
      if (receiver) return;
      if (p.opcode === Opcode.OACK) {
        if (!ex.takeOack(p.options, rinfo)) return;
        const ack0 = encodeAck(0);
        ex.sendToPeer(ack0);
        startReceiver(ack0);
      } else if (p.opcode === Opcode.DATA) {
        ex.answered(rinfo);
        startReceiver(undefined);
        receiver!.onData(p.block, p.data);
      }
    });
    ex.begin(rrq);
  });
}
