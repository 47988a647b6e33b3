import { taskEventId } from '@outpost/common';

/** A step's task as the core sends it (see the core's tasks README). */
export interface TaskSpec {
  kind: 'command' | 'script' | 'builtin';
  program?: string | undefined;
  args?: string[] | undefined;
  env?: Record<string, string> | undefined;
  cwd?: string | undefined;
  script?: string | undefined;
  interpreter?: string | undefined;
  builtin?: 'reboot' | 'shutdown' | 'reboot-to-automation' | undefined;
  timeoutMs: number;
}

export interface RunStep {
  name: string;
  task: TaskSpec;
  successCodes: number[];
  onFailure: 'stop' | 'continue' | 'retry';
  retries: number;
}

export interface RunSpec {
  id: string;
  job: string;
  steps: RunStep[];
  expiresAt: number;
  cancelled: boolean;
}

export type EventState = 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';

/** `id` = `run:agent:step:attempt:state`; `step` -1 is the run as a whole. */
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
