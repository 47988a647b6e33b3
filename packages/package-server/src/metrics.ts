import { join } from 'node:path';
import { createServiceMetrics, levelDbBytes, type ServiceMetrics } from '@outpost/common';
import type { ServeCounters } from './http-server.js';
import type { FetchCounters, StageStatus } from './stager.js';

export interface PackageServerMetricSources {
  /** The data dir (its level database is in `db/`). */
  dataDir: string;
  http: () => ServeCounters | undefined;
  staging: () => StageStatus[];
  fetchedFrom: () => ReadonlyMap<string, FetchCounters> | undefined;
  counters: Readonly<{ syncs: number; syncFailures: number; reports: number; reportFailures: number; tickles: number; reverified: number }>;
}

/**
 * The package server's Prometheus metrics (`GET /metrics` on its HTTP listener), read
 * from the counters it keeps: downloads served by status and bytes, staging progress and
 * failures, bytes fetched per source, syncs and reports to the core, tickles.
 */
export function createPackageServerMetrics(src: PackageServerMetricSources): ServiceMetrics {
  const m = createServiceMetrics({ service: 'package_server' });
  m.counterFrom('downloads_served_total', 'Download requests answered, by HTTP status', () => src.http()?.status, 'status');
  m.counterFrom('served_bytes_total', 'Package bytes sent to agents and site servers', () => src.http()?.bytes);
  m.counterFrom('downloads_idle_closed_total', 'Downloads cut off because the client took no bytes for http.idleTimeout', () => src.http()?.idleTimeouts);
  m.gaugeFrom('downloads_active', 'Downloads being sent now', () => src.http()?.active);
  m.counterFrom('staging_fetched_bytes_total', 'Bytes staged, by source', () => {
    const out: Record<string, number> = {};
    for (const [k, v] of src.fetchedFrom() ?? []) out[k] = v.bytes;
    return out;
  }, 'source');
  m.gaugeFrom('staging_packages', 'Assigned packages by staging state', () => {
    const out: Record<string, number> = { pending: 0, downloading: 0, ready: 0, failed: 0 };
    for (const s of src.staging()) out[s.state] = (out[s.state] ?? 0) + 1;
    return out;
  }, 'state');
  m.gaugeFrom('staging_bytes', 'Bytes of assigned packages (done, total)', () => {
    let done = 0;
    let total = 0;
    for (const s of src.staging()) {
      done += s.bytesDone;
      total += s.bytesTotal;
    }
    return { done, total };
  }, 'kind');
  m.gaugeFrom('staging_failed_attempts', 'Failed staging attempts of the packages now assigned (their retry counters)', () => src.staging().reduce((n, s) => n + (s.attempt ?? 0), 0));
  m.counterFrom('core_syncs_total', 'Assignment syncs with the core, by outcome', () => ({ ok: src.counters.syncs, failed: src.counters.syncFailures }), 'outcome');
  m.counterFrom('core_reports_total', 'Status reports to the core, by outcome', () => ({ ok: src.counters.reports, failed: src.counters.reportFailures }), 'outcome');
  m.counterFrom('tickles_received_total', 'Tickles from the core accepted', () => src.counters.tickles);
  m.counterFrom('reverified_total', 'Files re-verified after a read failure', () => src.counters.reverified);
  m.gaugeFrom('level_db_bytes', 'Size of the level database on disk', () => levelDbBytes(join(src.dataDir, 'db')));
  return m;
}
