import type { Socket } from 'node:net';
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
    upstream.on('data', onUpstreamData);
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
function onUpstreamData(this: Tagged, chunk: Buffer): void {
  const t = this[kTunnel];
  if (t && !t.client.write(chunk)) this.pause();
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
