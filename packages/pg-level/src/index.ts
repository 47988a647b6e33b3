export { PgLevel, type PgLevelOptions, type ChangeEvent } from './pg-level.js';
export { MIGRATIONS } from './schema.js';
