export { PgLevel, type PgLevelOptions, type ChangeEvent, type JournalEvent, type SharedWriteOptions } from './pg-level.js';
export { MIGRATIONS } from './schema.js';
export { PgLeases, LEASES_TABLE, type HeldLeases, type LeaseQueries, type PgLeasesOptions } from './leases.js';
