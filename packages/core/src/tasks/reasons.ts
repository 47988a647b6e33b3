import type { Registry } from '../registry.js';
import type { AgentRun } from './model.js';

/**
 * Why an agent has not finished (yet): the hop it is stuck at and what the core knows
 * about its reachability. Shown by `run show` and stored when a run expires.
 */
export function reasonNotReached(ar: AgentRun, registry: Registry, server?: boolean): string {
  const agent = registry.store.agents.get(ar.a);
  if (!agent) return 'agent-deleted';
  if (ar.s === 'running') return 'still-running';
  if (ar.s === 'fetched') return 'fetched-not-started';
  // A server task: the core runs it; the agent itself plays no part.
  if (server) return 'waiting-for-core';
  const ts = agent.taskServer;
  if (!ts) return 'no-task-server';
  if (ar.h.d === undefined && ar.s === 'queued') return registry.siteServerOnline(ts) ? 'task-server-has-not-fetched' : 'task-server-offline';
  const state = registry.agentState(ar.a);
  if (state === 'offline') return 'agent-offline';
  if (state === 'poll-only') return 'waiting-for-poll';
  return ar.s === 'tickled' ? 'tickle-unanswered' : 'waiting-for-tickle';
}
