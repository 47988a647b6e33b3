export { createTaskServer, type TaskServer, type TaskServerDeps } from './task-server.js';
export { taskServerConfigSchema, type TaskServerConfig, type TaskServerConfigInput } from './config.js';
export { TaskServerErrors } from './errors.js';
export { msUntilPollSlot } from './poll-slot.js';
export { WS_PATH } from './ws-hub.js';
export type { StatusEvent, RunSpec, WorkResponse, WsMessage, Via } from './protocol.js';
