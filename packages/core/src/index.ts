export { createCore, type Core, type CoreDeps } from './core.js';
export { coreConfigSchema, type CoreConfig, type CoreConfigInput } from './config.js';
export { CoreErrors } from './errors.js';
export { TaskErrors } from './tasks/errors.js';
export type { AgentState, AgentView, SiteServerView, Clock } from './registry.js';
export type { EnrollKind, SiteServerServices } from './model.js';
export { ADMIN_TOKEN_FILE } from './admin-token.js';
export type { CoreModule, CoreContext } from './module.js';
export { Tickler } from './tickler.js';
