import { TASK_EVENT_STATES } from '@outpost/common';

/**
 * What the tasks module persists and sends. Records that exist once per agent and run
 * use short keys: a 50,000-agent run is 50,000 of them, in memory and on disk.
 */

/** `server`: run by the core (program or script), once per target agent; see README "Server tasks". */
export type TaskKind = 'command' | 'script' | 'builtin' | 'server';
/** `reboot-to-automation`: args [image, job?]: the one-shot network boot into that image is set (boot module), then the computer reboots. */
export type Builtin = 'reboot' | 'shutdown' | 'reboot-to-automation';

/** What an agent needs to run one step (no names, no references). */
export interface TaskSpec {
  kind: TaskKind;
  /** command: the program (no shell) and its arguments. */
  program?: string | undefined;
  args?: string[] | undefined;
  env?: Record<string, string> | undefined;
  cwd?: string | undefined;
  /** script: its text and the interpreter that reads it from a file. */
  script?: string | undefined;
  interpreter?: string | undefined;
  builtin?: Builtin | undefined;
  timeoutMs: number;
}

export interface TaskDef extends TaskSpec {
  name: string;
  description?: string | undefined;
  createdAt: number;
  updatedAt: number;
}

export type OnFailure = 'stop' | 'continue' | 'retry';

export interface JobStepDef {
  /** Exactly one of task and job. */
  task?: string | undefined;
  job?: string | undefined;
  /** Exit codes that count as success. @default [0] */
  successCodes: number[];
  onFailure: OnFailure;
  /** With `retry`: attempts after the first. */
  retries: number;
}

export interface JobDef {
  name: string;
  description?: string | undefined;
  steps: JobStepDef[];
  createdAt: number;
  updatedAt: number;
}

/** One step of a run: the job flattened (nested jobs inlined), tasks resolved. */
export interface RunStep {
  name: string;
  task: TaskSpec;
  successCodes: number[];
  onFailure: OnFailure;
  retries: number;
}

export const AGENT_RUN_STATES = ['queued', 'tickled', 'fetched', 'running', 'succeeded', 'failed', 'expired', 'cancelled'] as const;
export type AgentRunState = (typeof AGENT_RUN_STATES)[number];
export const TERMINAL: ReadonlySet<AgentRunState> = new Set(['succeeded', 'failed', 'expired', 'cancelled']);

export type Counts = Record<AgentRunState, number>;

export interface RunRecord {
  id: string;
  job: string;
  steps: RunStep[];
  createdAt: number;
  expiresAt: number;
  /** Change sequence: task servers fetch runs whose seq is above the last they saw. */
  seq: number;
  agents: number;
  /**
   * The sites of its targets when it was made (a scoped administrator sees a run with one
   * of its sites); `unsited`: some target was in no site.
   */
  sites?: string[] | undefined;
  unsited?: true | undefined;
  counts: Counts;
  /** Failed agents grouped by error. */
  failures: Record<string, number>;
  /** Run-once key: agents that already ran a run with this key are skipped. */
  once?: string | undefined;
  /** A run of server tasks: the core runs its steps (per target agent); task servers never see it. */
  server?: true | undefined;
  cancelledAt?: number | undefined;
  finishedAt?: number | undefined;
  /**
   * The core's Ed25519 signature (base64) over the run as agents receive it,
   * `{ v: 1, run, job, steps, expiresAt, nonce }` (`runBody` in @outpost/common), made
   * once at creation; `cancelSig` over `{ v: 1, run, cancelled: true }` once cancelled.
   */
  nonce?: string | undefined;
  sig?: string | undefined;
  cancelSig?: string | undefined;
}

export type StepState = 'running' | 'succeeded' | 'failed' | 'skipped';

/** One step's latest result on one agent. */
export interface StepResult {
  s: StepState;
  /** Attempt (0 = first). */
  n: number;
  /** Exit code. */
  x?: number | undefined;
  /** Error: `exit`, `timeout`, `refused`, `spawn`, `interrupted`. */
  e?: string | undefined;
  /** Began, finished (agent clock, ms). */
  b?: number | undefined;
  f?: number | undefined;
  /** Output was cut at the cap. */
  tr?: boolean | undefined;
  /** Output bytes stored. */
  o?: number | undefined;
}

/**
 * Hop times of one agent in one run, ms since the epoch: queued (run created),
 * dispatched (its task server fetched the work), tickled, fetched (the agent fetched
 * it), started (first step began), ended (last status), recorded (the core stored the
 * final status).
 */
export interface Hops {
  q: number;
  d?: number | undefined;
  t?: number | undefined;
  f?: number | undefined;
  r?: number | undefined;
  e?: number | undefined;
  c?: number | undefined;
}

/** How the work reached the agent; `core`: a server task, run by the core itself. */
export type Via = 'udp' | 'ws' | 'poll' | 'core';

export interface AgentRun {
  /** Run id and agent id. */
  r: string;
  a: string;
  s: AgentRunState;
  h: Hops;
  st: Array<StepResult | null>;
  /** How the wake-up reached it. */
  v?: Via | undefined;
  /** Why it failed, expired or was not reached. */
  e?: string | undefined;
  /** The task server the run was last handed out to for this agent: only it (or the agent's current one) may report for it. */
  ts?: string | undefined;
}

export const EVENT_STATES = TASK_EVENT_STATES;
export type EventState = (typeof EVENT_STATES)[number];

/**
 * A status event as task servers forward it. `id` is
 * `${run}:${agent}:${step}:${attempt}:${state}`, so redelivery is idempotent at every hop.
 * `step` -1 is the run as a whole on that agent.
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
  via?: Via | undefined;
  /** The agent's end-to-end MAC (`eventMac`); hop marks the task server writes have none. */
  mac?: string | undefined;
}

export const emptyCounts = (): Counts => ({ queued: 0, tickled: 0, fetched: 0, running: 0, succeeded: 0, failed: 0, expired: 0, cancelled: 0 });
