import type { CoreEvents } from './events.js';
import type { Router } from '@koa/router';
import type { AppState, Database, Logger, OutpostError } from '@outpost/common';
import type { CoreConfig } from './config.js';
import type { Registry, Clock } from './registry.js';
import type { Leases } from './leases.js';
import type { ChangeFeed } from './journal.js';

/** What the core hands each of its modules (packages, tasks, ...). */
export interface CoreContext {
  config: CoreConfig;
  log: Logger;
  clock: Clock;
  /** The core's database: a module keeps its data in sublevels of its own name. */
  db: Database;
  /**
   * The store as several cores share it: `onRemote(sublevel, fn)` gets the changes other
   * cores make to this module's records (PostgreSQL; never on level), `sync()` applies what
   * they committed so far (before an answer that must reflect it, e.g. a task server's
   * work page right after another core made a run). `feed` is the store's change journal
   * (journal.ts); `dispatch(sublevel, key, value)` runs the `onRemote` handlers as if another
   * core had made that change (a replicated record just written: its module's memory follows).
   */
  store: {
    kind: 'level' | 'postgres';
    onRemote(sublevel: string, fn: (key: string, value: unknown) => void): void;
    sync(): Promise<void>;
    feed: ChangeFeed;
    dispatch(sublevel: string, key: string, value: unknown): void;
  };
  registry: Registry;
  /** The core's typed event stream (events.ts): subscribe with `ctx.events.on(name, fn)`; never replace another module's handler. */
  events: CoreEvents;
  /** Work that must run on one core at a time checks its lease (see leases.ts): `if (ctx.leases.held('audit.retention'))`. */
  leases: Leases;
  /** The core's public base URL (after the HTTP listener is up). */
  url(): string;
  /**
   * Wakes site servers: a signed TICKLE to each one's tickle address, coalesced (one
   * datagram per server per burst, flags OR-ed). Servers without an address are
   * skipped: they poll.
   */
  tickle(siteServerIds: Iterable<string>, flags: number): void;
  /** Another module of this core by name (`tasks`, `packages`, ...), for read-only views such as the console's. */
  module(name: string): CoreModule | undefined;
  /** Why a principal is refused (blocked, by any module's `refuses`), or undefined. */
  refuses(principalId: string): OutpostError | undefined;
}

/**
 * Keeps `map` (keyed as the sublevel is) in step with other cores' changes to `sublevel`;
 * `after` runs after each one with the old and the new value (for derived indexes).
 */
export function mirror<V>(store: CoreContext['store'], sublevel: string, map: Map<string, V>, after?: (key: string, old: V | undefined, value: V | undefined) => void): void {
  store.onRemote(sublevel, (key, value) => {
    const old = map.get(key);
    if (value === undefined) map.delete(key);
    else map.set(key, value as V);
    after?.(key, old, value as V | undefined);
  });
}

/**
 * A part of the core that owns its own data and routes. Modules start after the
 * registry, in list order, and stop in reverse. Routes are mounted behind bearer auth.
 */
export interface CoreModule {
  readonly name: string;
  start?(ctx: CoreContext): Promise<void>;
  routes?(router: Router<AppState>, ctx: CoreContext): void;
  /** Routes mounted before bearer auth (no credential: static files, nothing private). */
  publicRoutes?(router: Router<AppState>, ctx: CoreContext): void;
  /**
   * The core is stopping: end long-lived responses (server-sent events) now, so closing
   * the HTTP listener does not wait for them. Called before the listener closes.
   */
  closing?(): void;
  stop?(): Promise<void>;
  stats?(): Record<string, unknown>;
  /**
   * An error to answer every call of this agent or site server with, though its
   * credential is right (the CA module: a blocked principal gets `CORE_CA_BLOCKED`, so it
   * knows to stop retrying); undefined lets it through.
   */
  refuses?(principalId: string): OutpostError | undefined;
}
