// Shapes of the core's API as the console reads them (see packages/core/README.md and
// the module READMEs). Only the fields the pages use are listed.

export type { AgentState } from '@outpost/core';
export const RUN_STATES = ['queued', 'tickled', 'fetched', 'running', 'succeeded', 'failed', 'expired', 'cancelled'] as const;
export type AgentRunState = (typeof RUN_STATES)[number];
export type Counts = Record<AgentRunState, number>;

// The live feed's snapshot is the core's own type (type-only: nothing of the core is bundled).
export type { LiveRun, LiveStagingServer, LiveAlarm, LiveSnapshot } from '@outpost/core';
import type { LiveRun } from '@outpost/core';

export interface Site {
  name: string;
  subnets: string[];
  description?: string;
  createdAt: string;
  siteServers: string[];
  agents: number;
}

/** GET /api/v1/site-servers and /agents items: the core's own views. */
export type { SiteServerView as SiteServer, AgentView as Agent } from '@outpost/core';

export interface Page<T> {
  items: T[];
  next?: string;
}

export interface SelectedServer {
  id: string;
  name: string;
  url?: string;
  state: string;
  reason: string;
}

/** What a package's row in the list and its own page both show. */
interface PackageBase {
  id: string;
  name: string;
  version: string;
  files: number;
  size: number;
  state: string;
  enabled: boolean;
  createdAt: string;
}

export interface PackageSummary extends PackageBase {
  servers: { total: number; ready: number; downloading: number; pending: number; failed: number };
}

export interface PackageServerStatus {
  id: string;
  name?: string;
  constrained?: boolean;
  sites?: string[];
  state: 'pending' | 'downloading' | 'ready' | 'failed';
  released: boolean;
  waitingFor?: string;
  bytesDone: number;
  bytesTotal: number;
  lastError?: string;
  nextRetryAt?: string;
  attempt?: number;
  codebase?: string;
  readyAt?: string;
}

export interface PackageView extends PackageBase {
  source: string;
  servers: PackageServerStatus[];
  downloads: { ok: number; failed: number; recent: Array<{ agentId: string; state: string; codebase?: string; error?: string; at: string }> };
  missing?: Array<{ path: string; size: number; received: number; problem?: string }>;
}

export interface Job {
  name: string;
  description?: string;
  steps: Array<{ task?: string; job?: string }>;
}

export interface RunListItem {
  id: string;
  job: string;
  state: LiveRun['state'];
  agents: number;
  counts: Counts;
  createdAt: string;
}

export interface RunView {
  id: string;
  job: string;
  state: LiveRun['state'];
  agents: number;
  counts: Counts;
  failures: Array<{ error: string; count: number }>;
  hops?: Record<string, { count: number; p50: number; p99: number; max: number }>;
  createdAt?: string;
  expiresAt?: string;
}

export interface AgentRunStep {
  name: string;
  state: string;
  attempt?: number;
  exitCode?: number;
  error?: string;
  startedAt?: string;
  finishedAt?: string;
  truncated?: boolean;
  output?: string;
}

export interface AgentRunView {
  run: string;
  agent: string;
  state: AgentRunState;
  error?: string;
  via?: string;
  hops: Record<string, string | undefined>;
  steps: AgentRunStep[];
}
