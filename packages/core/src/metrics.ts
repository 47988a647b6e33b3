import { createServiceMetrics, levelDbBytes, type ServiceMetrics } from '@outpost/common';
import type { DatagramServer } from './datagram-server.js';
import type { CoreModule } from './module.js';
import type { Registry } from './registry.js';
import type { Tickler } from './tickler.js';
import type { CoreDatabase } from './store-backend.js';
import { LEASE_NAMES, type Leases } from './leases.js';

export interface CoreMetricsSources {
  dataDir: string;
  registry: () => Registry | undefined;
  datagrams: () => DatagramServer | undefined;
  tickler: () => Tickler | undefined;
  httpHeartbeats: () => number;
  enrollments: () => number;
  modules: readonly CoreModule[];
  /** The PostgreSQL store's figures (undefined on level). */
  store: () => ReturnType<NonNullable<CoreDatabase['stats']>> | undefined;
  leases: () => Leases | undefined;
}

/** Numeric leaves of a stats object as `a.b.c` → n (bounded depth and count). */
export function flattenStats(value: unknown, prefix = '', out: Record<string, number> = {}, depth = 0): Record<string, number> {
  if (depth > 3 || Object.keys(out).length >= 200) return out;
  if (typeof value === 'number' && Number.isFinite(value)) out[prefix] = value;
  else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flattenStats(v, prefix ? `${prefix}.${k}` : k, out, depth + 1);
  }
  return out;
}

/**
 * The core's Prometheus metrics (`GET /metrics`): requests (by the HTTP app), agents and
 * site servers by state, heartbeats by how they came, tickles sent, datagrams dropped by
 * reason, the level database's size, and every module's counters. Read from the counters
 * the core keeps; nothing is counted twice.
 */
export function createCoreMetrics(src: CoreMetricsSources): ServiceMetrics {
  const m = createServiceMetrics({ service: 'core' });
  m.gaugeFrom('agents', 'Agents by state (online: push-reachable; poll-only; offline)', () => {
    const reg = src.registry();
    if (!reg) return undefined;
    const out = { online: 0, 'poll-only': 0, offline: 0 };
    for (const id of reg.store.agents.keys()) out[reg.agentState(id)]++;
    return out;
  }, 'state');
  m.gaugeFrom('site_servers', 'Site servers by state', () => {
    const reg = src.registry();
    if (!reg) return undefined;
    const out = { online: 0, offline: 0 };
    for (const id of reg.store.siteServers.keys()) out[reg.siteServerOnline(id) ? 'online' : 'offline']++;
    return out;
  }, 'state');
  m.gaugeFrom('sites', 'Sites', () => src.registry()?.store.sites.size);
  m.counterFrom('heartbeats_total', 'Agent heartbeats received, by transport', () => ({ udp: src.datagrams()?.stats.heartbeats ?? 0, http: src.httpHeartbeats() }), 'via');
  m.counterFrom('datagrams_received_total', 'UDP datagrams received', () => src.datagrams()?.stats.received);
  m.counterFrom('datagrams_dropped_total', 'UDP datagrams dropped, by reason', () => src.datagrams()?.stats.dropped, 'reason');
  m.counterFrom('heartbeat_acks_sent_total', 'Heartbeat acks sent', () => src.datagrams()?.stats.acksSent);
  m.counterFrom('tickles_sent_total', 'Tickles sent to site servers (coalesced: one per server per burst)', () => src.tickler()?.sent);
  m.counterFrom('claims_refused_total', 'Site-server heartbeats refused for claiming beyond their grant (services, hosts, addresses)', () => src.registry()?.claimsRefused);
  m.counterFrom('enrollments_total', 'Agents and site servers enrolled', () => src.enrollments());
  m.counterFrom('store_queries_total', 'PostgreSQL store: statements (a batch is one transaction), by outcome', () => {
    const st = src.store();
    return st ? { ok: st.queries - st.failed, failed: st.failed } : undefined;
  }, 'outcome');
  m.counterFrom('store_query_seconds_total', 'PostgreSQL store: seconds spent in statements (divide by store_queries_total for the mean latency)', () => src.store()?.seconds);
  m.gaugeFrom('store_pool_connections', 'PostgreSQL store: pool connections, by state (total, idle, waiting: callers waiting for one)', () => {
    const st = src.store();
    return st ? { total: st.total, idle: st.idle, waiting: st.waiting } : undefined;
  }, 'state');
  m.counterFrom('store_remote_changes_total', "PostgreSQL store: other cores' changes this core applied to its memory (journal entries)", () => src.store()?.applied);
  m.counterFrom('store_conflicts_total', 'PostgreSQL store: writes refused because another core had changed the same record (answered 503 CORE_STORE_CONFLICT or retried)', () => src.store()?.conflicts);
  m.gaugeFrom('store_journal_seq', "PostgreSQL store: the last journal entry this core has read (compare across cores: the difference is this one's lag)", () => src.store()?.lastSeq);
  m.gaugeFrom('lease_held', 'Leases of once-only work: 1 while this core holds it (on level every lease is held)', () => {
    const l = src.leases();
    return l ? Object.fromEntries(LEASE_NAMES.map((n) => [n, l.held(n) ? 1 : 0])) : undefined;
  }, 'lease');
  m.counterFrom('lease_takeovers_total', 'Times this core became the holder of a lease (at start, or from a core that died or stopped)', () => src.leases()?.takeovers, 'lease');
  m.gaugeFrom('level_db_bytes', 'Size of the level database on disk (table and log files)', () => levelDbBytes(src.dataDir));
  m.gaugeFrom('module_stat', "Counters and sizes the core's modules keep (stat: module.key)", () => {
    const out: Record<string, number> = {};
    for (const mod of src.modules) if (mod.stats) flattenStats(mod.stats(), mod.name, out);
    return out;
  }, 'stat');
  return m;
}
