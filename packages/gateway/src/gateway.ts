import { randomBytes, randomInt } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect as netConnect, type AddressInfo, type NetConnectOpts, type Socket } from 'node:net';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { lifecycle, type Service } from '@outpost/common/lifecycle';
import { urlHost } from '@outpost/common/listen';
import { silentLogger, type Logger } from '@outpost/common/logger';
import { Admission } from './admission.js';
import type { GatewayConfig, StaticCoreConfig } from './config.js';
import { CoreLink, isLinked, type LinkChange } from './core-link.js';
import { forwardEnrollment } from './enroll-forward.js';
import { GatewayError, GatewayErrors, type GatewayErrorCode } from './errors.js';
import { fdsNeeded, openFilesLimit } from './limits.js';
import { createMetrics, HotCounters, type Metrics } from './metrics.js';
import { Tunnel, upstreamReader, type CloseReason, type TunnelOwner } from './tunnel.js';
import { decodeRequestHead, encodeRefusal, parseAuthority, splitAuthority, type RequestHead } from './request-head.js';
import { caFingerprint, coreIdOfCa, normalizeSerial, principalOf, type CoreTrust } from './trust.js';
import { mergeTables, type GatewayPeers, type PeerTable } from './workers.js';
import { X509Certificate } from 'node:crypto';

export interface GatewayDeps {
  /** @default silentLogger() */
  logger?: Logger;
  /** Collect Node's default process metrics too. @default true */
  processMetrics?: boolean;
  /**
   * A site-server enrollment token for a linked core that has no token configured and
   * no identity yet (the appliance mints one for its in-process core).
   */
  mintEnrollToken?: (coreUrl: string) => Promise<string | undefined>;
  /** The other workers of this gateway (`outpost-gateway` with `workers` > 1): one connection report for all. */
  peers?: GatewayPeers;
}

/** One open tunnel, as the connection table shows it. */
export interface TunnelView {
  principal: string;
  kind: string;
  coreId: string;
  serial: string;
  remote: string;
  target: string;
  since: string;
  bytesIn: number;
  bytesOut: number;
}

export interface Gateway extends Service {
  /** TLS port (after start). */
  readonly port: number;
  /** Health/metrics port (after start; 0 when disabled). */
  readonly metricsPort: number;
  /** `https://host:port` of the TLS listener. */
  readonly url: string;
  /** Re-reads certificate, CA, routes and revocation files and fetches every linked core; tunnels stay up. */
  reload(): Promise<void>;
  /** Fetches routes and revocations from every linked core now. */
  refresh(): Promise<void>;
  connections(): TunnelView[];
  stats(): Record<string, number>;
  health(): Record<string, unknown>;
}


interface CoreEntry {
  static?: StaticCoreConfig;
  link?: CoreLink;
  trust: CoreTrust;
}

const HALF_OPEN_MS = 30_000;
const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n');
/** Largest read from a target (Node's own read size). */
const UPSTREAM_READ = 64 * 1024;
/** A sweep period a quarter of `ms`, within [25 ms, max]. */
const tick = (ms: number, max: number): number => Math.min(max, Math.max(25, Math.floor(ms / 4)));


/**
 * The Internet gateway: a TLS listener that requires a client certificate from one of
 * its cores' CAs, routes by the core the certificate names, lets a client CONNECT only
 * to that core's routing table, then relays raw bytes. See the package README.
 */
export function createGateway(config: GatewayConfig, deps: GatewayDeps = {}): Gateway {
  const log = (deps.logger ?? silentLogger()).child({ module: 'gateway' });
  const hot = new HotCounters();
  // Every tunnel's reads from its target land in this one buffer (see upstreamReader).
  const upstreamRead = upstreamReader(UPSTREAM_READ);
  const metrics: Metrics = createMetrics(deps.processMetrics ?? true, hot);
  const lim = config.limits;
  const admission = new Admission(lim.handshakeRate, lim.handshakeBurst);
  const counters = { refused: 0, tlsErrors: 0 };
  const cores: CoreEntry[] = [];
  const byFingerprint = new Map<string, CoreTrust>();
  const byCoreId = new Map<string, CoreTrust>();
  const tunnels = new Set<Tunnel>();
  /** Sockets waiting for their request head: the deadline (checked by the sweep) and the log context. */
  const heads = new Map<TLSSocket, { deadline: number; who: Record<string, unknown> }>();
  /** Configured CAs, parsed, with their core (which core issued a client certificate). */
  let issuers: Array<[X509Certificate, CoreTrust]> = [];
  const parsedCas = new Map<string, X509Certificate>();
  const perClient = new Map<string, number>();
  const clients = new Set<TLSSocket>();
  const hinted = new Set<string>();
  /** The gateway's own names: a client that sends one as SNI is talking to the gateway (CONNECT follows). */
  const ownNames = new Set(config.tls.names.map((n) => n.toLowerCase()));
  /**
   * Raw TCP sockets by `ip:port`. A TLSSocket that fails its handshake is destroyed by
   * Node but its parent TCP socket is not (its fd would leak): we destroy both.
   */
  const raws = new Map<string, Socket>();
  let nextTunnel = 1;
  let server: TlsServer | undefined;
  let metricsServer: HttpServer | undefined;
  let timers: NodeJS.Timeout[] = [];
  let ticketKeys: Buffer | undefined;
  let syncing: Promise<void> = Promise.resolve();

  // ------------------------------------------------------------------ trust material

  async function loadStatic(c: StaticCoreConfig, previous?: CoreTrust): Promise<CoreTrust> {
    const caPem = await readFile(c.caFile, 'utf8');
    const ca = new X509Certificate(caPem);
    const coreId = c.id ?? coreIdOfCa(ca);
    if (!coreId) throw new GatewayError(GatewayErrors.CONFIG, `${c.caFile}: no core id (set cores[].id, or use a CA certificate with an outpost://<id>/core/ca SAN URI)`);
    const revoked = new Set<string>();
    if (c.revokedFile) {
      const text = await readFile(c.revokedFile, 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? '' : Promise.reject(err)));
      for (const line of text.split('\n')) if (/^[0-9a-fA-F:]+$/.test(line.trim())) revoked.add(normalizeSerial(line.trim()));
    }
    const routes = new Set(c.routes.map((r) => parseAuthority(r)).filter((r): r is string => r !== undefined));
    return { coreId, caPem, caFingerprint: ca.fingerprint256, routes, revoked, held: previous?.held ?? new Set(), stale: false, coreTarget: undefined };
  }

  function indexTrust(): void {
    byFingerprint.clear();
    byCoreId.clear();
    for (const c of cores) {
      if (c.link?.trust) c.trust = c.link.trust;
      byFingerprint.set(c.trust.caFingerprint, c.trust);
      byCoreId.set(c.trust.coreId, c.trust);
    }
    issuers = cores.map((c) => {
      let ca = parsedCas.get(c.trust.caPem);
      if (!ca) {
        ca = new X509Certificate(c.trust.caPem);
        parsedCas.set(c.trust.caPem, ca);
      }
      return [ca, c.trust];
    });
    for (const pem of parsedCas.keys()) if (!cores.some((c) => c.trust.caPem === pem)) parsedCas.delete(pem);
  }

  async function ownCertificate(): Promise<{ cert: string; key: string }> {
    if (config.tls.certFile && config.tls.keyFile) return { cert: await readFile(config.tls.certFile, 'utf8'), key: await readFile(config.tls.keyFile, 'utf8') };
    const link = cores.find((c) => c.link?.identity)?.link;
    if (!link?.identity) throw new GatewayError(GatewayErrors.CONFIG, 'no gateway certificate: set tls.certFile/tls.keyFile or link a core that issues one');
    return { cert: link.identity.certPem + link.identity.caPem, key: link.identity.keyPem };
  }

  async function loadTicketKeys(): Promise<Buffer> {
    const file = config.tls.ticketKeyFile ?? join(config.dataDir, 'ticket-keys');
    try {
      const b = await readFile(file);
      if (b.length >= 48) return b.subarray(0, 48);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const keys = randomBytes(48);
    await writeFile(file, keys, { mode: 0o600 });
    await chmod(file, 0o600);
    return keys;
  }

  /**
   * Certificate, CAs and session setup, for the listener and every swap of its context.
   * Resumption is by stateless tickets: Node 20 cannot resume TLS 1.3 from a server-side
   * session cache (its resumeSession event sees only the legacy session id, not the PSK
   * identity: nodejs/node#60847), so tickets stay on although they cost memory (README).
   */
  async function secureOptions(): Promise<{ cert: string; key: string; ca: string[]; sessionIdContext: string; minVersion: 'TLSv1.2' }> {
    const own = await ownCertificate();
    return { ...own, ca: cores.map((c) => c.trust.caPem), sessionIdContext: 'outpost-gateway', minVersion: 'TLSv1.2' };
  }

  // ------------------------------------------------------------------ refusals

  function refuse(sock: TLSSocket, status: number, code: GatewayErrorCode, message: string, who: Record<string, unknown>, extra: Record<string, string | number> = {}): void {
    counters.refused++;
    metrics.refusals.inc({ code });
    heads.delete(sock);
    const level = code === GatewayErrors.RATE_LIMITED || code === GatewayErrors.TOO_MANY_CONNECTIONS ? 'debug' : 'info';
    if (log.isLevelEnabled(level)) log[level]({ code, status, ip: sock.remoteAddress, ...who }, 'refused');
    if (sock.destroyed) return;
    sock.removeAllListeners('data');
    sock.end(encodeRefusal(status, code, message, extra));
    // Whatever the peer does, the socket is gone in 2 s.
    setTimeout(() => sock.destroy(), 2_000).unref();
  }

  const retryAfter = (): number => lim.retryAfter + randomInt(0, lim.retryAfter + 1);

  // ------------------------------------------------------------------ connections
  //
  // The connection path keeps little per connection: a Map entry for the raw socket
  // (so it can be destroyed with its TLS socket), shared listener functions (no closures
  // per connection once a tunnel is open), plain counters, and no timers of its own:
  // head deadlines and idle/half-open tunnels are checked by sweeps.

  const keyOf = (s: Socket): string => `${s.remoteAddress}:${s.remotePort}`;

  function onRawConnection(raw: Socket): void {
    const ip = raw.remoteAddress ?? '';
    if (hot.connections >= lim.maxConnections) {
      hot.overCapacity++;
      raw.destroy();
      return;
    }
    const decision = admission.take(ip, Date.now());
    hot[decision]++;
    if (decision === 'drop') {
      raw.destroy();
      return;
    }
    const key = `${ip}:${raw.remotePort}`;
    if (decision === 'hint') hinted.add(key);
    hot.connections++;
    raws.set(key, raw);
    raw.on('error', destroyThis);
    raw.once('close', onRawClose);
  }

  function destroyThis(this: Socket): void {
    this.destroy();
  }

  function onRawClose(this: Socket): void {
    hot.connections--;
    const key = keyOf(this);
    hinted.delete(key);
    if (raws.get(key) === this) raws.delete(key);
  }

  function onTlsClose(this: TLSSocket): void {
    clients.delete(this);
    heads.delete(this);
    raws.get(keyOf(this))?.destroy();
  }

  /** The CA (of a configured core) that issued `cert`: OpenSSL has verified the chain, this only tells which core's. */
  function trustOf(cert: X509Certificate): CoreTrust | undefined {
    for (const [ca, trust] of issuers) if (cert.checkIssued(ca)) return trust;
    return undefined;
  }

  function onSecure(sock: TLSSocket): void {
    clients.add(sock);
    sock.once('close', onTlsClose);
    sock.on('error', destroyThis);
    hot.handshakes++;
    if (sock.isSessionReused()) hot.resumed++;
    const key = keyOf(sock);
    const cert = sock.getPeerX509Certificate();
    const who: Record<string, unknown> = cert ? { subject: cert.subject.replace(/^CN=/, ''), serial: normalizeSerial(cert.serialNumber) } : { cert: 'none' };
    if (hinted.has(key)) {
      hinted.delete(key);
      const after = retryAfter();
      refuse(sock, 429, GatewayErrors.RATE_LIMITED, `too many handshakes from ${sock.remoteAddress}; retry after ${after} s`, who, { 'retry-after': after });
      return;
    }
    if (cert && !sock.authorized) {
      refuse(sock, 403, GatewayErrors.CERT_INVALID, `the client certificate is not valid: ${String(sock.authorizationError)}`, { ...who, reason: String(sock.authorizationError) });
      return;
    }
    let auth: TunnelOwner | undefined;
    if (cert) {
      const trust = trustOf(cert);
      const p = principalOf(cert.subjectAltName);
      if (!trust || !p || p.coreId !== trust.coreId) {
        refuse(sock, 403, GatewayErrors.UNKNOWN_CORE, 'the client certificate names no core this gateway serves', who);
        return;
      }
      const serial = who.serial as string;
      Object.assign(who, { principal: p.id, kind: p.kind, core: p.coreId });
      if (trust.revoked.has(serial)) {
        refuse(sock, 403, GatewayErrors.CERT_REVOKED, 'the client certificate is revoked', who);
        return;
      }
      if (trust.held.has(serial)) {
        refuse(sock, 403, GatewayErrors.CERT_HELD, 'the client certificate waits in the quarantine list for an admin', who);
        return;
      }
      auth = { trust, principal: p.id, kind: p.kind, serial, notAfter: Date.parse(cert.validTo) };
    }
    // SNI routing: a client that names a route's host as its TLS server name is tunnelled
    // there at once, with no CONNECT (its first bytes are the target's).
    const byName = auth ? sniTarget(auth.trust, sock.servername) : undefined;
    if (auth && byName) {
      openTunnel(sock, byName, auth, { ...who, via: 'sni' }, false, undefined);
      return;
    }
    readHead(sock, (head, raw) => {
      if (auth) routeHead(sock, head, raw, auth, who);
      else if (head.method === 'POST' && head.target === '/api/v1/enroll' && config.allowEnrollment) void enroll(sock, head, who);
      else refuse(sock, 403, GatewayErrors.CERT_REQUIRED, 'a client certificate from a core this gateway serves is required', { ...who, method: head.method, target: head.target });
    }, who);
  }

  /** Reads the one request head; the head deadline is kept in `heads` and enforced by the sweep. */
  function readHead(sock: TLSSocket, then: (head: RequestHead, raw: Buffer) => void, who: Record<string, unknown>): void {
    let buf: Buffer = Buffer.alloc(0);
    heads.set(sock, { deadline: Date.now() + lim.headTimeout, who });
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const r = decodeRequestHead(buf, lim.maxHeadBytes);
      if (r.kind === 'incomplete') return;
      sock.off('data', onData);
      sock.pause();
      heads.delete(sock);
      if (r.kind === 'too-large') refuse(sock, 431, GatewayErrors.HEAD_TOO_LARGE, `the request head is larger than ${lim.maxHeadBytes} bytes`, who);
      else if (r.kind === 'bad') refuse(sock, 400, GatewayErrors.BAD_REQUEST, `malformed request (${r.reason})`, who);
      else then(r.head, buf);
    };
    sock.on('data', onData);
  }

  /** The one route whose host is `name` (a DNS name, not one of the gateway's own), if exactly one. */
  function sniTarget(trust: CoreTrust, name: string | false | undefined | null): string | undefined {
    if (!name || ownNames.has(name.toLowerCase())) return undefined;
    return uniqueRoute(trust, name.toLowerCase());
  }

  function uniqueRoute(trust: CoreTrust, host: string): string | undefined {
    let hit: string | undefined;
    for (const r of trust.routes) {
      if (splitAuthority(r).host !== host) continue;
      if (hit) return undefined;
      hit = r;
    }
    return hit;
  }

  /**
   * A certificate holder's first head: `CONNECT host:port`, or a plain HTTP request
   * routed by its `Host` (`host:port`, or a host with exactly one route), replayed to
   * the target as the tunnel's first bytes.
   */
  function routeHead(sock: TLSSocket, head: RequestHead, raw: Buffer, auth: TunnelOwner, who: Record<string, unknown>): void {
    if (head.method === 'CONNECT') {
      const target = parseAuthority(head.target);
      if (!target) {
        refuse(sock, 400, GatewayErrors.BAD_REQUEST, 'CONNECT needs host:port', { ...who, target: head.target });
        return;
      }
      // Only the bytes after the head are kept (copied: the read buffer can go).
      openTunnel(sock, target, auth, who, true, head.rest.length > 0 ? Buffer.from(head.rest) : undefined);
      return;
    }
    const host = (head.headers.get('host') ?? '').toLowerCase();
    const target = parseAuthority(host) ?? (/^[a-z0-9.-]{1,253}$/.test(host) ? uniqueRoute(auth.trust, host) : undefined);
    if (!target) {
      refuse(sock, 405, GatewayErrors.METHOD_NOT_ALLOWED, 'send CONNECT host:port, or a request whose Host names a route', { ...who, method: head.method, host });
      return;
    }
    openTunnel(sock, target, auth, { ...who, via: 'host' }, false, raw);
  }

  const clientKeyOf = (o: TunnelOwner): string => `${o.trust.coreId}/${o.principal}`;
  function release(o: TunnelOwner): void {
    const k = clientKeyOf(o);
    const n = (perClient.get(k) ?? 1) - 1;
    if (n <= 0) perClient.delete(k);
    else perClient.set(k, n);
  }

  function openTunnel(sock: TLSSocket, target: string, auth: TunnelOwner, who: Record<string, unknown>, established: boolean, initial: Buffer | undefined): void {
    if (!auth.trust.routes.has(target)) {
      refuse(sock, 403, GatewayErrors.TARGET_NOT_ALLOWED, `${target} is not on the routing table of core ${auth.trust.coreId}`, { ...who, target });
      return;
    }
    const clientKey = clientKeyOf(auth);
    const open = perClient.get(clientKey) ?? 0;
    if (open >= lim.maxPerClient) {
      refuse(sock, 429, GatewayErrors.TOO_MANY_CONNECTIONS, `at most ${lim.maxPerClient} tunnels per client`, { ...who, target }, { 'retry-after': retryAfter() });
      return;
    }
    perClient.set(clientKey, open + 1);
    const { port } = splitAuthority(target);
    const host = auth.trust.dial?.get(target)?.[0] ?? splitAuthority(target).host;
    // Reads from the target go straight to the client (no read buffer), which stops them
    // while its writes are over their high-water mark; writes to the target buffer up to
    // relayBuffer before backpressure pauses the client. (net.Socket passes highWaterMark
    // to its streams; @types/node does not list it.)
    const connectOpts: NetConnectOpts = Object.assign({ host, port, noDelay: true, onread: upstreamRead }, { highWaterMark: lim.relayBuffer });
    const upstream = netConnect(connectOpts);
    // The closures below live only until the target answers (or not).
    let settled = false;
    const connectTimer = setTimeout(() => upstream.destroy(new Error(`no connection within ${lim.connectTimeout} ms`)), lim.connectTimeout);
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      sock.off('close', clientGone);
      release(auth);
      upstream.destroy();
      refuse(sock, 502, GatewayErrors.UPSTREAM_UNREACHABLE, `cannot reach ${target}`, { ...who, target, err: err.message });
    };
    const clientGone = (): void => fail(new Error('client went away'));
    upstream.once('error', fail);
    sock.once('close', clientGone);
    upstream.once('connect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      upstream.off('error', fail);
      sock.off('close', clientGone);
      if (sock.destroyed || byCoreId.get(auth.trust.coreId)?.revoked.has(auth.serial)) {
        release(auth);
        upstream.destroy();
        sock.destroy();
        return;
      }
      if (established) sock.write(ESTABLISHED);
      if (initial) upstream.write(initial);
      const t = new Tunnel(nextTunnel++, auth, target, sock, upstream, onTunnelEnd, Date.now());
      tunnels.add(t);
      hot.tunnels++;
      hot.tunnelsTotal++;
      if (log.isLevelEnabled('debug')) log.debug({ ...who, target, tunnel: t.id }, 'tunnel open');
    });
  }

  function onTunnelEnd(t: Tunnel, reason: CloseReason): void {
    tunnels.delete(t);
    hot.tunnels--;
    release(t.owner);
    hot.closes.set(reason, (hot.closes.get(reason) ?? 0) + 1);
    hot.bytesIn += t.client.bytesRead;
    hot.bytesOut += t.client.bytesWritten;
    const lvl = reason === 'revoked' || reason === 'held' || reason === 'expired' ? 'info' : 'debug';
    if (log.isLevelEnabled(lvl)) {
      const o = t.owner;
      log[lvl]({ principal: o.principal, kind: o.kind, core: o.trust.coreId, serial: o.serial, target: t.target, tunnel: t.id, reason, seconds: Math.round((Date.now() - t.since) / 1000) }, 'tunnel closed');
    }
  }

  /** Head deadlines (every `tick`), idle and half-open tunnels (every `idleTick`). */
  function sweepHeads(): void {
    const now = Date.now();
    for (const [sock, h] of heads) {
      if (h.deadline <= now) refuse(sock, 408, GatewayErrors.HEAD_TIMEOUT, `no complete request within ${lim.headTimeout} ms`, h.who);
    }
  }

  function sweepIdle(): void {
    const now = Date.now();
    for (const t of [...tunnels]) t.check(now, lim.idleTimeout, HALF_OPEN_MS);
  }

  async function enroll(sock: TLSSocket, head: RequestHead, who: Record<string, unknown>): Promise<void> {
    const host = parseAuthority(head.headers.get('host') ?? '');
    const candidates = cores.filter((c) => c.trust.coreUrl !== undefined);
    const entry = candidates.find((c) => host !== undefined && c.trust.coreTarget === host) ?? candidates[0];
    if (!entry) {
      refuse(sock, 503, GatewayErrors.ENROLL_UNAVAILABLE, 'no linked core to enroll with', who);
      return;
    }
    metrics.enrollments.inc();
    // The core's own URL first, then the URLs the gateway reaches the estate's cores by.
    const coreUrls = [...new Set([entry.trust.coreUrl!, ...(entry.link?.config.url ?? [])])];
    forwardEnrollment(sock, head, { coreUrls, caPem: entry.trust.caPem, maxBody: lim.maxEnrollBody, timeoutMs: lim.headTimeout }, (status, code, message) => refuse(sock, status, code, message, who));
  }

  // ------------------------------------------------------------------ revocation, sweeps

  /** Closes tunnels whose certificate is revoked, held or expired. */
  function sweep(reasonHint?: 'revoked'): number {
    const now = Date.now();
    let closed = 0;
    for (const t of [...tunnels]) {
      // Trust objects are replaced on every sync: look up the current one. A core that is
      // gone from the config takes its tunnels with it.
      const o = t.owner;
      const trust = byCoreId.get(o.trust.coreId);
      const reason: CloseReason | undefined = !trust || trust.revoked.has(o.serial) ? 'revoked' : trust.held.has(o.serial) ? 'held' : o.notAfter < now ? 'expired' : undefined;
      if (reason) {
        t.end(reason);
        closed++;
      }
    }
    if (closed > 0) log.info({ closed, trigger: reasonHint ?? 'sweep' }, 'closed tunnels of revoked, held or expired certificates');
    return closed;
  }

  function updateGauges(): void {
    const now = Date.now();
    for (const c of cores) {
      c.link?.checkStale(now);
      const t = c.trust;
      metrics.coreStale.set({ core: t.coreId }, t.stale ? 1 : 0);
      metrics.revoked.set({ core: t.coreId }, t.revoked.size);
      if (t.fetchedAt !== undefined) metrics.coreAge.set({ core: t.coreId }, Math.round((now - t.fetchedAt) / 1000));
    }
  }

  async function swapContext(): Promise<void> {
    if (!server) return;
    server.setSecureContext(await secureOptions());
    if (ticketKeys) server.setTicketKeys(ticketKeys);
  }

  function onLinkChange(change: LinkChange): void {
    indexTrust();
    if (change.kind === 'revoked') sweep('revoked');
    if (change.kind === 'ca' || change.kind === 'cert') {
      swapContext().catch((err: unknown) => log.error({ err }, 'swapping the TLS context failed'));
    }
    if (change.kind === 'stale') updateGauges();
  }

  async function refreshLinks(): Promise<void> {
    for (const c of cores) {
      if (!c.link) continue;
      await c.link.refresh().catch((err: unknown) => log.warn({ err: (err as Error).message, core: c.link!.config.url }, 'refresh from the core failed; keeping the last good copy'));
    }
    indexTrust();
    updateGauges();
  }

  function serialized(fn: () => Promise<void>): Promise<void> {
    syncing = syncing.then(fn, fn);
    return syncing;
  }

  function connectionsView(): TunnelView[] {
    return [...tunnels].map((t) => ({
      principal: t.owner.principal,
      kind: t.owner.kind,
      coreId: t.owner.trust.coreId,
      serial: t.owner.serial,
      remote: `${t.client.remoteAddress}:${t.client.remotePort}`,
      target: t.target,
      since: new Date(t.since).toISOString(),
      bytesIn: t.client.bytesRead,
      bytesOut: t.client.bytesWritten,
    }));
  }

  /** Sends the connection table to each linked core: with workers, one worker sends everyone's. */
  async function report(): Promise<void> {
    if (!cores.some((c) => c.link)) return;
    const own: PeerTable = { stats: statsOf(), connections: connectionsView() };
    const others = deps.peers ? await deps.peers.exchange(own) : [];
    if (others === undefined) return;
    const { stats, connections: all } = mergeTables([own, ...others]);
    for (const c of cores) {
      if (!c.link) continue;
      const mine = all.filter((t) => t.coreId === c.trust.coreId).map(({ coreId: _c, ...rest }) => rest);
      await c.link.report({ name: config.name, stats, connections: mine }).catch((err: unknown) => log.debug({ err: (err as Error).message }, 'connection report failed'));
    }
  }

  const statsOf = (): Record<string, number> => ({
    /** Processes whose tunnels these are (summed over workers in a report). */
    workers: 1,
    connections: hot.connections,
    tunnels: hot.tunnels,
    tunnelsTotal: hot.tunnelsTotal,
    refused: counters.refused,
    tlsErrors: counters.tlsErrors,
    dropped: hot.drop + hot.overCapacity,
    handshakes: hot.handshakes,
    resumed: hot.resumed,
    admissionEntries: admission.size,
  });

  function healthOf(): Record<string, unknown> {
    const stale = cores.some((c) => c.trust.stale);
    return {
      status: stale ? 'degraded' : 'ok',
      service: 'gateway',
      name: config.name,
      tunnels: hot.tunnels,
      connections: hot.connections,
      cores: cores.map((c) => ({
        coreId: c.trust.coreId,
        linked: c.link !== undefined,
        stale: c.trust.stale,
        routes: c.trust.routes.size,
        revoked: c.trust.revoked.size,
        held: c.trust.held.size,
        lastSync: c.trust.fetchedAt ? new Date(c.trust.fetchedAt).toISOString() : undefined,
        lastError: c.link?.lastError,
        // Several core URLs: the one calls go to now and how often calls moved to another.
        ...(c.link ? { coreUrl: c.link.coreUrl.current, failovers: c.link.coreUrl.failovers } : {}),
      })),
    };
  }

  // ------------------------------------------------------------------ lifecycle

  const service = lifecycle({
    async start() {
      await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
      const limit = await openFilesLimit();
      if (limit && limit.soft < fdsNeeded(lim.maxConnections)) {
        log.warn({ soft: limit.soft, hard: limit.hard, needed: fdsNeeded(lim.maxConnections), maxConnections: lim.maxConnections }, 'the open-files limit is below what limits.maxConnections needs (2 per tunnel): raise LimitNOFILE or lower maxConnections');
      }
      const publicUrl = config.publicUrl ?? `https://${urlHost(config.listen.host)}:${config.listen.port}`;
      cores.length = 0;
      for (const c of config.cores) {
        if (isLinked(c)) {
          const link = new CoreLink(c, { dataDir: config.dataDir, name: config.name, publicUrl, names: config.tls.names, timeoutMs: config.coreTimeout, staleAfterMs: config.staleAfter, log, load: () => ({ connections: hot.connections, tunnels: hot.tunnels }), ...(deps.mintEnrollToken ? { mintEnrollToken: deps.mintEnrollToken } : {}) }, (ch) => onLinkChange(ch));
          await link.start();
          cores.push({ link, trust: link.trust! });
        } else {
          cores.push({ static: c, trust: await loadStatic(c) });
        }
      }
      indexTrust();
      ticketKeys = await loadTicketKeys();
      server = createTlsServer({
        ...(await secureOptions()),
        requestCert: true,
        rejectUnauthorized: false,
        handshakeTimeout: lim.handshakeTimeout,
        sessionTimeout: config.tls.sessionTimeout,
        ticketKeys,
        // Client sockets: reads are buffered up to relayBuffer before backpressure.
        highWaterMark: lim.relayBuffer,
        // Nagle off on the client side too: a TLS record written in two segments would
        // otherwise wait for the client's delayed ACK (tens of ms per small request).
        noDelay: true,
      });
      server.on('connection', onRawConnection);
      server.on('secureConnection', onSecure);
      server.on('tlsClientError', (err: NodeJS.ErrnoException, sock: Socket) => {
        counters.tlsErrors++;
        const code = err.code ?? 'UNKNOWN';
        metrics.tlsErrors.inc({ code });
        log.debug({ code, ip: sock.remoteAddress, err: err.message }, 'TLS handshake failed');
        const key = `${sock.remoteAddress}:${sock.remotePort}`;
        sock.destroy();
        raws.get(key)?.destroy();
      });
      server.on('error', (err) => log.error({ err }, 'gateway listener error'));
      server.listen({ host: config.listen.host, port: config.listen.port, backlog: config.listen.backlog });
      await once(server, 'listening');
      if (config.metrics.enabled) {
        metricsServer = createHttpServer((req, res) => {
          if (req.url === '/metrics') {
            metrics.registry
              .metrics()
              .then((text) => {
                res.writeHead(200, { 'content-type': metrics.registry.contentType });
                res.end(text);
              })
              .catch(() => {
                res.writeHead(500);
                res.end();
              });
            return;
          }
          if (req.url === '/health' || req.url === '/api/v1/health') {
            updateGauges();
            const h = healthOf();
            res.writeHead(h.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' });
            res.end(JSON.stringify(h));
            return;
          }
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end('{"error":{"code":"COMMON_NOT_FOUND","message":"try /health or /metrics"}}');
        });
        metricsServer.requestTimeout = 10_000;
        metricsServer.listen({ host: config.metrics.host, port: config.metrics.port });
        await once(metricsServer, 'listening');
      }
      const every = (ms: number, fn: () => void): void => {
        const t = setInterval(fn, ms);
        t.unref();
        timers.push(t);
      };
      every(config.refreshInterval, () => void serialized(refreshLinks));
      every(config.reportInterval, () => void report());
      every(config.sweepInterval, () => {
        sweep();
        updateGauges();
      });
      every(tick(lim.headTimeout, 1_000), sweepHeads);
      every(tick(Math.min(lim.idleTimeout, HALF_OPEN_MS), 5_000), sweepIdle);
      updateGauges();
      const addr = server.address() as AddressInfo;
      log.info({ port: addr.port, cores: cores.map((c) => c.trust.coreId), metricsPort: metricsServer ? (metricsServer.address() as AddressInfo).port : 0 }, 'gateway started');
    },
    async stop() {
      for (const t of timers) clearInterval(t);
      timers = [];
      await syncing.catch(() => undefined);
      for (const c of cores) await c.link?.stop();
      const closing = server ? new Promise<void>((r) => server!.close(() => r())) : Promise.resolve();
      for (const t of [...tunnels]) t.end('stopped');
      for (const s of clients) s.destroy();
      for (const r of raws.values()) r.destroy();
      await closing;
      if (metricsServer) {
        const m = metricsServer;
        await new Promise<void>((r) => {
          m.close(() => r());
          m.closeAllConnections();
        });
      }
      server = undefined;
      metricsServer = undefined;
      log.info('gateway stopped');
    },
  });

  return {
    ...service,
    get port() {
      if (!server) throw new Error('gateway not started');
      return (server.address() as AddressInfo).port;
    },
    get metricsPort() {
      return metricsServer ? (metricsServer.address() as AddressInfo).port : 0;
    },
    get url() {
      if (!server) throw new Error('gateway not started');
      const a = server.address() as AddressInfo;
      return `https://${urlHost(a.address)}:${a.port}`;
    },
    async reload() {
      await serialized(async () => {
        for (const c of cores) if (c.static) c.trust = await loadStatic(c.static, c.trust);
        await refreshLinks();
        indexTrust();
        await swapContext();
        sweep('revoked');
        log.info('reloaded certificates, CAs, routes and revocations');
      });
    },
    refresh: () => serialized(refreshLinks),
    connections: connectionsView,
    stats: statsOf,
    health: healthOf,
  };
}

export { caFingerprint };
