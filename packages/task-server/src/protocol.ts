import { taskStatusEventSchema, z, type TaskStatusEvent } from '@outpost/common';

/**
 * What travels between the core, the task server and agents. Status events are the
 * core's (`POST /task-service/events`): `id` = `run:agent:step:attempt:state`.
 */
export { TASK_EVENT_STATES as EVENT_STATES, taskStatusEventSchema as statusEventSchema } from '@outpost/common';
export type Via = 'udp' | 'ws' | 'poll';
export type StatusEvent = TaskStatusEvent;

export const agentEventsBody = z.object({ events: z.array(taskStatusEventSchema).min(1).max(1_000) }).strict();

export { taskEventId as eventId } from '@outpost/common';

/** A run as the core's pending-work page carries it. */
export const pendingRunSchema = z.looseObject({
  id: z.string(),
  seq: z.number(),
  job: z.string(),
  steps: z.array(z.looseObject({ name: z.string() })),
  expiresAt: z.number(),
  cancelled: z.boolean(),
  agents: z.array(z.string()),
});
export const pendingPageSchema = z.looseObject({ seq: z.number(), runs: z.array(pendingRunSchema), next: z.string().optional() });
export type PendingRun = z.infer<typeof pendingRunSchema>;

export const agentKeysPageSchema = z.looseObject({ items: z.array(z.object({ id: z.string(), key: z.string() })), next: z.string().optional() });

/** A run as stored here and served to agents. */
export interface RunSpec {
  id: string;
  job: string;
  steps: unknown[];
  expiresAt: number;
  cancelled: boolean;
}

/** `GET /api/v1/agent/work` answer. */
export interface WorkResponse {
  runs: RunSpec[];
  /** When to poll next if nothing wakes the agent (its slot in the poll interval). */
  pollAfterMs: number;
}

/** WebSocket messages, server → agent (JSON text frames). */
export type WsMessage = { t: 'work' } | { t: 'hello'; pollAfterMs: number };
