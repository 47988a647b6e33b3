import type { TestProject } from 'vitest/node';
import { postgresGate, startPostgres } from '@outpost/testing';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The PostgreSQL server the core-on-postgres project runs the core's tests against ('' without one). */
    coreStoreUrl: string;
  }
}

/**
 * The `core-on-postgres` project: the same core tests as on level, with every core the
 * harness starts keeping its records in this PostgreSQL server (one table per data dir):
 * the store contract's compliance run at the level of the core itself.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const gate = postgresGate('core tests on PostgreSQL');
  if (!gate.run) {
    project.provide('coreStoreUrl', '');
    return async () => undefined;
  }
  const pg = await startPostgres({ fsync: false });
  project.provide('coreStoreUrl', pg.url);
  return () => pg.destroy();
}
