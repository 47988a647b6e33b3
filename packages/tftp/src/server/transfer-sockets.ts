import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { encodeError } from '../packet/error.js';
import { Opcode, TftpErrorCode } from '../packet/opcodes.js';
import type { TransferSocket } from '../transfer/transfer-socket.js';

/*
 * A transfer's sockets: a fresh ephemeral port (the TID) connect()ed to the client, plus
 * a "strangers" socket bound to the same port with SO_REUSEADDR that receives what the
 * kernel no longer hands the connected one (datagrams from anyone else, answered with
 * ERROR 5). Used by the main thread and by transfer workers alike.
 */

export interface TransferSocketOptions {
  family: 'udp4' | 'udp6';
  address: string;
  /** SO_SNDBUF of the transfer socket; 0 = kernel default. */
  socketBufferBytes: number;
}

/** Which socket buffers to size to `socketBufferBytes` (else the kernel defaults). */
export interface SocketBuffers {
  send?: boolean;
  recv?: boolean;
}

/**
 * A UDP socket bound to `port` (0: a fresh one) on our address, closed again if the bind
 * fails. Its lookup takes the address as given: a transfer only ever sends to and
 * connects to a client's IP, so no DNS step runs per send.
 */
export function bindSocket(o: TransferSocketOptions, port: number, buffers: SocketBuffers = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket({ type: o.family, reuseAddr: true, lookup: (address, _opts, cb) => cb(null, address, o.family === 'udp4' ? 4 : 6) });
    const onErr = (err: Error): void => {
      s.close();
      reject(err);
    };
    s.once('error', onErr);
    s.bind(port, o.address, () => {
      s.off('error', onErr);
      if (o.socketBufferBytes > 0) {
        try {
          if (buffers.send) s.setSendBufferSize(o.socketBufferBytes);
          if (buffers.recv) s.setRecvBufferSize(o.socketBufferBytes);
        } catch {
          // the kernel caps them (net.core.wmem_max, rmem_max); the defaults work too
        }
      }
      resolve(s);
    });
  });
}

const UNKNOWN_TID = encodeError(TftpErrorCode.UNKNOWN_TID, 'unknown transfer ID');

/**
 * Answers a datagram from an endpoint with no transfer on this port: ERROR 5, unless it
 * is itself an ERROR (never answer one with another). The caller counts it.
 */
export function answerStranger(msg: Buffer, rinfo: RemoteInfo, via: TransferSocket): void {
  if (msg.length < 2 || msg[1] !== Opcode.ERROR || msg[0] !== 0) via.send(UNKNOWN_TID, rinfo.port, rinfo.address);
}

/**
 * The transfer socket connected to the client plus its strangers socket. Falls back to
 * one unconnected socket if the second bind or the connect fails.
 */
export async function openTransferSockets(
  o: TransferSocketOptions,
  peerPort: number,
  peerAddress: string,
): Promise<{ socket: Socket; strangers: Socket | undefined }> {
  const socket = await bindSocket(o, 0, { send: true });
  let strangers: Socket | undefined;
  let connectTried = false;
  try {
    strangers = await bindSocket(o, socket.address().port);
    connectTried = true;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(peerPort, peerAddress, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return { socket, strangers };
  } catch {
    strangers?.close();
    if (!connectTried) return { socket, strangers: undefined };
    socket.close(); // a failed connect leaves the socket in an unknown state
    return { socket: await bindSocket(o, 0, { send: true }), strangers: undefined };
  }
}
