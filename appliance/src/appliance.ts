import { isOutpostError, OutpostError, type Logger } from '@outpost/common';
import { createAgent, createIdentityStore, type AgentConfig, type OutpostAgent } from '@outpost/agent';
import { isIP } from 'node:net';
import { createCore, type Core, type CoreConfig, type ServiceGrant, type TokenGrant } from '@outpost/core';
import { createTaskServer } from '@outpost/task-server';
import { createNetboot } from '@outpost/netboot';
import { createPackageServer, loadPackageServerIdentity, type PackageServerConfig } from '@outpost/package-server';
import { createGateway, type Gateway } from '@outpost/gateway';
import { configuredCoreUrl } from './config/load.js';
import type { ApplianceConfig, ServiceSection } from './config/schema.js';

/** Lifetime of the enrollment token minted for an in-process agent. */
const LOCAL_AGENT_TOKEN_TTL_MS = 15 * 60_000;

/** A service the appliance started, in start order. */
export interface RunningService {
  name: ServiceSection;
  /** What the banner shows after "running" (e.g. a package server's name and URL). */
  detail?: string;
  stop(): Promise<void>;
}

/** The services one config names, started in one process. */
export interface Appliance {
  /** The in-process core, when the config has a `core:` section. */
  readonly core: Core | undefined;
  /** The in-process agent, when the config has an `agent:` section. */
  readonly agent: OutpostAgent | undefined;
  /** The in-process gateway, when the config has a `gateway:` section. */
  readonly gateway: Gateway | undefined;
  /** In start order. */
  readonly services: readonly RunningService[];
  /** Stops every service in reverse start order; the first error is thrown after all were tried. */
  stop(): Promise<void>;
}

/**
 * A service failed to start. `code` is the service's own error code (`COMMON_DB_LOCKED`,
 * `EADDRINUSE`, ...) so callers can match on it; the message says which service.
 */
export class ServiceStartError extends OutpostError {
  readonly service: ServiceSection;

  constructor(service: ServiceSection, cause: unknown) {
    const code = isOutpostError(cause) ? cause.code : ((cause as { code?: unknown }).code ?? 'APPLIANCE_START_FAILED');
    super(String(code), `${service} failed to start: ${explain(cause)}`, { cause });
    this.name = 'ServiceStartError';
    this.service = service;
  }
}

function explain(cause: unknown): string {
  const message = cause instanceof Error ? cause.message : String(cause);
  const code = (cause as { code?: unknown }).code;
  if (code === 'EADDRINUSE') return `${message} (another process has that port; choose another in the config)`;
  if (code === 'EACCES') return `${message} (ports below 1024 need root or CAP_NET_BIND_SERVICE)`;
  return message;
}

/** Config keys that need privileges (a port below 1024), as `key=port` lines to print. */
export function privilegedNeeds(config: ApplianceConfig): string[] {
  const needs: string[] = [];
  const check = (key: string, port: number): void => {
    if (port > 0 && port < 1024) needs.push(`${key} ${port}: a port below 1024 needs root or CAP_NET_BIND_SERVICE`);
  };
  if (config.core) {
    check('core.http.port', config.core.http.port);
    check('core.datagram.port', config.core.datagram.port);
  }
  for (const [i, ps] of (config.packageServer ?? []).entries()) check(`packageServer${config.packageServer!.length > 1 ? `.${i}` : ''}.http.port`, ps.http.port);
  if (config.gateway) check('gateway.listen.port', config.gateway.listen.port);
  if (config.netboot) {
    const nb = config.netboot;
    if (nb.tftp.enabled) check('netboot.tftp.port', nb.tftp.port);
    check('netboot.http.port', nb.http.port);
    if (nb.proxyDhcp.enabled || nb.dhcp.enabled) {
      check('netboot.proxyDhcp.port', nb.proxyDhcp.port);
      check('netboot.proxyDhcp.pxePort', nb.proxyDhcp.pxePort);
    }
  }
  return needs;
}

export interface StartDeps {
  logger: Logger;
  /** Called before each service starts (for progress lines). */
  onStarting?: (name: ServiceSection) => void;
}

/**
 * Starts the services `config` names, core first. When one fails, the ones already
 * started are stopped in reverse order and a {@link ServiceStartError} is thrown.
 */
export async function startAppliance(config: ApplianceConfig, deps: StartDeps): Promise<Appliance> {
  const services: RunningService[] = [];
  let core: Core | undefined;
  let agent: OutpostAgent | undefined;
  let gateway: Gateway | undefined;

  const stopAll = async (): Promise<void> => {
    let first: unknown;
    for (const s of [...services].reverse()) {
      try {
        await s.stop();
      } catch (err) {
        deps.logger.error({ err, service: s.name }, 'service stop failed');
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  };

  const start = async (name: ServiceSection, run: () => Promise<RunningService>): Promise<void> => {
    deps.onStarting?.(name);
    try {
      services.push(await run());
    } catch (err) {
      await stopAll().catch(() => undefined);
      throw new ServiceStartError(name, err);
    }
  };

  if (config.core) {
    const coreConfig = config.core;
    await start('core', async () => {
      const c = createCore(coreConfig, { logger: deps.logger.child({ service: 'core' }) });
      try {
        await c.start();
      } catch (err) {
        await c.stop().catch(() => undefined);
        throw err;
      }
      core = c;
      return { name: 'core', stop: () => c.stop() };
    });
  }

  for (const psConfig of config.packageServer ?? []) {
    await start('packageServer', async () => {
      const p = createPackageServer(await localPackageServerConfig(psConfig, config, core, deps.logger), { logger: deps.logger.child({ service: 'package-server' }) });
      try {
        await p.start();
      } catch (err) {
        await p.stop().catch(() => undefined);
        throw err;
      }
      return { name: 'packageServer', detail: `${psConfig.name}${psConfig.constrained ? ' (constrained)' : ''} ${p.url}`, stop: () => p.stop() };
    });
  }

  if (config.taskServer) {
    const tsConfig = config.taskServer;
    await start('taskServer', async () => {
      // Next to an in-process core (its configured URL): use the real URL, and enroll with a token minted here.
      const local = core !== undefined && config.core !== undefined && onlyTheLocalCore(tsConfig.coreUrl, config.core);
      const c = core;
      const t = createTaskServer(local && c ? { ...tsConfig, coreUrl: [c.url] } : tsConfig, {
        logger: deps.logger.child({ service: 'task-server' }),
        ...(local && c
          ? {
              mintEnrollToken: async () =>
                (await mintLocalSiteServerToken(c, 'in-process task server of the appliance', localGrant({ task: true }, [tsConfig.http?.publicUrl ?? tsConfig.http?.host, tsConfig.coreTickle?.advertise ?? tsConfig.coreTickle?.host]))).token,
            }
          : {}),
      });
      try {
        await t.start();
      } catch (err) {
        await t.stop().catch(() => undefined);
        throw err;
      }
      return { name: 'taskServer', stop: () => t.stop() };
    });
  }

  if (config.netboot) {
    const nbConfig = config.netboot;
    await start('netboot', async () => {
      // Next to the in-process core (its configured URL): its real URL, and a site-server token minted here.
      const c = core;
      const local = c !== undefined && config.core !== undefined && onlyTheLocalCore(nbConfig.coreUrl, config.core);
      const n = createNetboot(local && c ? { ...nbConfig, coreUrl: [c.url] } : nbConfig, {
        logger: deps.logger.child({ service: 'netboot' }),
        ...(local && c
          ? {
              mintEnrollToken: async () =>
                (await mintLocalSiteServerToken(c, 'in-process netboot of the appliance', localGrant({ netboot: true }, [nbConfig.http?.publicUrl, nbConfig.serverAddress, nbConfig.address]))).token,
            }
          : {}),
      });
      try {
        await n.start();
      } catch (err) {
        await n.stop().catch(() => undefined);
        throw err;
      }
      const a = n.addresses();
      const dhcp = n.dhcpStatus.running ? `${n.dhcpStatus.mode === 'dhcp' ? 'DHCP' : 'proxyDHCP'} :${a.dhcp}/:${a.pxe}` : `proxyDHCP NOT running (${n.dhcpStatus.reason ?? 'off'})`;
      return { name: 'netboot', detail: `${n.url} tftp :${a.tftp ?? 'off'} ${dhcp}`, stop: () => n.stop() };
    });
  }

  if (config.gateway) {
    const gwConfig = config.gateway;
    await start('gateway', async () => {
      // A linked core that is the in-process one (its configured URL): its real URL, and a
      // site-server token minted here when the config names none and no identity exists yet.
      const c = core;
      const localUrl = config.core ? configuredCoreUrl(config.core).replace(/\/+$/, '') : undefined;
      const isLocal = (url: string): boolean => c !== undefined && url.replace(/\/+$/, '') === localUrl;
      const cores = gwConfig.cores.map((k) => ('url' in k && c && k.url.length === 1 && isLocal(k.url[0] as string) ? { ...k, url: [c.url] } : k));
      const g = createGateway({ ...gwConfig, cores }, {
        logger: deps.logger.child({ service: 'gateway' }),
        ...(c
          ? {
              mintEnrollToken: async (url: string) => {
                if (url.replace(/\/+$/, '') !== c.url.replace(/\/+$/, '')) return undefined;
                const grant = localGrant({ gateway: true }, [gwConfig.publicUrl ?? gwConfig.listen?.host, ...(gwConfig.tls?.names ?? [])]);
                return (await mintLocalSiteServerToken(c, 'in-process gateway of the appliance', grant)).token;
              },
            }
          : {}),
      });
      try {
        await g.start();
      } catch (err) {
        await g.stop().catch(() => undefined);
        throw err;
      }
      gateway = g;
      return { name: 'gateway', stop: () => g.stop() };
    });
  }

  if (config.agent) {
    const agentConfig = config.agent;
    await start('agent', async () => {
      const a = createAgent(await localAgentConfig(agentConfig, config, core, deps.logger), { logger: deps.logger.child({ service: 'agent' }) });
      try {
        await a.start();
      } catch (err) {
        await a.stop().catch(() => undefined);
        throw err;
      }
      agent = a;
      return { name: 'agent', stop: () => a.stop() };
    });
  }

  return { core, agent, gateway, services, stop: stopAll };
}

/** A service's core URLs are the in-process core's configured URL and no other (several cores: an estate elsewhere). */
function onlyTheLocalCore(coreUrls: readonly string[], core: CoreConfig): boolean {
  return coreUrls.length === 1 && coreUrls[0]?.replace(/\/+$/, '') === configuredCoreUrl(core).replace(/\/+$/, '');
}

/**
 * An agent that points at the in-process core (its `coreUrl` left out, or the core's
 * configured URL) gets the core's real URL (the port may have been 0), and, when it has
 * neither an identity nor a token, a one-use enrollment token minted for it directly.
 */
async function localAgentConfig(agentConfig: AgentConfig, config: ApplianceConfig, core: Core | undefined, logger: Logger): Promise<AgentConfig> {
  if (!core || !config.core || !onlyTheLocalCore(agentConfig.coreUrl, config.core)) return agentConfig;
  let out: AgentConfig = { ...agentConfig, coreUrl: [core.url] };
  if (out.enrollToken === undefined && out.enrollTokenFile === undefined && !(await hasIdentity(out.dataDir))) {
    const { token, id } = await core.createEnrollmentToken({ for: 'agent', uses: 1, expiresInMs: LOCAL_AGENT_TOKEN_TTL_MS, note: 'in-process agent of the appliance' });
    logger.info({ service: 'agent', tokenId: id }, 'minted a one-use enrollment token for the local agent');
    out = { ...out, enrollToken: token };
  }
  return out;
}

/**
 * A package server next to the in-process core (its `coreUrl` is the core's configured
 * URL) gets the core's real URL, and, with neither an identity nor a token, a one-use
 * site-server enrollment token minted for it directly.
 */
async function localPackageServerConfig(psConfig: PackageServerConfig, config: ApplianceConfig, core: Core | undefined, logger: Logger): Promise<PackageServerConfig> {
  if (!core || !config.core || !onlyTheLocalCore(psConfig.coreUrl, config.core)) return psConfig;
  let out: PackageServerConfig = { ...psConfig, coreUrl: [core.url] };
  const known = await loadPackageServerIdentity(out.dataDir).then(
    (id) => id !== undefined,
    () => true, // A corrupt identity: let the package server report it when it starts.
  );
  if (out.enrollToken === undefined && out.enrollTokenFile === undefined && !known) {
    const { token, id } = await mintLocalSiteServerToken(
      core,
      `in-process package server ${psConfig.name} of the appliance`,
      localGrant({ package: { constrained: psConfig.constrained } }, [psConfig.http.publicUrl ?? psConfig.http.host, psConfig.tickle.advertise ?? psConfig.tickle.host, psConfig.address]),
    );
    logger.info({ service: 'package-server', name: psConfig.name, tokenId: id }, 'minted a one-use enrollment token for the local package server');
    out = { ...out, enrollToken: token };
  }
  return out;
}

/**
 * The grant of an in-process service: exactly its services, and the hosts it states in
 * its URLs and tickle address (URLs, `host:port`, bind hosts, `address/prefix`), as the
 * appliance's config names them: IP literals as approved addresses (an any-address bind
 * is loopback, as the services advertise it), other hosts as approved names. Without any
 * address the core approves the one it enrolls from (loopback).
 */
export function localGrant(services: ServiceGrant, hosts: ReadonlyArray<string | undefined>): TokenGrant {
  const addresses = new Set<string>();
  const names = new Set<string>();
  for (const h of hosts) {
    if (h === undefined || h === '') continue;
    let host = h;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(h)) host = new URL(h).hostname;
    else if (/^\[[^\]]+\]:\d+$|^[^:]+:\d+$/.test(h)) host = h.replace(/:\d+$/, '');
    host = host.replace(/^\[(.*)\]$/, '$1').replace(/\/\d+$/, '');
    if (host === '0.0.0.0') host = '127.0.0.1';
    if (host === '::') host = '::1';
    if (isIP(host) !== 0) addresses.add(host);
    else names.add(host.toLowerCase());
  }
  return { services, ...(addresses.size ? { addresses: [...addresses] } : {}), ...(names.size ? { names: [...names] } : {}) };
}

/** A one-use, short-lived site-server token for an in-process service, with exactly `grant`. */
function mintLocalSiteServerToken(core: Core, note: string, grant: TokenGrant): Promise<{ token: string; id: string }> {
  return core.createEnrollmentToken({ for: 'site-server', uses: 1, expiresInMs: LOCAL_AGENT_TOKEN_TTL_MS, note, grant });
}

async function hasIdentity(dataDir: string): Promise<boolean> {
  try {
    return (await createIdentityStore(dataDir).load()) !== undefined;
  } catch {
    // A corrupt identity: let the agent report it when it starts.
    return true;
  }
}
