/** What the core persists. Secrets are never stored: only their hashes and UDP keys. */

export type EnrollKind = 'agent' | 'site-server';

/**
 * The services an administrator grants a site server. `package.constrained` is part of
 * the grant: a package server may not upgrade itself from constrained to unconstrained.
 */
export interface ServiceGrant {
  task?: true | undefined;
  package?: { constrained: boolean } | undefined;
  netboot?: true | undefined;
  gateway?: true | undefined;
}

/** What a site-server enrollment token allows (`POST /tokens` `grant`). */
export interface TokenGrant {
  services: ServiceGrant;
  /** Sites the site server serves (as if an admin assigned them). */
  sites?: string[] | undefined;
  /** IP literals approved for its URLs, its certificate and subnet-based site membership. */
  addresses?: string[] | undefined;
  /** DNS names approved for its URLs and its certificate. */
  names?: string[] | undefined;
}

/** How a site server's approved addresses came to be. */
export type ApprovedBy = 'grant' | 'enrollment' | 'admin';

/**
 * What a site server may do and be: its services, and the addresses and names approved
 * for its URLs and certificate. Set at enrollment from the token (and the enrollment's
 * source address when the token names none), changed only by an administrator. Its sites
 * are the record's `sites`.
 */
export interface SiteServerGrant {
  services: ServiceGrant;
  addresses: string[];
  names: string[];
  approvedBy: ApprovedBy;
}

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
  /** Site-server tokens only. */
  grant?: TokenGrant | undefined;
  /** Agent tokens only: the site the machines are for (the install link downloads from its package servers). */
  site?: string | undefined;
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
  /**
   * `address/prefix` or a bare address, as the site server stated it at enrollment:
   * shown, never used (membership and routing use `grant.addresses`).
   */
  reportedAddress?: string | undefined;
  /** Before grants: the stated address (read once to migrate an old record). */
  address?: string | undefined;
  /** `host:port` where it listens for the core's tickles (host approved); none: it polls. */
  tickleAddress?: string | undefined;
  /** The services it runs: always within `grant.services`, URLs on approved hosts. */
  services: SiteServerServices;
  /** Sites assigned by the grant or the admin. */
  sites: string[];
  /** Absent only in records written before grants (migrated at load). */
  grant: SiteServerGrant;
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
