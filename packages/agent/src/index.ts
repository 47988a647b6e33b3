export { createAgent, type OutpostAgent, type AgentDeps, type AgentStats, type AgentState } from './agent.js';
export { agentConfigSchema, type AgentConfig, type AgentConfigInput } from './config.js';
export { AgentErrors, CoreHttpError, isCoreHttpError, type AgentErrorCode } from './errors.js';
export { createCoreClient, type CoreClient, type CoreClientOptions } from './core-client.js';
export type { AgentRemoteConfig, EnrollRequest, EnrollResponse, HeartbeatRequest, HeartbeatResponse } from './core-api.js';
export { createIdentityStore, IDENTITY_FILE, type Identity, type IdentityStore } from './identity-store.js';
export { collectNetInfo, type NetInfo } from './net-info.js';
export {
  encodeHeartbeat,
  openHeartbeatAck,
  parseAckPayload,
  type HeartbeatAck,
  type AckResult,
  type AckDropReason,
  type HeartbeatStamp,
  type ConfigSerial,
} from './heartbeat-datagram.js';
export {
  createSwarm,
  type Swarm,
  type SwarmOptions,
  type EnrollReport,
  type HeartbeatPhaseOptions,
  type HeartbeatReport,
} from './swarm/swarm.js';
export { LatencyHistogram, type LatencySummary } from './swarm/histogram.js';
export { createTaskAgent, type TaskAgent, type TaskAgentDeps, type TaskAgentStats } from './tasks/task-agent.js';
export { agentTasksConfigSchema, type AgentTasksConfig } from './tasks/task-config.js';
export { runStep, type StepOutcome, type RunnerOptions } from './tasks/runner.js';
export { downloadPackage, destinationOf, PackageDownloadErrors, type DownloadPackageOptions, type DownloadPackageResult } from './packages/download.js';
export { createTransport, type Transport, type TransportOptions, type Route } from './transport/transport.js';
export { openTunnel, tlsOverTunnel, type GatewayEndpoint, type TunnelCredentials } from './transport/tunnel.js';
export { createTaskSwarm, type TaskSwarm, type TaskSwarmOptions, type TaskSwarmResult, type TaskSwarmMode } from './tasks/swarm-tasks.js';
