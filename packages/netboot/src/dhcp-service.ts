import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { Logger } from '@outpost/common';
import { archName } from './arch.js';
import type { BootEventOut } from './core-client.js';
import { MessageType, messageTypeName, Op, Opt } from './dhcp/constants.js';
import type { DhcpDecodeError } from './dhcp/errors.js';
import { macOf } from './dhcp/header.js';
import { decodeDhcp, type DhcpMessage } from './dhcp/message.js';
import { ips, readIp, readText, u32, type OptionEntry } from './dhcp/options.js';
import { pxeVendor } from './dhcp/pxe-options.js';
import { NetbootError, NetbootErrors } from './errors.js';
import type { LeasePool } from './leases.js';
import type { ReplyLimiter } from './limits.js';
import { buildReply, planBoot, replyDestination, withBootToken, type PxeRequest, type ResponderSettings } from './responder.js';

export interface DhcpServiceConfig {
  address: string;
  port: number;
  pxePort: number;
  clientPort: number;
  broadcastAddress: string;
  relayPort: number;
  watchOtherServers: boolean;
  /** Full DHCP mode: lease options. */
  full?: { subnetMask: string; router?: string | undefined; dns: readonly string[]; domainName?: string | undefined; leaseTimeMs: number } | undefined;
}

export interface DhcpServiceDeps {
  settings: () => ResponderSettings;
  limiter: ReplyLimiter;
  pool?: LeasePool | undefined;
  event: (e: BootEventOut) => void;
  /** The one-use boot token for an iPXE client's script URL (boot-tokens.ts); without it, URLs carry none. */
  bootToken?: (mac: string) => string;
  /** A PXE client showed up (prefetch its decision). */
  onPxeClient?: (req: PxeRequest) => void;
  log: Logger;
  now: () => number;
}

export type IgnoreReason = 'not-pxe' | 'no-arch' | 'unknown-arch' | 'not-ethernet' | 'reply' | 'other-server' | 'type' | 'rate-mac' | 'rate-global' | 'pool-exhausted' | 'no-ip';

/**
 * proxyDHCP (UDP 67), the PXE boot server (UDP 4011) and, when configured, full DHCP
 * on the same sockets. Replies are built from the request alone (responder.ts), so an
 * offer never waits for the core. A socket on the client port listens for other
 * servers' PXE offers.
 */
export class DhcpService {
  #main: Socket | undefined;
  #pxe: Socket | undefined;
  #watch: Socket | undefined;
  readonly #otherServers = new Map<string, number>();
  readonly counters = {
    received: 0,
    replies: 0,
    offers: 0,
    acks: 0,
    naks: 0,
    pxeAcks: 0,
    releases: 0,
    declines: 0,
    malformed: {} as Partial<Record<DhcpDecodeError, number>>,
    ignored: {} as Partial<Record<IgnoreReason, number>>,
    otherProxyOffers: 0,
    sendErrors: 0,
  };

  constructor(
    private readonly cfg: DhcpServiceConfig,
    private readonly d: DhcpServiceDeps,
  ) {}

  get ports(): { dhcp: number; pxe: number; watch: number | undefined } {
    const p = (s: Socket | undefined): number | undefined => (s ? s.address().port : undefined);
    return { dhcp: p(this.#main) ?? 0, pxe: p(this.#pxe) ?? 0, watch: p(this.#watch) };
  }

  async start(): Promise<void> {
    this.#main = await this.#bind(this.cfg.port, 'dhcp', (m, r) => this.#onDhcp(m, r));
    this.#pxe = await this.#bind(this.cfg.pxePort, 'pxe', (m, r) => this.#onPxe(m, r));
    if (this.cfg.watchOtherServers) {
      try {
        this.#watch = await this.#bind(this.cfg.clientPort, 'watch', (m) => this.#onWatch(m));
      } catch (err) {
        this.d.log.warn({ err, port: this.cfg.clientPort }, 'cannot watch for other proxyDHCP servers (client port not bindable)');
      }
    }
  }

  async stop(): Promise<void> {
    for (const s of [this.#main, this.#pxe, this.#watch]) {
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    this.#main = this.#pxe = this.#watch = undefined;
  }

  #bind(port: number, what: string, onMessage: (msg: Buffer, rinfo: RemoteInfo) => void): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = createSocket({ type: 'udp4', reuseAddr: what === 'watch' });
      s.once('error', (err) => {
        s.close();
        reject(new NetbootError(NetbootErrors.BIND_FAILED, `cannot bind UDP ${this.cfg.address}:${port} (${what}): ${err.message}${(err as NodeJS.ErrnoException).code === 'EACCES' ? ' (ports below 1024 need root or CAP_NET_BIND_SERVICE)' : ''}`, { cause: err, details: { port, what, errno: (err as NodeJS.ErrnoException).code } }));
      });
      s.bind({ port, address: this.cfg.address, exclusive: true }, () => {
        s.removeAllListeners('error');
        s.on('error', (err) => this.d.log.warn({ err, what }, 'DHCP socket error'));
        try {
          // Room for a burst of DISCOVERs (many machines powered on at once); the kernel caps it.
          s.setRecvBufferSize(4 * 1024 * 1024);
        } catch {
          // not fatal
        }
        try {
          s.setBroadcast(true);
        } catch {
          // loopback-only test sockets may refuse; replies there are unicast
        }
        s.on('message', (msg, rinfo) => {
          try {
            onMessage(msg, rinfo);
          } catch (err) {
            this.d.log.error({ err }, 'DHCP handler failed');
          }
        });
        resolve(s);
      });
    });
  }

  #ignore(reason: IgnoreReason): void {
    this.counters.ignored[reason] = (this.counters.ignored[reason] ?? 0) + 1;
  }

  #decode(msg: Buffer): DhcpMessage | undefined {
    this.counters.received++;
    const r = decodeDhcp(msg);
    if (!r.ok) {
      this.counters.malformed[r.error] = (this.counters.malformed[r.error] ?? 0) + 1;
      return undefined;
    }
    if (r.message.op !== Op.REQUEST) {
      this.#ignore('reply');
      return undefined;
    }
    return r.message;
  }

  #send(sock: Socket | undefined, packet: Buffer, to: { address: string; port: number }): void {
    if (!sock) return;
    this.counters.replies++;
    sock.send(packet, to.port, to.address, (err) => {
      if (err) {
        this.counters.sendErrors++;
        this.d.log.debug({ err, to }, 'DHCP send failed');
      }
    });
  }

  #limited(mac: string): boolean {
    const verdict = this.d.limiter.allow(mac, this.d.now());
    if (verdict === 'ok') return false;
    this.#ignore(verdict === 'mac-rate' ? 'rate-mac' : 'rate-global');
    return true;
  }

  /** The request as answered: an iPXE client's script URL with its boot token. */
  #answered(req: PxeRequest, s: ResponderSettings): PxeRequest {
    return this.d.bootToken ? withBootToken(req, s.httpBase, this.d.bootToken) : req;
  }

  #event(mac: string, type: string, detail: Record<string, string | number | boolean>, extra: Partial<BootEventOut> = {}): void {
    this.d.event({ mac, at: this.d.now(), type, detail, ...extra });
  }

  #leaseOptions(): OptionEntry[] {
    const f = this.cfg.full!;
    const secs = Math.floor(f.leaseTimeMs / 1000);
    const o: OptionEntry[] = [
      [Opt.LEASE_TIME, u32(secs)],
      [Opt.RENEWAL_TIME, u32(Math.floor(secs / 2))],
      [Opt.REBINDING_TIME, u32(Math.floor((secs * 7) / 8))],
      [Opt.SUBNET_MASK, ips(f.subnetMask)],
    ];
    if (f.router) o.push([Opt.ROUTER, ips(f.router)]);
    if (f.dns.length > 0) o.push([Opt.DNS, ips(...f.dns)]);
    if (f.domainName) o.push([Opt.DOMAIN_NAME, Buffer.from(f.domainName, 'latin1')]);
    return o;
  }

  #onDhcp(buf: Buffer, _rinfo: RemoteInfo): void {
    const msg = this.#decode(buf);
    if (!msg) return;
    const s = this.d.settings();
    const mac = macOf(msg);
    const plan = planBoot(msg, s);
    const boot = plan.ok ? plan.request : undefined;
    const dest = replyDestination(msg, this.cfg);
    const serverId = readIp(msg.options.get(Opt.SERVER_ID));
    const pool = this.d.pool;

    if (!pool) {
      // proxyDHCP: PXE clients only, never an address.
      if (!plan.ok) {
        this.#ignore(plan.reason);
        if (plan.reason === 'unknown-arch') this.d.log.info({ mac, vendorClass: readText(msg.options.get(Opt.VENDOR_CLASS)) }, 'PXE client with an architecture we have no loader for: not answered');
        return;
      }
      if (msg.type === MessageType.DISCOVER) {
        this.#event(mac, 'discover', { arch: plan.request.arch, archName: archName(plan.request.arch), vendor: plan.request.vendorClass, ipxe: plan.request.ipxe }, { arch: plan.request.arch, ...(plan.request.uuid ? { uuid: plan.request.uuid } : {}) });
        this.d.onPxeClient?.(plan.request);
        if (this.#limited(mac)) return;
        const answered = this.#answered(plan.request, s);
        this.#send(this.#main, buildReply(msg, MessageType.OFFER, s, { boot: answered }).packet, dest);
        this.counters.offers++;
        this.#event(mac, 'offer', { file: plan.request.bootFile, mode: 'proxy' });
        return;
      }
      if (msg.type === MessageType.REQUEST && serverId === s.serverAddress) {
        if (this.#limited(mac)) return;
        this.#send(this.#main, buildReply(msg, MessageType.ACK, s, { boot: this.#answered(plan.request, s) }).packet, dest);
        this.counters.acks++;
        this.#event(mac, 'ack', { file: plan.request.bootFile, mode: 'proxy' });
        return;
      }
      this.#ignore(msg.type === MessageType.REQUEST ? 'other-server' : 'type');
      return;
    }

    // Full DHCP.
    if (this.#limited(mac)) return;
    const lease = this.#leaseOptions();
    switch (msg.type) {
      case MessageType.DISCOVER: {
        const ip = pool.offer(mac, readIp(msg.options.get(Opt.REQUESTED_IP)));
        if (!ip) {
          this.#ignore('pool-exhausted');
          this.d.log.warn({ mac }, 'DHCP pool exhausted: DISCOVER not answered');
          return;
        }
        if (boot) {
          this.#event(mac, 'discover', { arch: boot.arch, archName: archName(boot.arch), vendor: boot.vendorClass, ipxe: boot.ipxe }, { arch: boot.arch, ...(boot.uuid ? { uuid: boot.uuid } : {}) });
          this.d.onPxeClient?.(boot);
        }
        this.#send(this.#main, buildReply(msg, MessageType.OFFER, s, { boot: boot && this.#answered(boot, s), yiaddr: ip, options: lease }).packet, dest);
        this.counters.offers++;
        if (boot) this.#event(mac, 'offer', { ip, file: boot.bootFile, mode: 'dhcp' }, { ip });
        return;
      }
      case MessageType.REQUEST: {
        if (serverId !== undefined && serverId !== s.serverAddress) {
          this.#ignore('other-server');
          return;
        }
        const ip = msg.ciaddr !== '0.0.0.0' ? msg.ciaddr : readIp(msg.options.get(Opt.REQUESTED_IP));
        if (!ip) {
          this.#ignore('no-ip');
          return;
        }
        void pool.commit(mac, ip, readText(msg.options.get(Opt.HOSTNAME))).then(
          (l) => {
            if (l) {
              this.#send(this.#main, buildReply(msg, MessageType.ACK, s, { boot: boot && this.#answered(boot, s), yiaddr: ip, options: lease }).packet, dest);
              this.counters.acks++;
              if (boot) this.#event(mac, 'ack', { ip, file: boot.bootFile, mode: 'dhcp' }, { ip });
            } else {
              this.#send(this.#main, buildReply(msg, MessageType.NAK, s, {}).packet, msg.giaddr !== '0.0.0.0' ? dest : { address: this.cfg.broadcastAddress, port: this.cfg.clientPort });
              this.counters.naks++;
            }
          },
          (err: unknown) => this.d.log.error({ err, mac, ip }, 'writing a lease failed: no ACK'),
        );
        return;
      }
      case MessageType.RELEASE:
        this.counters.releases++;
        void pool.release(mac, msg.ciaddr).catch((err: unknown) => this.d.log.error({ err }, 'release failed'));
        return;
      case MessageType.DECLINE: {
        this.counters.declines++;
        const ip = readIp(msg.options.get(Opt.REQUESTED_IP));
        if (ip) void pool.decline(mac, ip).catch((err: unknown) => this.d.log.error({ err }, 'decline failed'));
        this.d.log.warn({ mac, ip }, 'client declined an address (in use on the network?)');
        return;
      }
      case MessageType.INFORM:
        this.#send(this.#main, buildReply(msg, MessageType.ACK, s, { boot: boot && this.#answered(boot, s), options: lease.slice(3) }).packet, { address: msg.ciaddr, port: this.cfg.clientPort });
        this.counters.acks++;
        return;
      default:
        this.#ignore('type');
    }
  }

  #onPxe(buf: Buffer, rinfo: RemoteInfo): void {
    const msg = this.#decode(buf);
    if (!msg) return;
    const s = this.d.settings();
    const plan = planBoot(msg, s);
    if (!plan.ok) {
      this.#ignore(plan.reason);
      return;
    }
    if (msg.type !== MessageType.REQUEST && msg.type !== MessageType.INFORM) {
      this.#ignore('type');
      return;
    }
    const mac = plan.request.mac;
    this.#event(mac, 'pxe-request', { arch: plan.request.arch, vendor: plan.request.vendorClass }, { ip: rinfo.address });
    if (this.#limited(mac)) return;
    const to = { address: msg.ciaddr !== '0.0.0.0' ? msg.ciaddr : rinfo.address, port: rinfo.port };
    this.#send(this.#pxe, buildReply(msg, MessageType.ACK, s, { boot: this.#answered(plan.request, s), pxePort: true }).packet, to);
    this.counters.pxeAcks++;
    this.#event(mac, 'pxe-ack', { file: plan.request.bootFile }, { ip: to.address });
  }

  /** Another server's reply seen on the client port: warn when it is a PXE offer from someone else. */
  #onWatch(buf: Buffer): void {
    const r = decodeDhcp(buf);
    if (!r.ok || r.message.op !== Op.REPLY) return;
    const m = r.message;
    const sid = readIp(m.options.get(Opt.SERVER_ID));
    const ours = this.d.settings().serverAddress;
    if (!sid || sid === ours || !pxeVendor(m.options)) return;
    this.counters.otherProxyOffers++;
    const now = this.d.now();
    const last = this.#otherServers.get(sid);
    if (last === undefined || now - last > 60_000) {
      if (this.#otherServers.size > 1000) this.#otherServers.clear();
      this.#otherServers.set(sid, now);
      this.d.log.warn({ server: sid, mac: macOf(m), type: messageTypeName(m.type) }, 'another proxyDHCP server answers the same PXE clients');
      this.#event(macOf(m), 'other-proxy', { server: sid, type: messageTypeName(m.type) });
    }
  }
}
