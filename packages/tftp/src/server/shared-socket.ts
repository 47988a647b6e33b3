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

/** A transfer's client: its route, and the next client on the same port (another address). */
interface Client {
  readonly address: string;
  route: Route;
  next: Client | undefined;
}

export class SharedTransferSocket {
  /**
   * Clients by port, then address: keyed by the port (a small integer, hashed for free)
   * rather than an `address:port` string, which cost a number-to-string, a concatenation
   * and a string hash per ACK (3% of a worker's CPU at 1,000 lockstep transfers).
   */
  private readonly ports = new Map<number, Client>();

  private constructor(
    private readonly socket: Socket,
    private readonly onUnknown: () => void,
  ) {
    socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      let c = this.ports.get(rinfo.port);
      while (c !== undefined && c.address !== rinfo.address) c = c.next;
      if (c !== undefined) c.route(msg, rinfo);
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
    const ports = this.ports;
    const first = ports.get(port);
    for (let c = first; c !== undefined; c = c.next) if (c.address === address) return undefined;
    // Until the transfer listens, its client's datagrams are dropped, not answered ERROR 5.
    const client: Client = { address, route: () => {}, next: first };
    ports.set(port, client);
    let open = true;
    const view: TransferSocket = {
      on(event: 'message' | 'error', listener: Route | ((err: Error) => void)) {
        if (event === 'message' && open) client.route = listener as Route;
        return view;
      },
      send: this.socket.send.bind(this.socket) as TransferSocket['send'],
      close() {
        if (!open) return;
        open = false;
        let c = ports.get(port);
        if (c === client) {
          if (client.next === undefined) ports.delete(port);
          else ports.set(port, client.next);
          return;
        }
        while (c !== undefined && c.next !== client) c = c.next;
        if (c !== undefined) c.next = client.next;
      },
    };
    return view;
  }

  private onStranger(msg: Buffer, rinfo: RemoteInfo): void {
    this.onUnknown();
    answerStranger(msg, rinfo, this.socket);
  }

  close(): void {
    this.ports.clear();
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }
}
