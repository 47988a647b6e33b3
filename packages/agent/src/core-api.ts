import { agentConfigDocSchema, OutpostError, parseWorkKey, workKeyAnswerSchema, z, type AgentConfigDoc } from '@outpost/common';
import type { CoreClient } from './core-client.js';
import { AgentErrors } from './errors.js';

/**
 * The parts of the core's `/api/v1` the agent uses (see @outpost/core README), with
 * schemas for the answers: an answer that is not what the contract promises is a clear
 * `AGENT_CORE_BAD_RESPONSE`, not an undefined deep inside the agent. Schemas are loose
 * (unknown fields pass) so a newer core with more fields still works.
 */

/** `POST /enroll` body for an agent. */
export interface EnrollRequest {
  token: string;
  name: string;
  macs?: string[];
  ips?: string[];
  os?: string;
  /** A PEM PKCS#10 request (createKeyAndCsr): the answer then carries a certificate. */
  csr?: string;
}

/** `POST /ca/renew` answer. */
export const renewResponseSchema = z.looseObject({
  certificate: z.string(),
  caCertificate: z.string(),
  coreId: z.string(),
  coreUrl: z.string(),
  renewAfter: z.string(),
});

/** Config serials are opaque (the core sends a string hash); compared for equality only. */
const serial = z.union([z.string(), z.number()]);

export const enrollResponseSchema = z.object({
  id: z.string().min(1),
  kind: z.literal('agent'),
  credential: z.string().min(3),
  datagramPort: z.number().int().min(0).max(65535),
  heartbeatIntervalMs: z.number().int().positive(),
  configPollIntervalMs: z.number().int().positive().optional(),
  /** With a CSR in the request, and a core with a CA: the agent's certificate and what goes with it. */
  certificate: z.string().optional(),
  caCertificate: z.string().optional(),
  coreId: z.string().optional(),
  coreUrl: z.string().optional(),
  /** The core's work-signing public key: pinned in the identity. */
  workKey: z.string().min(1).max(4_096).optional(),
});
export type EnrollResponse = z.infer<typeof enrollResponseSchema>;

/** `POST /agents/:id/heartbeat` body. */
export interface HeartbeatRequest {
  configSerial?: string | number;
  ips?: string[];
}

export const heartbeatResponseSchema = z.object({
  configSerial: serial,
  heartbeatIntervalMs: z.number().int().positive(),
});
export type HeartbeatResponse = z.infer<typeof heartbeatResponseSchema>;

/** `GET /agents/:id/config`: the assignment document, declared in @outpost/common. */
export const agentRemoteConfigSchema = agentConfigDocSchema;
export type AgentRemoteConfig = AgentConfigDoc;

/**
 * `GET /agents/:id/work-key` from the core itself (never through a task server): the
 * work-signing key for an identity enrolled before runs were signed. Undefined when the
 * core has none (tasks off); `AGENT_CORE_BAD_RESPONSE` when it is not an Ed25519 key.
 */
export async function fetchWorkKey(client: CoreClient, agentId: string, bearer: string): Promise<string> {
  const { workKey } = expectShape(workKeyAnswerSchema, await client.call('GET', `/agents/${encodeURIComponent(agentId)}/work-key`, { bearer }), 'GET /agents/:id/work-key');
  if (!parseWorkKey(workKey)) throw new OutpostError(AgentErrors.CORE_BAD_RESPONSE, 'the core\'s work key is not an Ed25519 public key', { status: 502 });
  return workKey;
}

/** Checks an answer against its schema; `AGENT_CORE_BAD_RESPONSE` naming what is wrong. */
export function expectShape<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => `${i.path.map(String).join('.') || '(body)'}: ${i.message}`).join('; ');
  throw new OutpostError(AgentErrors.CORE_BAD_RESPONSE, `the core's answer to ${what} is not as expected: ${problems}`, { status: 502 });
}
