import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@outpost/common';
import { CA_FILES } from './ca/authority.js';

/**
 * Work that must run on exactly one core when several share one PostgreSQL, one lease
 * each (the package README lists them too; a test keeps the two in step).
 */
export const LEASES = {
  'tasks.expiry': 'ends runs past their expiry time and removes runs past their retention (the tasks tick; writing dispatch times stays on every core)',
  'tasks.server-runs': "resumes unfinished server-task runs (at start, and on the core that takes over a dead holder's lease)",
  'registry.rebalance': 're-balances agents over task servers (after site-server, site and agent changes)',
  'admins.sessions': 'removes ended console sessions (every minute)',
  'ca.reconcile': 'revokes the certificates of deleted agents and site servers, prunes expired certificate records',
  'audit.retention': 'prunes audit entries past their retention (at start and every `audit.retention.interval`)',
  'hierarchy.child': "holds the link to this core's parent and does the child's side of the hierarchy (summaries and hierarchy-run results up, package content fetched from the parent)",
} as const;

export type LeaseName = keyof typeof LEASES;
export const LEASE_NAMES = Object.keys(LEASES) as LeaseName[];

/** Where leases live: PostgreSQL's `outpost_leases` (see `PgLeases` in @outpost/pg-level). */
export interface LeaseBackend {
  /** Takes or renews `names`; the names held now with their fencing tokens. */
  renew(names: readonly string[]): Promise<Map<string, number>>;
  /** Gives `names` (default: all ours) up now. */
  release(names?: readonly string[]): Promise<void>;
}

export interface LeasesOptions {
  /** This process among the cores (core id, pid, random), in logs and the lease table. */
  holder: string;
  /** A lease not renewed for this long passes to another core; renewed every third of it. */
  ttlMs: number;
  /** None: the core runs on level and holds every lease (one core owns its level dir). */
  backend?: LeaseBackend;
  log: Logger;
  /** A monotonic clock in ms (tests). @default performance.now */
  now?: () => number;
}

/**
 * The leases of one core: `held(name)` says whether this core runs a job now. One loop
 * renews every lease in one statement every `ttl / 3`; a lease counts as held until `ttl`
 * after the renewal that last confirmed it was SENT (the database's own expiry is later),
 * so a core that stalls or loses the database stops at once, before another can take over.
 */
export class Leases {
  readonly holder: string;
  readonly ttlMs: number;
  readonly #backend: LeaseBackend | undefined;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #held = new Map<LeaseName, { token: number; until: number }>();
  /** Names held at the last look, to log and count changes. */
  readonly #was = new Set<LeaseName>();
  readonly #acquired = new Map<LeaseName, (() => void)[]>();
  readonly #lost = new Map<LeaseName, (() => void)[]>();
  /** Times this core became a lease's holder (a new token), by lease. */
  readonly takeovers: Record<LeaseName, number> = Object.fromEntries(LEASE_NAMES.map((n) => [n, 0])) as Record<LeaseName, number>;
  #timer: NodeJS.Timeout | undefined;
  #renewing: Promise<void> = Promise.resolve();
  #stopped = false;
  /** Renewals failing in a row (the first is logged as a warning, the rest at debug). */
  #failures = 0;

  constructor(options: LeasesOptions) {
    this.holder = options.holder;
    this.ttlMs = options.ttlMs;
    this.#backend = options.backend;
    this.#log = options.log.child({ component: 'leases', holder: options.holder });
    this.#now = options.now ?? (() => performance.now());
  }

  /** Takes what it can now (so jobs at start know), then renews every `ttl / 3`. */
  async start(): Promise<void> {
    this.#stopped = false;
    if (!this.#backend) {
      for (const n of LEASE_NAMES) this.takeovers[n]++;
      return;
    }
    await this.#renew();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#renewing = this.#renew().finally(() => this.#schedule());
    }, Math.max(50, Math.floor(this.ttlMs / 3)));
    this.#timer.unref();
  }

  async #renew(): Promise<void> {
    const backend = this.#backend!;
    const sent = this.#now();
    try {
      const got = await backend.renew(LEASE_NAMES);
      if (this.#failures > 0) this.#log.info({ failures: this.#failures }, 'renewing the leases works again');
      this.#failures = 0;
      if (this.#stopped) return;
      for (const name of LEASE_NAMES) {
        const token = got.get(name);
        if (token === undefined) this.#held.delete(name);
        else {
          if (this.#held.get(name)?.token !== token) this.#newToken(name, token);
          this.#held.set(name, { token, until: sent + this.ttlMs });
        }
      }
    } catch (err) {
      const fields = { err: { code: (err as { code?: string }).code, message: (err as Error).message }, failures: ++this.#failures };
      if (this.#failures === 1) this.#log.warn(fields, 'renewing the leases failed; each ends at its own expiry unless a renewal gets through');
      else this.#log.debug(fields, 'renewing the leases failed again');
    }
    this.#look();
  }

  #newToken(name: LeaseName, token: number): void {
    this.takeovers[name]++;
    this.#log.info({ lease: name, token }, 'lease taken');
  }

  /** Logs leases taken and lost since the last look, and runs the `onAcquired` / `onLost` work for them. */
  #look(): void {
    for (const name of LEASE_NAMES) {
      const now = this.held(name);
      if (now === this.#was.has(name)) continue;
      if (now) {
        this.#was.add(name);
        for (const fn of this.#acquired.get(name) ?? []) this.#run(name, fn);
      } else {
        this.#was.delete(name);
        this.#log.warn({ lease: name }, 'lease lost: another core runs its work now, or none until the store answers');
        for (const fn of this.#lost.get(name) ?? []) this.#run(name, fn);
      }
    }
  }

  #run(name: LeaseName, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#log.error({ err, lease: name }, 'work on taking a lease failed');
    }
  }

  /** Whether this core runs `name`'s work now (level: always). */
  held(name: LeaseName): boolean {
    if (!this.#backend) return !this.#stopped;
    const h = this.#held.get(name);
    return h !== undefined && this.#now() < h.until;
  }

  /** The lease's fencing token while held (it grows each time the holder changes); level: 1. */
  token(name: LeaseName): number | undefined {
    if (!this.#backend) return this.#stopped ? undefined : 1;
    return this.held(name) ? this.#held.get(name)!.token : undefined;
  }

  /** Leases held now, by name. */
  heldNames(): LeaseName[] {
    return LEASE_NAMES.filter((n) => this.held(n));
  }

  /**
   * `fn` runs each time this core takes `name` (at start, or from a core that died), and
   * now if it holds it already (unless `now: false`: the caller did that work itself): work
   * to pick up where the previous holder stopped.
   */
  onAcquired(name: LeaseName, fn: () => void, options: { now?: boolean } = {}): void {
    this.#acquired.set(name, [...(this.#acquired.get(name) ?? []), fn]);
    if ((options.now ?? true) && this.held(name)) this.#run(name, fn);
  }

  /** `fn` runs each time this core loses `name` (another core holds it now, or the store does not answer): work to stop. */
  onLost(name: LeaseName, fn: () => void): void {
    this.#lost.set(name, [...(this.#lost.get(name) ?? []), fn]);
  }

  /** Stops renewing and releases every lease, so another core takes them over at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    // A database that does not answer does not hold the stop up for longer than a ttl.
    await within(this.#renewing, this.ttlMs).catch(() => undefined);
    const had = this.#held.size > 0;
    this.#held.clear();
    this.#was.clear();
    if (this.#backend && had) {
      await within(this.#backend.release(), this.ttlMs).then(
        () => this.#log.info('leases released'),
        (err: unknown) => this.#log.warn({ err: { message: (err as Error).message } }, 'releasing the leases failed; other cores take them over when they expire'),
      );
    }
  }
}

/** `p`, or a rejection once `ms` passed first. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** This core's holder id: its core id (or host name before the CA made one), pid and a random part. */
export async function leaseHolderId(dataDir: string): Promise<string> {
  const coreId = (await readFile(join(dataDir, CA_FILES.dir, CA_FILES.coreId), 'utf8').catch(() => hostname())).trim().slice(0, 100);
  return `${coreId}:${process.pid}:${randomBytes(4).toString('hex')}`;
}
