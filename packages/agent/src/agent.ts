import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { release, type as osType } from 'node:os';
import { backoffDelay, createKeyAndCsr, datagramKey, isOutpostError, lifecycle, OutpostError, parseCredential, silentLogger, type Logger, type Service } from '@outpost/common';
import type { AgentConfig } from './config.js';
import { createCoreClient, type CoreClient } from './core-client.js';
import {
  agentRemoteConfigSchema,
  enrollResponseSchema,
  expectShape,
  fetchWorkKey,
  heartbeatResponseSchema,
  renewResponseSchema,
  type AgentRemoteConfig,
  type EnrollRequest,
  type HeartbeatRequest,
} from './core-api.js';
import { AgentErrors, isCoreHttpError } from './errors.js';
import { caFromTlsChain, checkCaPin } from './ca-pin.js';
import { createIdentityStore, type Identity } from './identity-store.js';
import { DEFAULT_MACHINE_ID_FILES, readMachineId } from './machine-id.js';
import { createLoop, type Loop } from './loop.js';
import type { ConfigSerial } from './heartbeat-datagram.js';
import { collectNetInfo, type NetInfo } from './net-info.js';
import { createUdpHeartbeater, type UdpHeartbeater } from './udp-heartbeat.js';
import { createTaskAgent, type TaskAgent } from './tasks/task-agent.js';
import { downloadPackage, type DownloadPackageResult } from './packages/download.js';
import { createTransport, type Route, type Transport } from './transport/transport.js';
import { createAgentMetrics, MetricsListener } from './metrics.js';

/** Config poll interval when neither the config nor the core says (the core's default). */
const DEFAULT_CONFIG_POLL_MS = 30 * 60_000;

export interface AgentDeps {
  /** @default silentLogger() */
  logger?: Logger;
  /** The machine's MACs and addresses, for enrollment. @default collectNetInfo() */
  netInfo?: () => NetInfo;
}

export type AgentState = 'stopped' | 'enrolling' | 'running' | 'rejected';

export interface AgentStats {
  state: AgentState;
  /** How heartbeats currently travel: `udp`, or `http` (configured, or fallback). */
  transport: 'udp' | 'http';
  lastContact: string | undefined;
  lastContactVia: 'udp' | 'http' | undefined;
  /** Round trip of the last acknowledged UDP heartbeat, ms. */
  lastUdpRttMs: number | undefined;
  enrollments: number;
  udpSent: number;
  udpAcked: number;
  udpMissed: number;
  httpHeartbeats: number;
  heartbeatFailures: number;
  configFetches: number;
  configFailures: number;
  /** Failed contacts in a row (reset by any success). */
  consecutiveFailures: number;
  ackDrops: Partial<Record<string, number>>;
  /** How the core is reached: `direct`, `gateway` (through an Internet gateway) or `none` (not yet / not at all). */
  route: Route['kind'];
  /** Certificates renewed (or first obtained) since start. */
  renewals: number;
  /** The core URL calls go to now (one of `coreUrl`'s list). */
  coreUrl: string;
  /** Times calls moved to another core URL (a core failed in transport or answered 502/503/504). */
  coreFailovers: number;
}

export interface OutpostAgent extends Service {
  /** The agent's id, once enrolled (or loaded from the data dir). */
  readonly id: string | undefined;
  /** The last config fetched from the core. */
  readonly config: AgentRemoteConfig | undefined;
  readonly stats: Readonly<AgentStats>;
  /** Where the identity is kept. */
  readonly identityFile: string;
  /** Fetches the config now (coalesced with a fetch in progress). */
  refreshConfig(): Promise<AgentRemoteConfig>;
  /** Sends a heartbeat now instead of at the next interval. */
  heartbeatNow(): void;
  /** The task side (work, runs, status reports), while started with `tasks.enabled`. */
  readonly tasks: TaskAgent | undefined;
  /** The current route to the core (direct or through a gateway). */
  readonly route: Route;
  /** Decides direct vs gateway again now. */
  checkRoute(): Promise<Route>;
  /** Downloads a package (id, `name@version` or name) into `destDir` over the current route. */
  downloadPackage(pkg: string, destDir: string, signal?: AbortSignal): Promise<DownloadPackageResult>;
  /** The port of the `metrics` listener (after start; 0 when it is off). */
  readonly metricsPort: number;
}

/** Two thirds into a certificate's lifetime (the core renews 30 d before the end of 90 d). */
function renewAfterOf(pem: string): string {
  const c = new X509Certificate(pem);
  const from = Date.parse(c.validFrom);
  return new Date(from + ((Date.parse(c.validTo) - from) * 2) / 3).toISOString();
}

/** Retry a failed renewal after this long. */
const RENEW_RETRY_MS = 10 * 60_000;

/**
 * The managed-computer agent: enrolls once with a token and keeps its identity in its data
 * dir; heartbeats over UDP (falling back to HTTP when UDP gets no ack, and trying UDP
 * again every few beats); polls its config at an interval, on demand, and whenever a
 * heartbeat answer shows the core has a newer config serial. Core failures are logged and
 * retried with a capped backoff; they never stop the agent.
 */
export function createAgent(config: AgentConfig, deps: AgentDeps = {}): OutpostAgent {
  const log = (deps.logger ?? silentLogger()).child({ module: 'agent' });
  const netInfo = deps.netInfo ?? (() => collectNetInfo());
  const store = createIdentityStore(config.dataDir);
  const hostOf = (url: string): string => new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');
  /** The datagram endpoint's host: configured, else that of the core URL the agent talks to now. */
  const datagramHost = (): string => config.datagramHost ?? hostOf(client?.currentUrl ?? (config.coreUrl[0] as string));
  const viaConfig = config.heartbeat.via;

  let identity: Identity | undefined;
  let bearer = '';
  let key: Buffer = Buffer.alloc(0);
  let remote: AgentRemoteConfig | undefined;
  /** The interval the core told us in its last heartbeat answer. */
  let coreHeartbeatMs: number | undefined;
  let client: CoreClient | undefined;
  let udp: UdpHeartbeater | undefined;
  let hbLoop: Loop | undefined;
  let cfgLoop: Loop | undefined;
  let pendingFetch: Promise<AgentRemoteConfig> | undefined;
  let beatsSinceUdpProbe = 0;
  let cfgFailures = 0;
  let tasks: TaskAgent | undefined;
  let transport: Transport | undefined;
  /** The CA from `caFile`, trusted before enrollment gives us the core's. */
  let preCa: string[] = [];
  let nextRenewTry = 0;
  let metricsListener: MetricsListener | undefined;
  /** This computer's machine id (read at start), recorded in the identity at enrollment. */
  let machineId: string | undefined;
  /** The pinned CA was looked for in an https core's chain (found, or the system trusts it). */
  let pinChecked = false;
  const hasToken = (): boolean => Boolean(config.enrollToken || config.enrollTokenFile);

  const stats: AgentStats = {
    state: 'stopped',
    transport: viaConfig === 'http' ? 'http' : 'udp',
    lastContact: undefined,
    lastContactVia: undefined,
    lastUdpRttMs: undefined,
    enrollments: 0,
    udpSent: 0,
    udpAcked: 0,
    udpMissed: 0,
    httpHeartbeats: 0,
    heartbeatFailures: 0,
    configFetches: 0,
    configFailures: 0,
    consecutiveFailures: 0,
    ackDrops: {},
    route: 'none',
    renewals: 0,
    coreUrl: config.coreUrl[0] as string,
    coreFailovers: 0,
  };

  const heartbeatIntervalMs = (): number =>
    config.heartbeat.interval ?? remote?.heartbeatIntervalMs ?? coreHeartbeatMs ?? identity?.heartbeatIntervalMs ?? 300_000;
  const configPollMs = (): number =>
    config.configPollInterval ?? remote?.configPollIntervalMs ?? identity?.configPollIntervalMs ?? DEFAULT_CONFIG_POLL_MS;
  const datagramPort = (): number => config.datagramPort ?? remote?.datagramPort ?? identity?.datagramPort ?? 0;
  const retryDelay = (failures: number, intervalMs: number): number =>
    backoffDelay(failures - 1, { baseMs: config.retry.base, capMs: Math.min(config.retry.cap, intervalMs) });

  function adopt(id: Identity): void {
    const cred = parseCredential(id.credential);
    if (!cred) throw new OutpostError(AgentErrors.IDENTITY_CORRUPT, `the identity in ${store.file} holds no usable credential`);
    identity = id;
    bearer = id.credential;
    key = datagramKey(cred.secret);
  }

  function contact(via: 'udp' | 'http'): void {
    stats.lastContact = new Date().toISOString();
    stats.lastContactVia = via;
    stats.consecutiveFailures = 0;
    if (stats.state === 'rejected') stats.state = 'running';
  }

  function seeSerial(serial: ConfigSerial | undefined): void {
    if (serial !== undefined && serial !== remote?.serial) {
      log.debug({ have: remote?.serial, core: serial }, 'config serial changed, fetching config');
      cfgLoop?.trigger();
    }
  }

  async function readToken(): Promise<string> {
    if (config.enrollToken) return config.enrollToken;
    if (!config.enrollTokenFile) {
      throw new OutpostError(
        AgentErrors.NO_ENROLL_TOKEN,
        `no agent identity in ${config.dataDir} and no enrollToken or enrollTokenFile configured to enroll with`,
      );
    }
    let text: string;
    try {
      text = await readFile(config.enrollTokenFile, 'utf8');
    } catch (cause) {
      throw new OutpostError(AgentErrors.TOKEN_FILE_UNREADABLE, `cannot read enrollTokenFile ${config.enrollTokenFile}: ${(cause as Error).message}`, { cause });
    }
    const token = text.split(/\r?\n/, 1)[0]?.trim() ?? '';
    if (!token) throw new OutpostError(AgentErrors.TOKEN_FILE_UNREADABLE, `enrollTokenFile ${config.enrollTokenFile} is empty`);
    return token;
  }

  /**
   * With `caFingerprint` and no `caFile`: an https core's CA, taken from its TLS chain when it
   * has the pinned fingerprint, so the token goes only to a core of that CA (and it is
   * trusted for gateways' TLS too). A chain without it is refused at once; unreachable
   * cores are tried in turn. Over http the pin is checked on the enrollment answer only.
   */
  async function pinCa(pin: string): Promise<void> {
    if (preCa.length > 0 || pinChecked) return;
    const secure = config.coreUrl.filter((u) => u.startsWith('https:'));
    if (secure.length === 0) return;
    let last: unknown;
    for (const url of secure) {
      try {
        const pem = await caFromTlsChain(url, pin, config.httpTimeout);
        if (pem) preCa = [pem];
        pinChecked = true;
        log.info({ coreUrl: url, caFingerprint: pin, fromChain: Boolean(pem) }, 'the core presents the pinned CA');
        return;
      } catch (err) {
        if (isOutpostError(err) && err.code === AgentErrors.CA_MISMATCH) throw err;
        last = err;
      }
    }
    throw last;
  }

  async function enroll(): Promise<void> {
    if (!client) return;
    const token = await readToken();
    if (config.caFingerprint) await pinCa(config.caFingerprint);
    stats.state = 'enrolling';
    const net = netInfo();
    const { keyPem, csrPem } = createKeyAndCsr(config.name);
    const body: EnrollRequest = { token, name: config.name, macs: net.macs, ips: net.ips, os: config.os ?? `${osType()} ${release()}`, csr: csrPem };
    let answer: unknown;
    try {
      answer = await enrollCall(client, body);
    } catch (err) {
      if (isCoreHttpError(err) && err.httpStatus >= 400 && err.httpStatus < 500) {
        throw new OutpostError(AgentErrors.ENROLL_REJECTED, `the core refused to enroll this agent: ${err.coreCode ?? err.httpStatus} (${err.message})`, {
          cause: err,
          details: { coreCode: err.coreCode, status: err.httpStatus },
        });
      }
      throw err;
    }
    const res = expectShape(enrollResponseSchema, answer, 'POST /enroll');
    // The identity is not kept: a core whose CA is not the pinned one is not our core.
    if (config.caFingerprint) checkCaPin(res.caCertificate, config.caFingerprint, 'POST /enroll');
    const id: Identity = {
      version: 1,
      id: res.id,
      credential: res.credential,
      coreUrl: client.currentUrl,
      datagramPort: res.datagramPort,
      heartbeatIntervalMs: res.heartbeatIntervalMs,
      ...(res.configPollIntervalMs === undefined ? {} : { configPollIntervalMs: res.configPollIntervalMs }),
      enrolledAt: new Date().toISOString(),
      ...(res.certificate && res.caCertificate
        ? { certificate: res.certificate, key: keyPem, caCertificate: res.caCertificate, coreId: res.coreId, tunnelUrl: res.coreUrl, renewAfter: renewAfterOf(res.certificate) }
        : {}),
      ...(res.workKey === undefined ? {} : { workKey: res.workKey }),
      ...(machineId === undefined ? {} : { machineId }),
    };
    await store.save(id);
    adopt(id);
    await checkRoute();
    remote = undefined;
    stats.enrollments++;
    stats.state = 'running';
    log.info({ id: id.id, name: config.name, file: store.file, machineId }, 'enrolled');
  }

  /**
   * `POST /enroll` over the current route; when the core cannot be reached directly and
   * gateways are configured, to each gateway in turn (a client without a certificate may
   * only enroll there; the gateway forwards it to its core).
   */
  async function enrollCall(c: CoreClient, body: EnrollRequest): Promise<unknown> {
    const route = await checkRoute();
    if (route.kind !== 'none' || config.gateways.length === 0) return c.call('POST', '/enroll', { body });
    let last: unknown = new OutpostError(AgentErrors.CORE_UNREACHABLE, 'no gateway answered');
    for (const gw of config.gateways) {
      const via = createCoreClient({ coreUrl: gw, ca: preCa, maxSockets: 1, timeoutMs: config.httpTimeout });
      try {
        const answer = await via.call('POST', '/enroll', { body });
        log.info({ gateway: gw }, 'enrolled through a gateway');
        return answer;
      } catch (err) {
        if (isCoreHttpError(err) && err.httpStatus < 500) throw err;
        last = err;
        log.warn({ gateway: gw, message: (err as Error).message }, 'enrollment through this gateway failed');
      } finally {
        via.close();
      }
    }
    throw last;
  }

  /** Direct or gateway, decided again (only when gateways are configured; else always direct). */
  async function checkRoute(): Promise<Route> {
    if (!transport || config.gateways.length === 0) return transport?.route ?? { kind: 'none' };
    const before = transport.route.kind;
    const r = await transport.decide();
    stats.route = r.kind;
    if (r.kind !== before) {
      if (r.kind === 'gateway') stats.transport = 'http';
      tasks?.syncPush();
      void tasks?.fetchNow('poll');
    }
    return r;
  }

  /** Renews the certificate when due (or gets a first one for an identity without); failures retry later. */
  async function renewIfDue(): Promise<void> {
    const me = identity;
    if (!client || !me || Date.now() < nextRenewTry) return;
    const due = me.certificate ? Date.now() >= Date.parse(me.renewAfter ?? '') : config.gateways.length > 0;
    if (!due) return;
    nextRenewTry = Date.now() + RENEW_RETRY_MS;
    try {
      const { keyPem, csrPem } = createKeyAndCsr(config.name);
      const b = expectShape(renewResponseSchema, await client.call('POST', '/ca/renew', { bearer, body: { csr: csrPem } }), 'POST /ca/renew');
      const next: Identity = { ...me, certificate: b.certificate, key: keyPem, caCertificate: b.caCertificate, coreId: b.coreId, tunnelUrl: b.coreUrl, renewAfter: b.renewAfter };
      await store.save(next);
      identity = next;
      nextRenewTry = 0;
      stats.renewals++;
      log.info({ renewAfter: b.renewAfter }, 'certificate renewed');
    } catch (err) {
      log.warn({ message: (err as Error).message, retryInMs: RENEW_RETRY_MS }, 'certificate renewal failed');
    }
  }

  /** The core said 401 to our credential: say so clearly; re-enroll only with a token. */
  async function rejected(err: unknown): Promise<void> {
    const canReenroll = hasToken();
    log.error(
      { err, id: identity?.id, file: store.file, code: AgentErrors.IDENTITY_REJECTED, reenroll: canReenroll },
      canReenroll
        ? 'the core rejected this agent credential (agent deleted, or another core?); enrolling again with the configured token'
        : 'the core rejected this agent credential (agent deleted, or another core?); configure an enrollToken or delete the identity file and enroll again',
    );
    stats.state = 'rejected';
    if (canReenroll && identity) {
      await store.clear();
      identity = undefined;
      remote = undefined;
    }
  }

  async function udpBeat(attempts: number): Promise<boolean> {
    if (!udp) return false;
    const port = datagramPort();
    if (port <= 0) return false;
    for (let i = 0; i < attempts; i++) {
      stats.udpSent++;
      const r = await udp.beat({ host: datagramHost(), port }, remote?.serial, config.heartbeat.udpAckTimeout);
      if (r.acked) {
        stats.udpAcked++;
        stats.lastUdpRttMs = Math.round(r.rttMs * 1000) / 1000;
        contact('udp');
        seeSerial(r.configSerial);
        return true;
      }
      if (!hbLoop?.running) return false;
      stats.udpMissed++;
    }
    return false;
  }

  async function httpBeat(): Promise<void> {
    if (!client || !identity) return;
    const body: HeartbeatRequest = remote ? { configSerial: remote.serial } : {};
    const answer = await client.call('POST', `/agents/${encodeURIComponent(identity.id)}/heartbeat`, { bearer, body });
    const res = expectShape(heartbeatResponseSchema, answer, 'POST /agents/:id/heartbeat');
    stats.httpHeartbeats++;
    coreHeartbeatMs = res.heartbeatIntervalMs;
    contact('http');
    seeSerial(res.configSerial);
  }

  async function beat(): Promise<number> {
    if (!identity) await enroll();
    if (!identity) return config.retry.base;
    await renewIfDue();
    // Behind a gateway UDP does not pass: heartbeat over HTTP through the tunnel.
    if (viaConfig !== 'http' && transport?.route.kind !== 'gateway') {
      const probing = stats.transport === 'http';
      if (!probing || ++beatsSinceUdpProbe >= config.heartbeat.udpRetryEvery) {
        beatsSinceUdpProbe = 0;
        const acked = await udpBeat(probing ? 1 : config.heartbeat.udpAttempts);
        if (!hbLoop?.running) return 0;
        if (acked) {
          if (probing) log.info({ id: identity.id }, 'UDP heartbeats are acknowledged again; leaving HTTP fallback');
          stats.transport = 'udp';
          return heartbeatIntervalMs();
        }
        if (viaConfig === 'udp') {
          throw new OutpostError(AgentErrors.CORE_UNREACHABLE, `no UDP heartbeat ack from ${datagramHost()}:${datagramPort()}`);
        }
        if (!probing) {
          log.warn(
            { id: identity.id, target: `${datagramHost()}:${datagramPort()}`, attempts: config.heartbeat.udpAttempts },
            'no UDP heartbeat ack; falling back to HTTP heartbeats',
          );
          stats.transport = 'http';
        }
      }
    }
    await httpBeat();
    return heartbeatIntervalMs();
  }

  async function onBeatError(err: unknown): Promise<number> {
    if (!hbLoop?.running) return 0;
    stats.heartbeatFailures++;
    stats.consecutiveFailures++;
    if (isOutpostError(err) && err.code === AgentErrors.CORE_UNREACHABLE) void checkRoute().catch(() => undefined);
    if (isCoreHttpError(err) && err.httpStatus === 401 && identity) await rejected(err);
    const delay = stats.state === 'rejected' && !identity && !hasToken()
      ? config.retry.cap
      : retryDelay(stats.consecutiveFailures, heartbeatIntervalMs());
    const code = isOutpostError(err) ? err.code : undefined;
    if (code === AgentErrors.ENROLL_REJECTED || code === AgentErrors.NO_ENROLL_TOKEN || code === AgentErrors.TOKEN_FILE_UNREADABLE || code === AgentErrors.CA_MISMATCH) {
      log.error({ err, code, retryInMs: delay }, 'cannot enroll');
    } else {
      log.warn({ code, message: (err as Error).message, failures: stats.consecutiveFailures, retryInMs: delay }, 'heartbeat failed');
    }
    return delay;
  }

  async function fetchConfig(): Promise<AgentRemoteConfig> {
    if (pendingFetch) return pendingFetch;
    const c = client;
    const me = identity;
    if (!c || !me) {
      return Promise.reject(new OutpostError(AgentErrors.NO_ENROLL_TOKEN, 'the agent is not enrolled yet'));
    }
    pendingFetch = (async () => {
      try {
        const answer = await c.call('GET', `/agents/${encodeURIComponent(me.id)}/config`, { bearer });
        const cfg = expectShape(agentRemoteConfigSchema, answer, 'GET /agents/:id/config');
        stats.configFetches++;
        const changed = cfg.serial !== remote?.serial;
        remote = cfg;
        contact('http');
        if (changed) log.info({ serial: cfg.serial }, 'config updated');
        if (changed) void tasks?.fetchNow('poll');
        return cfg;
      } finally {
        pendingFetch = undefined;
      }
    })();
    return pendingFetch;
  }

  async function poll(): Promise<number> {
    if (!identity) return Math.min(configPollMs(), config.retry.base);
    await fetchConfig();
    cfgFailures = 0;
    return configPollMs();
  }

  async function onPollError(err: unknown): Promise<number> {
    if (!cfgLoop?.running) return 0;
    stats.configFailures++;
    cfgFailures++;
    if (isOutpostError(err) && err.code === AgentErrors.CORE_UNREACHABLE) void checkRoute().catch(() => undefined);
    if (isCoreHttpError(err) && err.httpStatus === 401 && identity) await rejected(err);
    const delay = retryDelay(cfgFailures, configPollMs());
    log.warn({ code: isOutpostError(err) ? err.code : undefined, message: (err as Error).message, retryInMs: delay }, 'config poll failed');
    return delay;
  }

  // The loops take async error handlers; wrap so the loop's sync contract holds.
  const asyncLoop = (body: () => Promise<number>, onError: (err: unknown) => Promise<number>): Loop =>
    createLoop(async () => {
      try {
        return await body();
      } catch (err) {
        return onError(err);
      }
    }, () => config.retry.cap);

  /**
   * The stored identity, unless it was enrolled on another computer: an image made after
   * enrollment carries the identity to every machine made from it. Such an identity is moved
   * aside (kept, renamed) and this computer enrolls anew with the configured token; without
   * a token, `AGENT_CLONED_IDENTITY`. An identity from before machine ids were recorded gets
   * this computer's.
   */
  async function loadOwnIdentity(): Promise<Identity | undefined> {
    const machine = await readMachineId(config.machineIdFile ? [config.machineIdFile] : DEFAULT_MACHINE_ID_FILES);
    machineId = machine.id;
    if (machine.id === undefined) log.warn({ tried: machine.tried }, 'no machine id: an identity copied from another computer cannot be detected');
    const stored = await store.load();
    if (!stored || machine.id === undefined) return stored;
    if (stored.machineId === undefined) {
      const next: Identity = { ...stored, machineId: machine.id };
      await store.save(next);
      log.info({ id: stored.id, machineId: machine.id, file: machine.file }, 'machine id recorded in the identity');
      return next;
    }
    if (stored.machineId === machine.id) return stored;
    const details = { id: stored.id, enrolledOn: stored.machineId, machineId: machine.id, file: machine.file };
    if (!hasToken()) {
      throw new OutpostError(
        AgentErrors.CLONED_IDENTITY,
        `the identity in ${store.file} was enrolled on another computer (machine id ${stored.machineId}, this one is ${machine.id}): a copied image? Configure an enrollToken to enroll this computer, or delete the identity`,
        { details },
      );
    }
    const aside = await store.moveAside(`cloned-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    log.warn({ ...details, movedTo: aside }, 'this identity was enrolled on another computer (a cloned image): moved aside, enrolling this computer anew');
    return undefined;
  }

  const service = lifecycle({
    async start() {
      if (config.caFile) preCa = [await readFile(config.caFile, 'utf8')];
      if (config.caFile && config.caFingerprint) checkCaPin(preCa[0], config.caFingerprint, `caFile ${config.caFile}`);
      const stored = await loadOwnIdentity();
      const t = createTransport({
        coreUrl: config.coreUrl,
        tunnelUrl: () => identity?.tunnelUrl,
        gateways: config.gateways,
        credentials: () => ({ ca: identity?.caCertificate ? [identity.caCertificate] : preCa, cert: identity?.certificate, key: identity?.key }),
        bearer: () => (identity ? bearer : undefined),
        coreId: () => identity?.coreId,
        recheckIntervalMs: config.routeRecheck,
        logger: log,
      });
      transport = t;
      client = createCoreClient({
        coreUrl: config.coreUrl,
        maxSockets: 2,
        timeoutMs: config.httpTimeout,
        route: (url) => ({ base: t.coreBase(url), agent: t.agentFor(t.coreBase(url)) }),
        // Another core of the estate: its datagram port may differ, so its config is read again.
        onFailover: (from, to) => {
          stats.coreUrl = to;
          stats.coreFailovers++;
          log.warn({ from, to }, 'the core did not answer: moved to another core URL');
          cfgLoop?.trigger();
        },
      });
      if (config.gateways.length > 0) t.start();
      else stats.route = 'direct';
      if (stored) {
        adopt(stored);
        await checkRoute();
        if (!config.coreUrl.some((u) => u === stored.coreUrl.replace(/\/+$/, ''))) {
          log.warn({ enrolledWith: stored.coreUrl, coreUrl: config.coreUrl }, 'identity was enrolled with another core URL; using it anyway');
        }
        log.info({ id: stored.id, file: store.file }, 'identity loaded');
        stats.state = 'running';
      } else {
        try {
          await enroll();
        } catch (err) {
          const code = isOutpostError(err) ? err.code : undefined;
          if (code !== AgentErrors.CORE_UNREACHABLE && code !== AgentErrors.CORE_ERROR) throw err;
          log.warn({ code, message: (err as Error).message }, 'cannot enroll yet; will retry');
        }
      }
      if (viaConfig !== 'http') {
        // The socket's family and binding follow the first non-loopback core host (any core of the list may be beaten to).
        const hosts = config.datagramHost ? [config.datagramHost] : config.coreUrl.map(hostOf);
        udp = createUdpHeartbeater(() => ({ id: identity?.id ?? '-', key }), hosts.find((h) => !/^(localhost|127\.|::1$)/.test(h)) ?? (hosts[0] as string), log);
        await udp.open();
      }
      hbLoop = asyncLoop(beat, onBeatError);
      cfgLoop = asyncLoop(poll, onPollError);
      hbLoop.start(identity ? 0 : config.retry.base);
      cfgLoop.start(0);
      if (config.tasks.enabled) {
        tasks = createTaskAgent(config.tasks, {
          log,
          dataDir: config.dataDir,
          identity: () => (identity ? { id: identity.id, datagramKey: key } : undefined),
          taskServer: () => remote?.taskServer,
          workKey: () => identity?.workKey,
          // An identity from before runs were signed pins the key from the core itself, once.
          fetchWorkKey: async () => {
            const me = identity;
            if (!client || !me || me.workKey !== undefined) return me?.workKey;
            const next: Identity = { ...me, workKey: await fetchWorkKey(client, me.id, bearer) };
            await store.save(next);
            identity = next;
            log.info({ id: me.id }, 'work-signing key pinned');
            return next.workKey;
          },
          agentFor: (url) => t.agentFor(url),
          pushOnly: () => t.route.kind === 'gateway',
          bootOnce: async (image, job) => {
            if (!client) throw new Error('not connected to the core');
            await client.call('POST', '/boot/automation', { bearer, body: { image, ...(job ? { job } : {}) } });
          },
        });
        await tasks.start();
      }
      if (config.metrics.enabled) {
        const listener = new MetricsListener(createAgentMetrics({ stats: () => (udp ? { ...stats, ackDrops: { ...udp.dropped } } : stats), tasks: () => tasks }));
        await listener.start(config.metrics.host, config.metrics.port);
        metricsListener = listener;
        log.info({ port: listener.port }, 'metrics listening');
      }
    },
    async stop() {
      // Stop scheduling first, then release what a run in progress may be waiting on
      // (a UDP ack, an HTTP answer) so it ends now, then wait for it.
      const loopsDone = Promise.all([hbLoop?.stop(), cfgLoop?.stop()]);
      await metricsListener?.stop();
      metricsListener = undefined;
      await tasks?.stop();
      tasks = undefined;
      if (udp) stats.ackDrops = { ...udp.dropped };
      await udp?.close();
      client?.close();
      transport?.stop();
      await loopsDone;
      await pendingFetch?.catch(() => undefined);
      hbLoop = undefined;
      cfgLoop = undefined;
      udp = undefined;
      client = undefined;
      transport = undefined;
      stats.state = 'stopped';
    },
  });

  return {
    start: service.start,
    stop: service.stop,
    get id() {
      return identity?.id;
    },
    get config() {
      return remote;
    },
    get stats() {
      if (udp) stats.ackDrops = { ...udp.dropped };
      return stats;
    },
    identityFile: store.file,
    refreshConfig: fetchConfig,
    heartbeatNow() {
      hbLoop?.trigger();
    },
    get tasks() {
      return tasks;
    },
    get route() {
      return transport?.route ?? { kind: 'none' };
    },
    checkRoute,
    get metricsPort() {
      return metricsListener?.port ?? 0;
    },
    downloadPackage(pkg, destDir, signal) {
      const c = client;
      const t = transport;
      const me = identity;
      if (!c || !t || !me) return Promise.reject(new OutpostError(AgentErrors.NO_ENROLL_TOKEN, 'the agent is not enrolled yet'));
      return downloadPackage({ client: c, bearer, agentId: me.id, package: pkg, destDir, logger: log, agentFor: (url) => t.agentFor(url), ...(signal ? { signal } : {}) });
    },
  };
}
