import { randomBytes, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type AgentOptions, type ClientRequestArgs, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Duplex } from 'node:stream';
import type { Logger } from '@outpost/common';
import { openTunnel, tlsOverTunnel, type TunnelCredentials } from './tunnel.js';

export type Route = { kind: 'direct' } | { kind: 'gateway'; url: string } | { kind: 'none' };

export interface TransportOptions {
  /** The core's URL as configured, or several cores' (tried directly, in order). */
  coreUrl: string | readonly string[];
  /** The core's URL as the gateways route it (enrollment's `coreUrl`); @default the first core URL */
  tunnelUrl?: () => string | undefined;
  /** Gateways in order of preference, `https://host:port`. */
  gateways: string[];
  /** Trust and client certificate, read at each dial (they change at enrollment and renewal). */
  credentials: () => TunnelCredentials;
  /** The agent's credential, for the signed probe (absent before enrollment). */
  bearer?: () => string | undefined;
  /** The core id the probe must name (from enrollment). */
  coreId?: () => string | undefined;
  /** Probe timeout. @default 3000 */
  probeTimeoutMs?: number;
  /** Re-check the route this often. @default 5 min */
  recheckIntervalMs?: number;
  /** Look for network changes this often. @default 10 s */
  networkPollMs?: number;
  logger: Logger;
}

export interface Transport {
  readonly route: Route;
  /** Decides (again) between direct and the gateways. */
  decide(): Promise<Route>;
  /** The node:http(s) Agent for a request to `url` over the current route. */
  agentFor(url: string): HttpAgent;
  /** A `createConnection` for `ws` (or any client) to `url` over the current route. */
  createConnection(url: string, cb: (err: Error | null, socket?: Duplex) => void): void;
  /** The URL to use for core URL `coreUrl` (@default the first) over the current route: itself, or the gateways' tunnel URL. */
  coreBase(coreUrl?: string): string;
  start(): void;
  stop(): void;
}

const targetOf = (url: string): string => {
  const u = new URL(url);
  return `${u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 80)}`;
};

/**
 * The agent's one way out: decides by itself whether it reaches its core directly or
 * through one of its gateways, and hands every HTTP client (config, heartbeats, package
 * downloads) and WebSocket client (tasks) the matching Agent / `createConnection`.
 *
 * Direct wins when `GET /api/v1/health` of one of the core URLs answers like a core within the probe timeout
 * and, once enrolled, `GET /api/v1/ca/probe` returns our core id signed by the CA we got
 * at enrollment (a captive portal or another server fails that). Else the gateways are
 * tried in order with the same probe through the tunnel. The route is re-checked at an
 * interval and when the machine's addresses change.
 */
export function createTransport(opts: TransportOptions): Transport {
  const log = opts.logger.child({ module: 'agent-transport' });
  const probeTimeout = opts.probeTimeoutMs ?? 3_000;
  let route: Route = { kind: 'none' };
  let deciding: Promise<Route> | undefined;
  const timers: NodeJS.Timeout[] = [];
  let netSignature = '';
  const agents = new Map<string, HttpAgent>();

  const coreUrls: readonly string[] = typeof opts.coreUrl === 'string' ? [opts.coreUrl] : opts.coreUrl;
  const firstCoreUrl = coreUrls[0] ?? '';
  const tunnelUrl = (): string => opts.tunnelUrl?.() ?? firstCoreUrl;

  function dialVia(gateway: string, url: string, cb: (err: Error | null, socket?: Duplex) => void): void {
    const creds = opts.credentials();
    openTunnel({ url: gateway }, targetOf(url), creds, probeTimeout * 2).then(
      (sock) => {
        // The tunnel is paused so no byte is lost before the client listens: it does in cb.
        cb(null, new URL(url).protocol === 'https:' ? tlsOverTunnel(sock, new URL(url).hostname, creds.ca) : sock);
        sock.resume();
      },
      (err: Error) => cb(err),
    );
  }

  function makeAgent(url: string, via: Route): HttpAgent {
    const secure = new URL(url).protocol === 'https:';
    const base: AgentOptions = { keepAlive: true, maxSockets: 8, keepAliveMsecs: 1_000 };
    const ca = opts.credentials().ca;
    if (via.kind !== 'gateway') return secure ? new HttpsAgent({ ...base, ...(ca.length ? { ca } : {}) }) : new HttpAgent(base);
    const gateway = via.url;
    const Base = secure ? HttpsAgent : HttpAgent;
    class TunnelAgent extends Base {
      override createConnection(_o: ClientRequestArgs, cb?: (err: Error | null, socket: Duplex) => void): Duplex | null | undefined {
        dialVia(gateway, url, (err, sock) => cb?.(err, sock as Socket));
        return undefined;
      }
    }
    return new TunnelAgent(base);
  }

  /** GET path on `base` over `agent`; JSON or undefined. */
  function getJson(base: string, path: string, agent: HttpAgent, bearer?: string): Promise<unknown> {
    return new Promise((resolve) => {
      const u = new URL(`${base.replace(/\/+$/, '')}/api/v1${path}`);
      const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { agent, timeout: probeTimeout, headers: { accept: 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) } }, (res: IncomingMessage) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (text.length < 65_536) text += c;
        });
        res.on('end', () => {
          try {
            resolve(res.statusCode === 200 ? JSON.parse(text) : undefined);
          } catch {
            resolve(undefined);
          }
        });
        res.on('error', () => resolve(undefined));
      });
      req.on('timeout', () => req.destroy(new Error('probe timeout')));
      req.on('error', () => resolve(undefined));
      req.end();
    });
  }

  /** Is `base`, reached over `agent`, our core? */
  async function isOurCore(base: string, agent: HttpAgent): Promise<boolean> {
    const health = (await getJson(base, '/health', agent)) as { status?: string; service?: string } | undefined;
    if (health?.status !== 'ok' || health.service !== 'core') return false;
    const bearer = opts.bearer?.();
    const ca = opts.credentials().ca[0];
    const coreId = opts.coreId?.();
    if (!bearer || !ca || !coreId) return true; // not enrolled yet: a core-shaped answer is all we can check
    const nonce = randomBytes(16).toString('hex');
    const p = (await getJson(base, `/ca/probe?nonce=${nonce}`, agent, bearer)) as { coreId?: string; nonce?: string; signature?: string } | undefined;
    if (!p?.signature || p.coreId !== coreId || p.nonce !== nonce) return false;
    try {
      return cryptoVerify('sha256', Buffer.from(`outpost-probe\0${coreId}\0${nonce}`), { key: new X509Certificate(ca).publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(p.signature, 'base64'));
    } catch {
      return false;
    }
  }

  async function decideNow(): Promise<Route> {
    const tryRoute = async (r: Route, base: string): Promise<boolean> => {
      const agent = makeAgent(base, r);
      try {
        return await isOurCore(base, agent);
      } finally {
        agent.destroy();
      }
    };
    let next: Route = { kind: 'none' };
    let direct = false;
    for (const u of coreUrls.slice(0, 16)) if (!direct) direct = await tryRoute({ kind: 'direct' }, u);
    if (direct) next = { kind: 'direct' };
    else {
      for (const g of opts.gateways.slice(0, 16)) {
        if (await tryRoute({ kind: 'gateway', url: g }, tunnelUrl())) {
          next = { kind: 'gateway', url: g };
          break;
        }
      }
    }
    if (JSON.stringify(next) !== JSON.stringify(route)) {
      log.info({ from: route, to: next }, 'route to the core changed');
      for (const a of agents.values()) a.destroy();
      agents.clear();
    }
    route = next;
    return route;
  }

  const signature = (): string =>
    JSON.stringify(
      Object.entries(networkInterfaces())
        .flatMap(([n, list]) => (list ?? []).map((i) => `${n}/${i.cidr}`))
        .sort(),
    );

  return {
    get route() {
      return route;
    },
    decide() {
      deciding ??= decideNow().finally(() => (deciding = undefined));
      return deciding;
    },
    agentFor(url) {
      const key = `${route.kind === 'gateway' ? route.url : route.kind}|${new URL(url).origin}`;
      let a = agents.get(key);
      if (!a) agents.set(key, (a = makeAgent(url, route)));
      return a;
    },
    createConnection(url, cb) {
      if (route.kind === 'gateway') dialVia(route.url, url, cb);
      else cb(new Error('direct route: use the default connection'));
    },
    coreBase(coreUrl) {
      return route.kind === 'gateway' ? tunnelUrl() : (coreUrl ?? firstCoreUrl);
    },
    start() {
      netSignature = signature();
      const recheck = setInterval(() => void this.decide(), opts.recheckIntervalMs ?? 300_000);
      const net = setInterval(() => {
        const s = signature();
        if (s !== netSignature) {
          netSignature = s;
          log.info('network changed: re-checking the route to the core');
          void this.decide();
        }
      }, opts.networkPollMs ?? 10_000);
      for (const t of [recheck, net]) {
        t.unref();
        timers.push(t);
      }
    },
    stop() {
      for (const t of timers.splice(0)) clearInterval(t);
      for (const a of agents.values()) a.destroy();
      agents.clear();
    },
  };
}
