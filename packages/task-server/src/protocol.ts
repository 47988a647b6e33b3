import { taskStatusEventSchema, z, type TaskStatusEvent, type WorkRun } from '@outpost/common';

/**
 * What travels between the core, the task server and agents. The messages themselves are
 * declared once in @outpost/common (`task-protocol.ts`) and used by every end: status
 * events (`id` = `run:agent:step:attempt:state`, with the agent's `mac`), the core's
 * pending page (signed runs, one ticket per agent), and runs as agents receive them. The
 * task server stores and serves signatures, tickets and MACs untouched: it cannot make
 * them, and an altered one is refused by the agent or the core.
 */
export { TASK_EVENT_STATES as EVENT_STATES, taskStatusEventSchema as statusEventSchema, type PendingRun, type WorkResponse } from '@outpost/common';
export type Via = 'udp' | 'ws' | 'poll';
export type StatusEvent = TaskStatusEvent;

export const agentEventsBody = z.object({ events: z.array(taskStatusEventSchema).min(1).max(1_000) }).strict();

export { taskEventId as eventId } from '@outpost/common';

/** A run as stored here: what the core signed and its signature(s), without any agent's ticket. */
export type RunSpec = Omit<WorkRun, 'ticket'>;

/** WebSocket messages, server → agent (JSON text frames). */
export type WsMessage = { t: 'work' } | { t: 'hello'; pollAfterMs: number };
