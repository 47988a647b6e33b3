import { createHmac } from 'node:crypto';

/**
 * The key an agent shares with one task server, derived from the agent's datagram key
 * (`datagramKey(secret)`, which the core stores and the agent computes) and the task
 * server's id. The core hands it to the agent's task server; the agent derives it
 * itself. It signs the task server's tickles to the agent and, through
 * {@link taskBearerSecret}, authenticates the agent's calls to the task server. A task
 * server never learns the agent's core credential or heartbeat key, and a key given to
 * one task server is useless with another.
 */
export function agentTaskKey(agentDatagramKey: Buffer, taskServerId: string): Buffer {
  return createHmac('sha256', agentDatagramKey).update('outpost-task\0').update(taskServerId).digest();
}

/** The bearer secret an agent presents to its task server: `Bearer <agentId>.<this>`. */
export function taskBearerSecret(taskKey: Buffer): string {
  return createHmac('sha256', taskKey).update('outpost-task-http').digest('base64url');
}
