import type { Logger } from '@outpost/common';
import type { AuditEntry } from './audit/entry.js';
import type { AgentRecord } from './model.js';

/**
 * What happens in a core that other parts of it act on, by name, with its payload. One
 * typed stream replaces the per-module hook slots (`registry.onAgentsChanged = ...`, each
 * module chaining the previous one): a module subscribes to what it needs and never sees,
 * wraps or breaks another's handler.
 */
export interface CoreEventMap {
  /** Agents' config serials changed (sites, grants, task server assignment): their servers re-read them. */
  'agents.changed': { ids: readonly string[] };
  /** An agent enrolled (the boot module starts a computer's pending job). */
  'agent.enrolled': { agent: AgentRecord };
  /** Site servers' config serials changed: the core tickles them. */
  'site-servers.changed': { ids: readonly string[] };
  /** An audit entry was appended: `local` by this core (exported here), else by another core on the same store. */
  'audit.appended': { entry: AuditEntry; local: boolean };
}

export type CoreEventName = keyof CoreEventMap;
type Listener<K extends CoreEventName> = (payload: CoreEventMap[K]) => void;

/**
 * The core's event stream. Listeners run synchronously, in subscription order, after the
 * change they describe committed; one that throws is logged with the event's name and the
 * rest still run (an emitter never fails because of a listener). `on` returns an unsubscribe.
 * Listeners with async work start it and catch its errors themselves.
 */
export class CoreEvents {
  readonly #listeners = new Map<CoreEventName, Set<(payload: never) => void>>();
  /** Listener failures, by event (`outpost_core_event_listener_errors_total`). */
  readonly errors = new Map<CoreEventName, number>();

  constructor(private readonly log?: Logger) {}

  on<K extends CoreEventName>(name: K, fn: Listener<K>): () => void {
    let set = this.#listeners.get(name);
    if (!set) this.#listeners.set(name, (set = new Set()));
    // A wrapper per subscription: the same function subscribed twice runs twice and unsubscribes once each.
    const one = (payload: CoreEventMap[K]): void => fn(payload);
    set.add(one as (payload: never) => void);
    return () => void set.delete(one as (payload: never) => void);
  }

  emit<K extends CoreEventName>(name: K, payload: CoreEventMap[K]): void {
    const set = this.#listeners.get(name);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as Listener<K>)(payload);
      } catch (err) {
        this.errors.set(name, (this.errors.get(name) ?? 0) + 1);
        this.log?.error({ err, event: name }, 'core event listener failed');
      }
    }
  }

  /** Listeners of `name` (stats, tests). */
  listeners(name: CoreEventName): number {
    return this.#listeners.get(name)?.size ?? 0;
  }
}
