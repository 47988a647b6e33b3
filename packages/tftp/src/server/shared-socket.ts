import type { RemoteInfo, Socket } from 'node:dgram';
import { answerStranger, bindSocket, type TransferSocketOptions } from './transfer-sockets.js';
import type { TransferSocket } from '../transfer/transfer-socket.js';

/*
 * One data socket for all of a transfer worker's reads, demultiplexed by the client's
 * address:port. RFC 1350 asks only that a transfer's server TID (port) stay the same for
 * its whole life, not that no other transfer uses it (dnsmasq's --tftp-single-port puts
 * every transfer on port 69).
 *
 * Why: with a socket per transfer, each ACK is an epoll event of its own, libuv reads
 * that socket until EAGAIN (two recvmsg and two 64 KiB receive buffers per ACK), and a
 * thousand sockets' kernel, libuv and Node state are touched in turn. One socket is read
 * up to 32 datagrams per wake-up and stays hot. Sends carry the client's address (the
 * lookup is synchronous: the address is always an IP).
 *
 * A datagram from an address:port with no transfer here gets ERROR 5, as on a
 * transfer's own port. A client that starts a second transfer from the port of one still
 * running here gets a socket of its own (the caller opens it).
 */

type Route = (msg: Buffer, rinfo: RemoteInfo) => void;

export class SharedTransferSocket {
  private readonly routes = new Map<string, Route>();

  private constructor(
    private readonly socket: Socket,
    private readonly onUnknown: () => void,
  ) {
    socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      const route = this.routes.get(`${rinfo.address}:${rinfo.port}`);
      if (route !== undefined) route(msg, rinfo);
      else this.onStranger(msg, rinfo);
    });
    // Send errors (no callback on the hot path) surface here; the transfer they belong to
    // cannot be told, so it times out like one whose packet was lost.
    socket.on('error', () => {});
  }

  /** Binds a new port; `onUnknown` counts each datagram from no transfer's client. */
  static async open(o: TransferSocketOptions, onUnknown: () => void): Promise<SharedTransferSocket> {
    // Every transfer's ACKs queue here: the default receive buffer (208 KiB, ~300
    // datagrams) overflowed with 500 lockstep transfers on a worker, and each dropped ACK
    // cost its transfer a timeout and a resend (bench:netboot, 1,000 clients: 115,546).
    return new SharedTransferSocket(await bindSocket(o, 0, { send: true, recv: true }), onUnknown);
  }

  /** A transfer's view of the socket, or undefined if this client address:port already has a transfer here. */
  attach(address: string, port: number): TransferSocket | undefined {
    const key = `${address}:${port}`;
    if (this.routes.has(key)) return undefined;
    const routes = this.routes;
    let route: Route = () => {}; // until the transfer listens: its client's datagrams are dropped, not ERROR 5
    routes.set(key, route);
    const view: TransferSocket = {
      on(event: 'message' | 'error', listener: Route | ((err: Error) => void)) {
        if (event === 'message' && routes.get(key) === route) {
          route = listener as Route;
          routes.set(key, route);
        }
        return view;
      },
      send: this.socket.send.bind(this.socket) as TransferSocket['send'],
      close() {
        if (routes.get(key) === route) routes.delete(key);
      },
    };
    return view;
  }

  private onStranger(msg: Buffer, rinfo: RemoteInfo): void {
    this.onUnknown();
    answerStranger(msg, rinfo, this.socket);
  }

  close(): void {
    this.routes.clear();
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }
}
