import { createHash } from 'node:crypto';

/**
 * Milliseconds until an agent's next poll slot. Each agent gets a fixed offset in the
 * interval (from a hash of its id), so 15,000 agents polling every 30 minutes arrive
 * evenly, about 8 a second, instead of all at once after a restart.
 */
export function msUntilPollSlot(agentId: string, intervalMs: number, now: number): number {
  const offset = createHash('sha256').update(agentId).digest().readUInt32BE(0) % intervalMs;
  const sinceSlot = (((now - offset) % intervalMs) + intervalMs) % intervalMs;
  return intervalMs - sinceSlot;
}
