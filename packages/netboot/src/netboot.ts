import { networkInterfaces } from 'node:os';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { lifecycle, openDatabase, silentLogger, type Database, type Logger } from '@outpost/common';
import { createSiteLink, type SiteLink } from '@outpost/common/site-link';
import { createTftpServer, type TftpServer } from '@outpost/tftp';
import { macFromArp } from './arp.js';
import { LoaderTable } from './arch.js';
import { parseNetbootConfig, type NetbootConfig, type NetbootConfigInput } from './config.js';
import { CoreClient, type BootBackend, type BootEventOut } from './core-client.js';
import { DecisionCache } from './decisions.js';
import { DhcpService } from './dhcp-service.js';
import { isOutpostError } from '@outpost/common';
import { NetbootError, NetbootErrors } from './errors.js';
import { createBootHttpServer, listen } from './http-server.js';
import { ImageFiles } from './image-files.js';
import { LeasePool } from './leases.js';
import { BoundedMap, ReplyLimiter, Slots } from './limits.js';
import { EventReporter } from './reporter.js';
import { createNetbootMetrics } from './metrics.js';
import { BootIds, logBootEvent } from './boot-ids.js';
import { BootTokens } from './boot-tokens.js';
import type { ResponderSettings } from './responder.js';

export interface NetbootDeps {
  logger?: Logger;
  /** The core calls; default: HTTP to `coreUrl` with the enrolled site-server credential. */
  backend?: BootBackend;
  /** Mints a one-use enrollment token (the appliance, next to an in-process core). */
  mintEnrollToken?: () => Promise<string>;
  now?: () => number;
}

/** Whether proxyDHCP/DHCP runs, and why not. */
export interface DhcpStatus {
  running: boolean;
  mode: 'proxy' | 'dhcp' | 'off';
  reason?: string;
}

export interface Netboot {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly config: NetbootConfig;
  /** Bound ports (after start). */
  addresses(): { dhcp?: number | undefined; pxe?: number | undefined; tftp?: number | undefined; http: number };
  /** HTTP base URL given to clients. */
  readonly url: string;
  readonly serverAddress: string;
  readonly dhcpStatus: DhcpStatus;
  stats(): Record<string, unknown>;
  /** Sends queued boot events to the core now (tests, shutdown). */
  flushEvents(): Promise<void>;
}

/** The first non-internal IPv4 address of this host. */
export function firstIpv4(): string | undefined {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

/**
 * The network boot service: proxyDHCP/DHCP + PXE boot server, TFTP (@outpost/tftp) and
 * HTTP boot, per-machine iPXE scripts from the core. See README.md.
 */
export function createNetboot(input: NetbootConfigInput | NetbootConfig, deps: NetbootDeps = {}): Netboot {
  const config = parseNetbootConfig(input);
  const log = (deps.logger ?? silentLogger()).child({ module: 'netboot' });
  const now = deps.now ?? (() => Date.now());
  const loaders = new LoaderTable(config.loaders.byArch);
  const limiter = new ReplyLimiter(config.replies, now());
  const slots = new Slots(config.sessions.max, config.sessions.queue, config.sessions.maxWait);
  const ipMac = new BoundedMap<string, string>(config.replies.trackedMacs);
  const tokens = new BootTokens({ max: config.replies.trackedMacs, ttlMs: config.decisions.tokenTtl, now });
  let db: Database | undefined;
  let link: SiteLink | undefined;
  let http: Server | undefined;
  let httpPort = 0;
  let tftp: TftpServer | undefined;
  let dhcp: DhcpService | undefined;
  let reporter: EventReporter | undefined;
  let decisions: DecisionCache | undefined;
  let images: ImageFiles | undefined;
  let sweeper: NodeJS.Timeout | undefined;
  let serverAddress = config.serverAddress ?? (config.address !== '0.0.0.0' ? config.address : '');
  let url = '';
  let dhcpStatus: DhcpStatus = { running: false, mode: 'off', reason: 'not started' };
  const held = new Map<string, number>();
  const tftpStats = { queued: 0, waitedMs: 0, refusedBusy: 0 };
  const metrics = createNetbootMetrics({ dbDir: join(config.dataDir, 'db'), dhcp: () => dhcp, tftp: () => tftp?.counters, sessions: () => ({ held: slots.held, waiting: slots.waiting, ...tftpStats }), decisions: () => decisions, events: () => reporter, tokens: () => tokens });

  const macOfIp = (ip: string): string | undefined => ipMac.get(ip) ?? macFromArp(ip);
  const bootIds = new BootIds(config.replies.trackedMacs);
  const event = (e: BootEventOut): void => {
    if (e.ip && e.mac) ipMac.set(e.ip, e.mac);
    const boot = bootIds.idFor(e.mac, e.at, e.type);
    logBootEvent(log, e, boot);
    reporter?.push({ ...e, boot });
  };
  const settings = (): ResponderSettings => ({
    serverAddress,
    httpBase: url,
    loaders,
    option43: config.proxyDhcp.option43,
    option43ByVendor: Object.entries(config.proxyDhcp.option43ByVendor).sort((a, b) => b[0].length - a[0].length),
    option43ByMac: new Map(Object.entries(config.proxyDhcp.option43ByMac).map(([k, v]) => [k.toLowerCase().replace(/-/g, ':'), v])),
  });
  let cachedSettings: ResponderSettings | undefined;

  const releaseSlot = (addr: string, port: number): void => {
    const key = `${addr}|${port}`;
    if (held.delete(key)) slots.release();
  };

  const service = lifecycle({
    async start() {
      if (!serverAddress) serverAddress = firstIpv4() ?? '';
      if (!serverAddress) {
        if (config.proxyDhcp.enabled || config.dhcp.enabled) {
          if (!config.proxyDhcp.optional) throw new NetbootError(NetbootErrors.NO_SERVER_ADDRESS, 'no IPv4 address to announce: set netboot.serverAddress');
        }
        // Nothing but loopback (a bare container): machines cannot reach us anyway; serve locally.
        serverAddress = '127.0.0.1';
        log.warn({ serverAddress }, 'no non-loopback IPv4 address: announcing 127.0.0.1 (set netboot.serverAddress)');
      }
      db = await openDatabase(join(config.dataDir, 'db'));
      let backend = deps.backend;
      if (!backend) {
        // Enrollment, identity and the heartbeat that keeps this site server online at the core.
        const client = new CoreClient(config.coreUrl, Math.max(config.decisions.timeout, 5_000));
        link = createSiteLink({
          coreUrl: config.coreUrl,
          dataDir: config.dataDir,
          name: config.name,
          log,
          client,
          token: { enrollToken: config.enrollToken, enrollTokenFile: config.enrollTokenFile, mint: deps.mintEnrollToken },
          services: () => ({ netboot: {} }),
          // A proxyDHCP that may not run (optional) is the config's choice, not a fault: reported as a figure.
          health: () => ({ status: 'ok', load: { tftpSessions: slots.held, tftpWaiting: slots.waiting, dhcpRunning: dhcpStatus.running ? 1 : 0 } }),
          address: () => serverAddress,
          codes: { NO_ENROLL_TOKEN: NetbootErrors.NO_ENROLL_TOKEN, ENROLL_REJECTED: NetbootErrors.ENROLL_REJECTED, CORE_UNREACHABLE: NetbootErrors.CORE_UNREACHABLE, CORE_ERROR: NetbootErrors.CORE_ERROR, IDENTITY_CORRUPT: NetbootErrors.IDENTITY_CORRUPT },
          identity: { what: 'netboot identity' },
          // Next to an in-process core whose port moved: enroll again with a minted token.
          reenrollWhenCoreMoves: deps.mintEnrollToken !== undefined,
        });
        await link.start();
        backend = client;
      }
      reporter = new EventReporter(backend, config.reportInterval, log);
      reporter.start();
      decisions = new DecisionCache(backend, { ttlMs: config.decisions.ttl, timeoutMs: config.decisions.timeout, max: config.replies.trackedMacs, untokenedPerSecond: config.decisions.untokenedPerSecond, now }, log);
      images = new ImageFiles(join(config.dataDir, 'images'), backend, { packageServerUrl: config.packageServerUrl, timeoutMs: config.decisions.timeout, now }, log.child({ part: 'images' }));
      const imgs = images;
      const dec = decisions;

      http = createBootHttpServer({
        decisions: dec,
        tokens,
        images: imgs,
        loaderDir: config.loaders.dir,
        loaderFiles: loaders.files(),
        base: () => url,
        event: (mac, type, detail, ip) => {
          const m = mac ?? macOfIp(ip);
          if (m) event({ mac: m, at: now(), type, detail, ip });
        },
        stats: () => stats(),
        log: log.child({ part: 'http' }),
        metrics,
      });
      const a = await listen(http, config.http.host, config.http.port);
      httpPort = a.port;
      url = (config.http.publicUrl ?? `http://${serverAddress}:${httpPort}`).replace(/\/+$/, '');
      cachedSettings = settings();

      if (config.tftp.enabled) {
        tftp = createTftpServer(
          { address: config.tftp.address, port: config.tftp.port, maxBlksize: config.tftp.maxBlksize, maxWindowsize: config.tftp.maxWindowsize, workers: config.tftp.workers, busyPollUs: config.tftp.busyPollUs, maxTransfers: Math.min(10_000, config.sessions.max + config.sessions.queue) },
          {
            logger: log,
            resolver: async (path, ctx) => {
              const started = now();
              if (slots.held >= slots.max) tftpStats.queued++;
              if (!(await slots.acquire())) {
                tftpStats.refusedBusy++;
                throw new Error('no boot session slot free (queue full, or waited sessions.maxWait)');
              }
              tftpStats.waitedMs += now() - started;
              held.set(`${ctx.remoteAddress}|${ctx.remotePort}`, now());
              const segs = path.split('/');
              if (segs[0] === 'images' && segs.length >= 3) {
                try {
                  return { file: (await imgs.file(segs[1]!, segs.slice(2).join('/'))).file };
                } catch (err) {
                  if (isOutpostError(err) && err.status === 404) return null;
                  throw err;
                }
              }
              if (loaders.files().has(path)) return { file: join(config.loaders.dir, path) };
              return null;
            },
          },
        );
        const t = tftp;
        const tEvent = (info: { remoteAddress: string; filename: string }, type: string, detail: Record<string, string | number | boolean>): void => {
          const m = macOfIp(info.remoteAddress);
          if (m) event({ mac: m, at: now(), type, detail: { file: info.filename, ...detail }, ip: info.remoteAddress });
        };
        t.on('options', (info, o) => tEvent(info, 'tftp-start', { blksize: o.blksize, windowsize: o.windowsize, ...(o.tsize !== undefined ? { tsize: o.tsize } : {}) }));
        t.on('done', (info, r) => {
          releaseSlot(info.remoteAddress, info.remotePort);
          tEvent(info, 'tftp-done', { bytes: r.bytes, ms: Math.round(r.durationMs), retransmits: r.retransmits });
        });
        t.on('failed', (info, r) => {
          releaseSlot(info.remoteAddress, info.remotePort);
          tEvent(info, 'tftp-failed', { reason: r.reason, bytes: r.bytes, retransmits: r.retransmits });
        });
        t.on('aborted', (info) => releaseSlot(info.remoteAddress, info.remotePort));
        t.on('refused', (r) => releaseSlot(r.remoteAddress, r.remotePort));
        await t.start();
      }
      sweeper = setInterval(() => {
        const cutoff = now() - config.sessions.idleTimeout;
        for (const [k, at] of held) if (at < cutoff) releaseSlot(k.split('|')[0]!, Number(k.split('|')[1]));
      }, 10_000);
      sweeper.unref();

      const mode = config.dhcp.enabled ? 'dhcp' : config.proxyDhcp.enabled ? 'proxy' : 'off';
      if (mode !== 'off') {
        let pool: LeasePool | undefined;
        if (mode === 'dhcp') {
          const d = config.dhcp;
          pool = new LeasePool(db, { rangeStart: d.rangeStart!, rangeEnd: d.rangeEnd!, leaseTimeMs: d.leaseTime, offerHoldMs: d.offerHold, declineHoldMs: d.declineHold, reservations: d.reservations }, now);
          await pool.load();
        }
        const p = config.proxyDhcp;
        dhcp = new DhcpService(
          {
            address: config.address,
            port: p.port,
            pxePort: p.pxePort,
            clientPort: p.clientPort,
            broadcastAddress: p.broadcastAddress,
            relayPort: p.relayPort,
            watchOtherServers: p.watchOtherServers && mode === 'proxy',
            full: mode === 'dhcp' ? { subnetMask: config.dhcp.subnetMask, router: config.dhcp.router, dns: config.dhcp.dns, domainName: config.dhcp.domainName, leaseTimeMs: config.dhcp.leaseTime } : undefined,
          },
          { settings: () => cachedSettings ?? settings(), limiter, pool, event, bootToken: (mac) => tokens.forMac(mac), onPxeClient: (r) => dec.prefetch(r.mac, r.uuid, r.arch), log: log.child({ part: 'dhcp' }), now },
        );
        try {
          await dhcp.start();
          dhcpStatus = { running: true, mode };
        } catch (err) {
          await dhcp.stop().catch(() => undefined);
          dhcp = undefined;
          if (!p.optional) throw err;
          const reason = `${(err as Error).message}; TFTP and HTTP boot still run: PXE clients need another proxyDHCP/DHCP server pointing at ${serverAddress}, or run netboot with CAP_NET_BIND_SERVICE`;
          dhcpStatus = { running: false, mode, reason };
          log.warn({ reason }, `${mode === 'proxy' ? 'proxyDHCP' : 'DHCP'} is NOT running`);
        }
      } else dhcpStatus = { running: false, mode: 'off', reason: 'disabled in the config' };
      // Loopback listeners (the safe default) cannot serve machines told to come to another address.
      const loopback = (h: string): boolean => h.startsWith('127.') || h === '::1' || h === 'localhost';
      const unreachable = [...(config.http.host && loopback(config.http.host) ? ['http.host'] : []), ...(tftp && loopback(config.tftp.address) ? ['tftp.address'] : [])];
      if (unreachable.length > 0 && !loopback(serverAddress)) log.warn({ serverAddress, listeners: unreachable }, `netboot listens on loopback (${unreachable.join(', ')}) but tells machines to come to ${serverAddress}: set them to 0.0.0.0 or the client-network address to serve other machines`);
      log.info({ serverAddress, http: url, tftp: tftp?.address().port, dhcp: dhcpStatus, ports: dhcp?.ports }, 'netboot started');
    },
    async stop() {
      clearInterval(sweeper);
      slots.drain();
      await dhcp?.stop();
      await tftp?.stop();
      if (http) {
        const h = http;
        h.closeAllConnections();
        await new Promise<void>((resolve) => h.close(() => resolve()));
      }
      await reporter?.stop().catch(() => undefined);
      await link?.stop();
      await db?.close();
      link = undefined;
      dhcp = undefined;
      tftp = undefined;
      http = undefined;
      db = undefined;
    },
  });

  const stats = (): Record<string, unknown> => ({
    dhcp: dhcp?.counters,
    dhcpStatus,
    sessions: { held: slots.held, waiting: slots.waiting, peakWaiting: slots.peakWaiting, max: slots.max, ...tftpStats },
    tftp: tftp?.counters,
    decisions: decisions?.counters,
    bootTokens: { ...tokens.counters, live: tokens.size },
    events: reporter?.counters,
    images: images?.counters,
    link: link?.stats(),
    trackedMacs: limiter.tracked,
    memory: { rss: process.memoryUsage().rss },
  });

  return {
    ...service,
    config,
    addresses() {
      if (!http) throw new NetbootError(NetbootErrors.NOT_STARTED, 'netboot is not started');
      return { dhcp: dhcp?.ports.dhcp, pxe: dhcp?.ports.pxe, tftp: tftp?.address().port, http: httpPort };
    },
    get url() {
      return url;
    },
    get serverAddress() {
      return serverAddress;
    },
    get dhcpStatus() {
      return dhcpStatus;
    },
    stats,
    flushEvents: () => reporter?.flush() ?? Promise.resolve(),
  };
}
