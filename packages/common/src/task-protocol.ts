import { z } from 'zod';

/**
 * The status events agents report and task servers forward to the core
 * (`POST /task-service/events`): one wire contract for all three. `id` is
 * `run:agent:step:attempt:state`, so redelivery is idempotent at every hop; `step` -1 is
 * the run as a whole on that agent.
 */
export const TASK_EVENT_STATES = ['tickled', 'fetched', 'running', 'succeeded', 'failed', 'skipped', 'cancelled', 'expired'] as const;
export type TaskEventState = (typeof TASK_EVENT_STATES)[number];

export const taskStatusEventSchema = z
  .object({
    id: z.string().min(1).max(256),
    run: z.string().min(1).max(64),
    agent: z.string().min(1).max(64),
    step: z.number().int().min(-1).max(1_000),
    attempt: z.number().int().min(0).max(1_000),
    state: z.enum(TASK_EVENT_STATES),
    at: z.number().int().min(0),
    exitCode: z.number().int().optional(),
    error: z.string().max(1_024).optional(),
    output: z.string().max(256 * 1024).optional(),
    truncated: z.boolean().optional(),
    via: z.enum(['udp', 'ws', 'poll']).optional(),
  })
  .strict();
export type TaskStatusEvent = z.infer<typeof taskStatusEventSchema>;

/** The idempotency key of a status event. */
export const taskEventId = (e: { run: string; agent: string; step: number; attempt: number; state: string }): string =>
  `${e.run}:${e.agent}:${e.step}:${e.attempt}:${e.state}`;
