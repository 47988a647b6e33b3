import { z } from 'zod';

/**
 * The task service's wire messages, declared once and parsed by both ends:
 *
 * - the status event agents report and task servers forward to the core
 *   (`POST /task-service/events`), with the agent's end-to-end `mac`;
 * - a run as the core signs it and an agent receives it (`GET /agent/work`), with the
 *   core's `sig` and the agent's `ticket` (see `work/run-signature.ts`, `work/work-mac.ts`);
 * - the core's pending-work page for a task server (`GET /task-service/pending`), which
 *   carries the signature and one ticket per agent, untouched by the task server;
 * - the agent's assignment/config document (`GET /agents/:id/config`).
 */
export const TASK_EVENT_STATES = ['tickled', 'fetched', 'running', 'succeeded', 'failed', 'skipped', 'cancelled', 'expired'] as const;
export type TaskEventState = (typeof TASK_EVENT_STATES)[number];

/**
 * `id` is `run:agent:step:attempt:state`, so redelivery is idempotent at every hop; `step`
 * -1 is the run as a whole on that agent. `mac`: the agent's HMAC over the rest
 * (`eventMac`); `tickled`/`fetched` at step -1 are hop marks the task server writes,
 * without one.
 */
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
    mac: z.string().max(64).optional(),
  })
  .strict();
export type TaskStatusEvent = z.infer<typeof taskStatusEventSchema>;

/** The idempotency key of a status event. */
export const taskEventId = (e: { run: string; agent: string; step: number; attempt: number; state: string }): string =>
  `${e.run}:${e.agent}:${e.step}:${e.attempt}:${e.state}`;

/** Why an agent refused a run it was sent (counted, logged, reported as `refused: <reason>`). */
export const WORK_REFUSAL_REASONS = ['unsigned', 'bad-signature', 'bad-ticket', 'expired', 'replayed'] as const;
export type WorkRefusalReason = (typeof WORK_REFUSAL_REASONS)[number];

/** One step's task as agents run it (server tasks never reach agents). */
export const agentTaskSpecSchema = z
  .object({
    kind: z.enum(['command', 'script', 'builtin']),
    program: z.string().max(4_096).optional(),
    args: z.array(z.string().max(32_768)).max(1_024).optional(),
    env: z.record(z.string().max(256), z.string().max(32_768)).optional(),
    cwd: z.string().max(4_096).optional(),
    script: z.string().max(256 * 1024).optional(),
    interpreter: z.string().max(4_096).optional(),
    builtin: z.enum(['reboot', 'shutdown', 'reboot-to-automation']).optional(),
    timeoutMs: z.number().int().min(1),
  })
  .strict();
export type AgentTaskSpec = z.infer<typeof agentTaskSpecSchema>;

export const agentRunStepSchema = z
  .object({
    name: z.string().min(1).max(128),
    task: agentTaskSpecSchema,
    successCodes: z.array(z.number().int()).min(1).max(256),
    onFailure: z.enum(['stop', 'continue', 'retry']),
    retries: z.number().int().min(0).max(100),
  })
  .strict();
export type AgentRunStep = z.infer<typeof agentRunStepSchema>;

const runId = z.string().min(1).max(64);
const sig = z.string().max(128);
/** Nonce: 16 random bytes, base64url. */
const nonce = z.string().min(1).max(64);

/**
 * A run as an agent receives it: the signed fields (`id` is the signed `run`), the core's
 * `sig`, this agent's `ticket`; a cancelled run also carries `cancelSig`. The agent checks
 * `sig` over the raw fields it received before it parses `steps` with
 * {@link agentRunStepSchema}, so what it runs is what the core signed.
 */
export const workRunSchema = z
  .object({
    id: runId,
    job: z.string().min(1).max(128),
    steps: z.array(z.unknown()).max(256),
    expiresAt: z.number().int().min(0),
    nonce,
    sig,
    ticket: z.string().max(64),
    cancelled: z.boolean(),
    cancelSig: sig.optional(),
  })
  .strict();
export type WorkRun = z.infer<typeof workRunSchema>;

/**
 * `GET /api/v1/agent/work` answer. Runs are parsed one by one (`workRunSchema`): one
 * malformed run is refused alone.
 */
export const workResponseSchema = z
  .object({
    runs: z.array(z.unknown()).max(10_000),
    /** When to poll next if nothing wakes the agent (its slot in the poll interval). */
    pollAfterMs: z.number().min(0),
  })
  .strict();
export type WorkResponse = Omit<z.infer<typeof workResponseSchema>, 'runs'> & { runs: WorkRun[] };

/** A run on the core's pending page: the signed fields, `sig`, and per agent its ticket (`tickets[i]` is `agents[i]`'s). */
export const pendingRunSchema = z
  .object({
    id: runId,
    seq: z.number().int().min(0),
    job: z.string().min(1).max(128),
    steps: z.array(z.unknown()).max(256),
    expiresAt: z.number().int().min(0),
    nonce,
    sig,
    cancelled: z.boolean(),
    cancelSig: sig.optional(),
    agents: z.array(z.string().min(1).max(64)).max(50_000),
    tickets: z.array(z.string().max(64)).max(50_000),
  })
  .strict()
  .refine((r) => r.agents.length === r.tickets.length, { message: 'one ticket per agent' });
export type PendingRun = z.infer<typeof pendingRunSchema>;

export const pendingPageSchema = z
  .object({ seq: z.number().int().min(0), runs: z.array(pendingRunSchema).max(50_000), next: z.string().max(64).optional() })
  .strict();
export type PendingPage = z.infer<typeof pendingPageSchema>;

/** `GET /task-service/agents`: a task server's agents, each with its task key (base64). */
export const taskAgentKeysPageSchema = z
  .object({ items: z.array(z.object({ id: z.string().min(1).max(64), key: z.string().min(1).max(64) }).strict()).max(50_000), next: z.string().max(64).optional() })
  .strict();
export const taskAgentKeySchema = z.object({ id: z.string().min(1).max(64), key: z.string().min(1).max(64) }).strict();

/** `POST /task-service/events` answer: `refused` events were acknowledged but not applied (never sent again). */
export const eventsAnswerSchema = z
  .object({ accepted: z.number().int().min(0), duplicates: z.number().int().min(0), unknown: z.number().int().min(0), refused: z.number().int().min(0) })
  .strict();
export type EventsAnswer = z.infer<typeof eventsAnswerSchema>;

/** Config serials are opaque (the core sends a string hash); compared for equality only. */
const serial = z.union([z.string(), z.number()]);

/**
 * `GET /api/v1/agents/:id/config`: the agent's assignment. Members a newer core adds are
 * dropped rather than refused (an old agent keeps working with a newer core).
 */
export const agentConfigDocSchema = z.object({
  serial,
  id: z.string().min(1).max(64),
  name: z.string(),
  heartbeatIntervalMs: z.number().int().positive(),
  configPollIntervalMs: z.number().int().positive(),
  datagramPort: z.number().int().min(0).max(65535),
  taskServer: z.object({ id: z.string().min(1).max(64), url: z.string().min(1).max(2_048), tickleAddress: z.string().optional() }).optional(),
});
export type AgentConfigDoc = z.infer<typeof agentConfigDocSchema>;

/** `GET /api/v1/agents/:id/work-key`: the core's work-signing public key (SPKI DER, base64). */
export const workKeyAnswerSchema = z.object({ workKey: z.string().min(1).max(4_096) }).strict();
