import { sublevel, type BatchOp, type Database, type Sublevel } from '@outpost/common';
import type { RunSpec, StatusEvent } from './protocol.js';

export interface IdentityRecord {
  id: string;
  credential: string;
  coreUrl: string;
}

/** Pending work of one agent in one run. */
export interface WorkRecord {
  /** Tickled at, fetched at (ms). */
  t?: number | undefined;
  f?: number | undefined;
  /** Tickles sent. */
  n?: number | undefined;
}

/**
 * The task server's sublevels: `meta` (identity, last pending seq), `keys` (agent id →
 * task key, base64, as the core gave it), `addrs` (agent id → `host:port` for tickles),
 * `runs` (run id → spec), `work` (`agentId!runId` → {@link WorkRecord}) and `outbox`
 * (event id → status event not yet acknowledged by the core).
 */
export class TsStore {
  readonly meta: Sublevel<unknown>;
  readonly keys: Sublevel<string>;
  readonly addrs: Sublevel<string>;
  readonly runs: Sublevel<RunSpec>;
  readonly work: Sublevel<WorkRecord>;
  readonly outbox: Sublevel<StatusEvent>;

  constructor(readonly db: Database) {
    this.meta = sublevel(db, 'meta');
    this.keys = sublevel(db, 'keys');
    this.addrs = sublevel(db, 'addrs');
    this.runs = sublevel(db, 'runs');
    this.work = sublevel(db, 'work');
    this.outbox = sublevel(db, 'outbox');
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
