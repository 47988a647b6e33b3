import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServiceMetrics, levelDbBytes, type ServiceMetrics } from '@outpost/common';
import type { TftpCounters } from '@outpost/tftp';
import type { BootTokens } from './boot-tokens.js';
import type { DecisionCache } from './decisions.js';
import type { DhcpService } from './dhcp-service.js';
import type { EventReporter } from './reporter.js';

export interface NetbootMetricSources {
  /** The level database's directory. */
  dbDir: string;
  dhcp: () => DhcpService | undefined;
  tftp: () => Readonly<TftpCounters> | undefined;
  sessions: () => { held: number; waiting: number; queued: number; refusedBusy: number };
  decisions: () => DecisionCache | undefined;
  events: () => EventReporter | undefined;
  tokens: () => BootTokens | undefined;
}

/** Bounded route labels of the boot HTTP server (never the raw path). */
export function bootRoute(path: string): string {
  if (path === '/metrics') return '/metrics';
  if (path.startsWith('/api/v1/')) return path === '/api/v1/health' || path === '/api/v1/stats' ? path : 'unmatched';
  if (path.startsWith('/boot/')) return '/boot/:mac.ipxe';
  if (path.startsWith('/images/')) return '/images/:image/*';
  if (path.startsWith('/loaders/')) return '/loaders/*';
  return 'unmatched';
}

/**
 * The netboot service's Prometheus metrics (`GET /metrics` on its HTTP boot listener),
 * read at scrape time from the counters it keeps: DHCP offers, acks and ignored requests
 * by reason, TFTP transfers and retransmits (@outpost/tftp's server counters), boot
 * session slots, the core's decisions, boot events sent, the level database's size;
 * HTTP requests by route (counted by {@link observeBootHttp}).
 */
export function createNetbootMetrics(src: NetbootMetricSources): ServiceMetrics {
  const m = createServiceMetrics({ service: 'netboot' });
  const dhcp = () => src.dhcp()?.counters;
  m.counterFrom('dhcp_received_total', 'DHCP/PXE datagrams received', () => dhcp()?.received);
  m.counterFrom('dhcp_offers_total', 'DHCPOFFERs sent (proxyDHCP or full DHCP)', () => dhcp()?.offers);
  m.counterFrom('dhcp_acks_total', 'DHCPACKs sent, by port (dhcp: 67; pxe: the boot server on 4011)', () => {
    const c = dhcp();
    return c ? { dhcp: c.acks, pxe: c.pxeAcks } : undefined;
  }, 'port');
  m.counterFrom('dhcp_naks_total', 'DHCPNAKs sent (full DHCP)', () => dhcp()?.naks);
  m.counterFrom('dhcp_ignored_total', 'DHCP requests not answered, by reason', () => dhcp()?.ignored as Record<string, number> | undefined, 'reason');
  m.counterFrom('dhcp_malformed_total', 'DHCP datagrams that did not decode, by error', () => dhcp()?.malformed as Record<string, number> | undefined, 'error');
  m.counterFrom('dhcp_other_proxy_offers_total', "Other servers' PXE offers seen on the client port", () => dhcp()?.otherProxyOffers);
  m.counterFrom('dhcp_send_errors_total', 'DHCP replies the socket failed to send', () => dhcp()?.sendErrors);
  m.counterFrom('tftp_requests_total', 'TFTP read/write requests, by kind', () => {
    const t = src.tftp();
    return t ? { read: t.reads, write: t.writes } : undefined;
  }, 'kind');
  m.counterFrom('tftp_transfers_total', 'TFTP transfers ended, by outcome', () => {
    const t = src.tftp();
    return t ? { completed: t.completed, failed: t.failed, 'option-abort': t.optionAborts } : undefined;
  }, 'outcome');
  m.counterFrom('tftp_refused_total', 'TFTP requests refused, by reason', () => {
    const t = src.tftp();
    return t ? { busy: t.busy, 'not-found': t.notFound, 'access-denied': t.accessDenied, other: Math.max(0, t.refused - t.busy - t.notFound - t.accessDenied) } : undefined;
  }, 'reason');
  m.gaugeFrom('tftp_active_transfers', 'TFTP transfers in progress', () => src.tftp()?.active);
  m.counterFrom('tftp_bytes_total', 'TFTP payload bytes, by direction', () => {
    const t = src.tftp();
    return t ? { sent: t.bytesSent, received: t.bytesReceived } : undefined;
  }, 'direction');
  m.counterFrom('tftp_retransmits_total', 'TFTP blocks sent again (timeouts, duplicate ACKs)', () => src.tftp()?.retransmits);
  m.counterFrom('tftp_malformed_total', 'TFTP datagrams that did not decode', () => src.tftp()?.malformed);
  m.gaugeFrom('boot_sessions', 'Boot session slots, by state (held: transfers running; waiting: queued for a slot)', () => {
    const s = src.sessions();
    return { held: s.held, waiting: s.waiting };
  }, 'state');
  m.counterFrom('boot_sessions_queued_total', 'Boot sessions that waited for a slot', () => src.sessions().queued);
  m.counterFrom('boot_sessions_refused_total', 'Boot sessions refused (queue full, or waited too long)', () => src.sessions().refusedBusy);
  m.counterFrom('decision_stat_total', "The core's boot decisions, by counter (cache hits, calls, failures)", () => {
    const c = src.decisions()?.counters as Record<string, unknown> | undefined;
    if (!c) return undefined;
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(c)) if (typeof v === 'number') out[k] = v;
    return out;
  }, 'stat');
  m.counterFrom('boot_tokens_total', 'One-use boot tokens in script URLs, by outcome (minted: handed out in a DHCP answer; used: its boot fetched the script)', () => {
    const c = src.tokens()?.counters;
    return c ? { minted: c.minted, used: c.used } : undefined;
  }, 'outcome');
  m.counterFrom('boot_script_untokened_total', 'Boot script requests without a valid boot token (nothing consumed or recorded), by reason (absent; invalid: wrong, used or expired)', () => {
    const c = src.tokens()?.counters;
    return c ? { absent: c.absent, invalid: c.invalid } : undefined;
  }, 'reason');
  m.counterFrom('boot_events_total', 'Boot events for the core, by outcome (queued, sent, dropped)', () => {
    const c = src.events()?.counters;
    return c ? { queued: c.queued, sent: c.sent, dropped: c.dropped } : undefined;
  }, 'outcome');
  m.gaugeFrom('level_db_bytes', 'Size of the level database on disk', () => levelDbBytes(src.dbDir));
  return m;
}

/**
 * Counts and times one request of the boot HTTP server, and answers `GET /metrics`.
 * Returns true when it answered (the request was `/metrics`).
 */
export function observeBootHttp(metrics: ServiceMetrics, req: IncomingMessage, res: ServerResponse, path: string): boolean {
  const started = performance.now();
  const method = req.method ?? 'GET';
  res.once('finish', () => metrics.observeRequest(method, bootRoute(path), res.statusCode, (performance.now() - started) / 1000));
  if (path !== '/metrics') return false;
  metrics.text().then(
    (text) => {
      res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
      res.end(text);
    },
    () => {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('metrics failed\n');
    },
  );
  return true;
}
