import { createSocket, type Socket } from 'node:dgram';

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

export function bindSocket(o: TransferSocketOptions, port: number, sendBuffer: boolean): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket({ type: o.family, reuseAddr: true });
    const onErr = (err: Error): void => {
      s.close();
      reject(err);
    };
    s.once('error', onErr);
    s.bind(port, o.address, () => {
      s.off('error', onErr);
      if (sendBuffer && o.socketBufferBytes > 0) {
        try {
          s.setSendBufferSize(o.socketBufferBytes);
        } catch {
          // the kernel caps it (net.core.wmem_max); the default works too
        }
      }
      resolve(s);
    });
  });
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
  const socket = await bindSocket(o, 0, true);
  let strangers: Socket | undefined;
  let connectTried = false;
  try {
    strangers = await bindSocket(o, socket.address().port, false);
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
    return { socket: await bindSocket(o, 0, true), strangers: undefined };
  }
}
