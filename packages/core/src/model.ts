/** What the core persists. Secrets are never stored: only their hashes and UDP keys. */

export type EnrollKind = 'agent' | 'site-server';

export interface TokenRecord {
  id: string;
  /** hashSecret(secret) of the token's secret part. */
  hash: string;
  for: EnrollKind;
  uses: number;
  usesLeft: number;
  expiresAt: number;
  createdAt: number;
  note?: string | undefined;
}

export interface SiteRecord {
  name: string;
  subnets: string[];
  description?: string | undefined;
  createdAt: number;
}

export interface PackageServiceSettings {
  constrained: boolean;
  url: string;
}
export interface TaskServiceSettings {
  url: string;
}
export interface SiteServerServices {
  package?: PackageServiceSettings | undefined;
  task?: TaskServiceSettings | undefined;
  netboot?: Record<string, unknown> | undefined;
  gateway?: { url: string } | undefined;
}
export type ServiceName = 'package' | 'task' | 'netboot' | 'gateway';

export interface SiteServerRecord {
  id: string;
  name: string;
  authHash: string;
  /** Hex of the datagram HMAC key (tickles to it). */
  udpKey: string;
  /** `address/prefix` or a bare address. */
  address?: string | undefined;
  /** `host:port` where it listens for the core's tickles; none: it polls. */
  tickleAddress?: string | undefined;
  services: SiteServerServices;
  /** Sites assigned by the admin. */
  sites: string[];
  createdAt: number;
}

export interface AgentRecord {
  id: string;
  name: string;
  authHash: string;
  udpKey: string;
  macs: string[];
  ips: string[];
  os?: string | undefined;
  createdAt: number;
  /** The task server this agent is assigned to. */
  taskServer?: string | undefined;
}

/** Last-contact times, kept in memory and flushed in batches. */
export interface ContactRecord {
  /** Any contact. */
  last: number;
  /** Last UDP heartbeat (push-reachable). */
  udp?: number | undefined;
  via: 'udp' | 'http';
  /** Config serial the principal reported having. */
  serial?: string | undefined;
}
