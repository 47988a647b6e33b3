export { PgLevel, type PgLevelOptions, type ChangeEvent, type SharedWriteOptions } from './pg-level.js';
export { MIGRATIONS } from './schema.js';
