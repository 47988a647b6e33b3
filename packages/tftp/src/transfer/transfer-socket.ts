import type { RemoteInfo } from 'node:dgram';

/** What a transfer needs of its socket: dgram's Socket, or its view of a shared one. */
export interface TransferSocket {
  on(event: 'message', listener: (msg: Buffer, rinfo: RemoteInfo) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  send(msg: Buffer, port: number, address: string, callback?: (error: Error | null, bytes: number) => void): void;
  send(msg: Buffer, callback?: (error: Error | null, bytes: number) => void): void;
  close(): void;
}
