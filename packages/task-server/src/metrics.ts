import { createServiceMetrics, levelDbBytes, type ServiceMetrics } from '@outpost/common';
import type { AgentTickler } from './agent-tickler.js';
import type { CoreSync } from './core-sync.js';
import type { CoreTickleStats } from '@outpost/common/site-link';
import type { Outbox } from './outbox.js';
import type { WsHub } from './ws-hub.js';

export interface TaskServerMetricSources {
  dataDir: string;
  agents: () => number;
  tickler: () => AgentTickler | undefined;
  coreTickles: () => CoreTickleStats | undefined;
  outbox: () => Outbox | undefined;
  ws: () => WsHub | undefined;
  sync: () => CoreSync | undefined;
}

/**
 * The task server's Prometheus metrics (`GET /metrics` on its HTTP listener), read from
 * the counters it keeps: tickles sent to agents (by path) and dropped, the core's tickles
 * received and dropped by reason, status events stored and forwarded, WebSockets, syncs.
 */
export function createTaskServerMetrics(src: TaskServerMetricSources): ServiceMetrics {
  const m = createServiceMetrics({ service: 'task_server' });
  m.gaugeFrom('agents', 'Agents assigned to this task server', src.agents);
  m.counterFrom('tickles_sent_total', 'Wake-ups sent to agents, by path (udp tickle or WebSocket push)', () => {
    const s = src.tickler()?.stats;
    return s ? { udp: s.udp, ws: s.ws } : undefined;
  }, 'via');
  m.counterFrom('tickles_not_sent_total', 'Wake-ups not sent, by reason (unreachable agent, dropped by the test drop rate, send error)', () => {
    const s = src.tickler()?.stats;
    return s ? { unreachable: s.unreachable, dropped: s.dropped, error: s.errors } : undefined;
  }, 'reason');
  m.counterFrom('core_tickles_received_total', 'Tickles from the core received', () => src.coreTickles()?.received);
  m.counterFrom('core_tickles_accepted_total', 'Tickles from the core accepted', () => src.coreTickles()?.accepted);
  m.counterFrom('core_tickles_dropped_total', 'Tickles from the core dropped, by reason', () => src.coreTickles()?.dropped, 'reason');
  m.counterFrom('events_stored_total', 'Status events from agents stored (duplicates not counted)', () => src.outbox()?.stats.received);
  m.counterFrom('events_duplicate_total', 'Status events received again', () => src.outbox()?.stats.duplicates);
  m.counterFrom('events_forwarded_total', 'Status events the core acknowledged', () => src.outbox()?.stats.forwarded);
  m.counterFrom('event_forward_failures_total', 'Failed forwards of event batches to the core', () => src.outbox()?.stats.failures);
  m.counterFrom('events_dropped_total', 'Status events dropped because the core refused them (bad MAC, agent not served here) or rejected them as malformed', () => {
    const s = src.outbox()?.stats;
    return s ? { refused: s.refusedByCore, rejected: s.rejectedByCore } : undefined;
  }, 'reason');
  m.counterFrom('agent_lookups_total', 'Lookups of unknown agents at the core, by outcome (asked, limited by the lookup rate, answered from the negative cache)', () => {
    const s = src.sync()?.stats;
    return s ? { asked: s.lookups, limited: s.lookupsLimited, cached: s.negativeHits } : undefined;
  }, 'outcome');
  m.gaugeFrom('events_pending', 'Status events stored and not yet acknowledged by the core', () => src.outbox()?.stats.pending);
  m.gaugeFrom('websockets', 'Agent WebSockets open', () => src.ws()?.stats.connected);
  m.counterFrom('core_syncs_total', 'Syncs of agents and pending work with the core, by outcome', () => {
    const s = src.sync()?.stats;
    return s ? { ok: s.syncs, failed: s.failures } : undefined;
  }, 'outcome');
  m.gaugeFrom('level_db_bytes', 'Size of the level database on disk', () => levelDbBytes(src.dataDir));
  return m;
}
