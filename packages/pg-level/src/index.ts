export { PgLevel, type PgLevelOptions } from './pg-level.js';
export { MIGRATIONS } from './schema.js';
