import { taskEventId, type AgentRunStep, type AgentTaskSpec } from '@outpost/common';

/** A step's task as the core sends it (declared in @outpost/common, `agentTaskSpecSchema`). */
export type TaskSpec = AgentTaskSpec;
export type RunStep = AgentRunStep;

/** A run as the agent journals it, after its signature and ticket were checked. */
export interface RunSpec {
  id: string;
  job: string;
  steps: RunStep[];
  expiresAt: number;
  cancelled: boolean;
}

export type EventState = 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';

/**
 * `id` = `run:agent:step:attempt:state`; `step` -1 is the run as a whole. Journaled
 * without a MAC; the reporter adds `mac` (`eventMac`, the key only the core shares) as it
 * sends.
 */
export interface StatusEvent {
  id: string;
  run: string;
  agent: string;
  step: number;
  attempt: number;
  state: EventState;
  at: number;
  exitCode?: number | undefined;
  error?: string | undefined;
  output?: string | undefined;
  truncated?: boolean | undefined;
}

export const makeEvent = (e: Omit<StatusEvent, 'id'>): StatusEvent => ({ id: taskEventId(e), ...e });
