import { sublevel, type BatchOp, type Database, type Sublevel } from '@outpost/common';
import type { RunSpec, StatusEvent } from './protocol.js';

export interface IdentityRecord {
  id: string;
  credential: string;
  coreUrl: string;
}

/** Pending work of one agent in one run. */
export interface WorkRecord {
  /** The agent's ticket for the run, as the core issued it (served with the run). */
  k?: string | undefined;
  /** Tickled at, fetched at (ms). */
  t?: number | undefined;
  f?: number | undefined;
  /** Tickles sent. */
  n?: number | undefined;
  /**
   * Loaded at start: it may have been fetched before (fetch and tickle marks live in
   * memory only), so a cancel must reach the agent. Never written.
   */
  m?: boolean | undefined;
}

/**
 * The task server's sublevels: `meta` (identity, last pending seq), `keys` (agent id →
 * task key, base64, as the core gave it), `addrs` (agent id → `host:port` for tickles),
 * `runs` (run id → signed spec), `work` (`agentId!runId` → {@link WorkRecord}) and
 * `outbox-groups` (group sequence → the status events of one group commit not yet
 * acknowledged by the core).
 */
export class TsStore {
  readonly meta: Sublevel<unknown>;
  readonly keys: Sublevel<string>;
  readonly addrs: Sublevel<string>;
  readonly runs: Sublevel<RunSpec>;
  readonly work: Sublevel<WorkRecord>;
  /** Status events stored one per record (earlier versions; read once at start and moved). */
  readonly outbox: Sublevel<StatusEvent>;
  /** Status events not yet acknowledged by the core, one record per group commit. */
  readonly outboxGroups: Sublevel<StatusEvent[]>;

  constructor(readonly db: Database) {
    this.meta = sublevel(db, 'meta');
    this.keys = sublevel(db, 'keys');
    this.addrs = sublevel(db, 'addrs');
    this.runs = sublevel(db, 'runs');
    this.work = sublevel(db, 'work');
    this.outbox = sublevel(db, 'outbox');
    this.outboxGroups = sublevel(db, 'outbox-groups');
  }

  put<V>(s: Sublevel<V>, key: string, value: V): BatchOp {
    return { type: 'put', sublevel: s, key, value };
  }

  del<V>(s: Sublevel<V>, key: string): BatchOp {
    return { type: 'del', sublevel: s, key };
  }

  async write(ops: BatchOp[]): Promise<void> {
    for (let i = 0; i < ops.length; i += 5_000) await this.db.batch(ops.slice(i, i + 5_000));
  }
}
