import type { OnReadOpts, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { CoreTrust } from './trust.js';

export type CloseReason = 'client-closed' | 'upstream-closed' | 'client-error' | 'upstream-error' | 'idle' | 'half-open' | 'revoked' | 'expired' | 'held' | 'stopped';

/** Who a tunnel belongs to, as its client certificate says. */
export interface TunnelOwner {
  trust: CoreTrust;
  principal: string;
  kind: string;
  serial: string;
  /** Certificate expiry, ms. */
  notAfter: number;
}

const kTunnel = Symbol('outpost.gateway.tunnel');
/** A relayed socket carries its tunnel, so the listeners below are shared functions (no closures per tunnel). */
type Tagged = Socket & { [kTunnel]?: Tunnel };

/**
 * One open tunnel: an authenticated client relayed to its target. Bytes go both ways with
 * backpressure (a side whose writes buffer past its high-water mark pauses the other;
 * at most one high-water mark plus one read is buffered per direction); the first error
 * or close tears down both sides and `onEnd` runs exactly once.
 *
 * Memory: one object and two symbol-tagged sockets per tunnel. The listeners are
 * module-level functions, and there are no per-tunnel timers: the gateway's sweep calls
 * `check()`, which compares byte counts (no per-chunk bookkeeping) for the idle bound and
 * the time since the first FIN for the half-open bound.
 *
 * The upstream socket must be connected with {@link upstreamReader}'s `onread`: its bytes
 * arrive in a buffer shared by every tunnel and go straight to the client (no read
 * buffer allocated, no stream events per read). Returning `false` from the read callback,
 * and `pause()`, stop the socket reading; `resume()` starts it again.
 */
export class Tunnel {
  readonly since: number;
  /** Last sweep that saw bytes move (or the start). */
  activeAt: number;
  /** First FIN from either side, 0 while both are open. */
  halfOpenAt = 0;
  #lastBytes = 0;
  #ended = false;

  constructor(
    readonly id: number,
    readonly owner: TunnelOwner,
    readonly target: string,
    readonly client: TLSSocket,
    readonly upstream: Socket,
    readonly onEnd: (t: Tunnel, reason: CloseReason) => void,
    now: number,
  ) {
    this.since = now;
    this.activeAt = now;
    (client as Tagged)[kTunnel] = this;
    (upstream as Tagged)[kTunnel] = this;
    client.on('data', onClientData);
    client.on('drain', onClientDrain);
    upstream.on('drain', onUpstreamDrain);
    client.on('end', onClientEnd);
    upstream.on('end', onUpstreamEnd);
    client.on('error', onClientError);
    upstream.on('error', onUpstreamError);
    client.on('close', onClientClose);
    upstream.on('close', onUpstreamClose);
    client.resume();
  }

  get ended(): boolean {
    return this.#ended;
  }

  end(reason: CloseReason): void {
    if (this.#ended) return;
    this.#ended = true;
    this.client.destroy();
    this.upstream.destroy();
    this.onEnd(this, reason);
  }

  /** The sweep: ends the tunnel when no byte moved for `idleMs` or one side closed its half `halfOpenMs` ago. */
  check(now: number, idleMs: number, halfOpenMs: number): void {
    if (this.halfOpenAt > 0 && now - this.halfOpenAt >= halfOpenMs) return this.end('half-open');
    const bytes = this.client.bytesRead + this.upstream.bytesRead;
    if (bytes !== this.#lastBytes) {
      this.#lastBytes = bytes;
      this.activeAt = now;
    } else if (now - this.activeAt >= idleMs) {
      this.end('idle');
    }
  }
}

function onClientData(this: Tagged, chunk: Buffer): void {
  const t = this[kTunnel];
  if (t && !t.upstream.write(chunk)) this.pause();
}

/**
 * `onread` options for upstream sockets: reads land in one buffer of `size` bytes that
 * every tunnel of this process shares. That is safe because the callback is done with the
 * buffer when it returns: a TLS socket encrypts what it is handed at once (TLSWrap copies
 * the cleartext into its own record, also when it has to keep it for later), so the shared
 * buffer is written through only when the client has nothing queued; a chunk that would
 * wait in the client's Writable queue is copied first.
 */
export function upstreamReader(size: number): OnReadOpts {
  return { buffer: Buffer.allocUnsafe(size), callback: onUpstreamRead };
}

function onUpstreamRead(this: Tagged, n: number, buf: Uint8Array): boolean {
  const t = this[kTunnel];
  // Bytes before the tunnel is attached cannot arrive (reading starts after 'connect',
  // whose listener attaches it); stop reading if they ever did.
  if (!t) return false;
  const c = t.client;
  const view = Buffer.from(buf.buffer, buf.byteOffset, n);
  // Backpressure as before: false stops the upstream reading until the client drains.
  return c.write(c.writableLength === 0 && !c.writableCorked ? view : Buffer.from(view));
}
/** The client's write buffer drained: read from the target again. */
function onClientDrain(this: Tagged): void {
  this[kTunnel]?.upstream.resume();
}
function onUpstreamDrain(this: Tagged): void {
  this[kTunnel]?.client.resume();
}
function halfClose(t: Tunnel | undefined, other: Socket | undefined): void {
  if (!t || t.ended) return;
  if (t.halfOpenAt === 0) t.halfOpenAt = Date.now();
  other?.end();
}
function onClientEnd(this: Tagged): void {
  const t = this[kTunnel];
  halfClose(t, t?.upstream);
}
function onUpstreamEnd(this: Tagged): void {
  const t = this[kTunnel];
  halfClose(t, t?.client);
}
function onClientError(this: Tagged): void {
  this[kTunnel]?.end('client-error');
}
function onUpstreamError(this: Tagged): void {
  this[kTunnel]?.end('upstream-error');
}
function onClientClose(this: Tagged): void {
  this[kTunnel]?.end('client-closed');
}
function onUpstreamClose(this: Tagged): void {
  this[kTunnel]?.end('upstream-closed');
}
