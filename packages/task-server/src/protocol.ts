import { z } from '@outpost/common';

/**
 * What travels between the core, the task server and agents. Status events are the
 * core's (`POST /task-service/events`): `id` = `run:agent:step:attempt:state`.
 */
export const EVENT_STATES = ['tickled', 'fetched', 'running', 'succeeded', 'failed', 'skipped', 'cancelled', 'expired'] as const;
export type Via = 'udp' | 'ws' | 'poll';

export const statusEventSchema = z
  .object({
    id: z.string().min(1).max(256),
    run: z.string().min(1).max(64),
    agent: z.string().min(1).max(64),
    step: z.number().int().min(-1).max(1_000),
    attempt: z.number().int().min(0).max(1_000),
    state: z.enum(EVENT_STATES),
    at: z.number().int().min(0),
    exitCode: z.number().int().optional(),
    error: z.string().max(1_024).optional(),
    output: z.string().max(256 * 1024).optional(),
    truncated: z.boolean().optional(),
    via: z.enum(['udp', 'ws', 'poll']).optional(),
  })
  .strict();
export type StatusEvent = z.infer<typeof statusEventSchema>;

export const agentEventsBody = z.object({ events: z.array(statusEventSchema).min(1).max(1_000) }).strict();

export const eventId = (e: Pick<StatusEvent, 'run' | 'agent' | 'step' | 'attempt' | 'state'>): string => `${e.run}:${e.agent}:${e.step}:${e.attempt}:${e.state}`;

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
