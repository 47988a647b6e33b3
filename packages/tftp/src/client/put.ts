import type { Readable } from 'node:stream';
import type { RemoteInfo } from 'node:dgram';
import { TftpError, TftpErrors } from '../errors.js';
import { Opcode } from '../packet/opcodes.js';
import { decodePacket } from '../packet/decode.js';
import { encodeRequest } from '../packet/request.js';
import { ackBlock } from '../packet/ack.js';
import { BlockSender } from '../transfer/sender.js';
import { BufferSource, type ByteSource } from '../source/byte-source.js';
import { StreamSource } from '../source/stream-source.js';
import { NetasciiEncoder } from '../netascii.js';
import { resolveTarget, requestOptions, remoteError, bindClientSocket, type TftpClientOptions, type TransferResult } from './common.js';
import { ClientExchange } from './exchange.js';

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
    let sender: BlockSender | undefined;
    let settled = false;
    const finish = (err: TftpError | undefined): void => {
      if (settled) return;
      settled = true;
      ex.end();
      sender?.cancel();
      source.close();
      socket.close();
      if (err) return reject(err);
      resolve({
        bytes: sender?.bytes ?? 0,
        durationMs: performance.now() - started,
        retransmits: ex.resends + (sender?.retransmits ?? 0),
        blksize: ex.params.blksize,
        windowsize: ex.params.windowsize,
        tsize: ex.params.tsize,
      });
    };
    const ex = new ClientExchange(socket, t, asked, options.signal, finish);
    const startSender = (): void => {
      sender = new BlockSender({
        socket,
        port: ex.peerPort,
        address: t.address,
        source,
        blksize: ex.params.blksize,
        windowsize: ex.params.windowsize,
        timeoutMs: ex.timeoutMs(options.timeoutMs),
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
      if (settled || !ex.fromPeer(msg, rinfo)) return;
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
        if (ex.takeOack(p.options, rinfo)) startSender();
      } else if (p.opcode === Opcode.ACK && p.block === 0) {
        ex.answered(rinfo);
        startSender();
      }
    });
    ex.begin(wrq);
  });
}
