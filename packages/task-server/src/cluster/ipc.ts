import { OutpostError, type MetricsJson } from '@outpost/common';

/**
 * Messages between the task server's primary and its HTTP/WebSocket workers (node:cluster
 * IPC, JSON). Calls a worker makes in one turn of its event loop travel in one `rpc`
 * message and their replies in one `replies` message, so 50,000 agents' fetches are a
 * few thousand IPC messages, not 100,000.
 */
export type RpcMethod = 'authenticate' | 'work' | 'events' | 'hello' | 'health' | 'metrics';
export type RpcCall = [seq: number, method: RpcMethod, args: unknown[]];
export interface WireError {
  code?: string | undefined;
  message: string;
  status?: number | undefined;
  details?: Record<string, unknown> | undefined;
}
export type RpcReply = [seq: number, ok: true, value: unknown] | [seq: number, ok: false, error: WireError];

export type ToPrimary =
  | { t: 'listening'; port: number }
  | { t: 'rpc'; calls: RpcCall[] }
  /** WebSockets that opened here, and agents that have none left here. */
  | { t: 'ws'; open: string[]; closed: string[] }
  /** This worker's metrics, for the scrape `seq` (metrics-cluster.ts). */
  | { t: 'metrics'; seq: number; metrics: MetricsJson };

export type ToWorker =
  | { t: 'replies'; replies: RpcReply[] }
  | { t: 'push'; agents: string[] }
  /** Agents no longer served (blocked, deleted, moved): close their sockets, forget cached credentials. */
  | { t: 'drop'; agents: string[] }
  | { t: 'stop' }
  | { t: 'metrics'; seq: number };

/** Environment variable that carries a worker's {@link WorkerConfig} (JSON). */
export const WORKER_ENV = 'OUTPOST_TASK_SERVER_WORKER';

export interface WorkerConfig {
  host: string;
  port: number;
  wsPingInterval: number;
  logLevel: string;
  index: number;
}

export function toWire(err: unknown): WireError {
  if (err instanceof OutpostError) return { code: err.code, message: err.message, status: err.status, details: err.details };
  return { message: err instanceof Error ? err.message : String(err) };
}

export function fromWire(e: WireError): Error {
  if (e.code === undefined) return new Error(e.message);
  return new OutpostError(e.code, e.message, { status: e.status ?? 500, ...(e.details ? { details: e.details } : {}) });
}

const tagged = (m: unknown): m is { t: string } => typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
/** Our own processes send these; the check only keeps stray messages out. */
export const isToPrimary = (m: unknown): m is ToPrimary => tagged(m) && ['listening', 'rpc', 'ws', 'metrics'].includes(m.t);
export const isToWorker = (m: unknown): m is ToWorker => tagged(m) && ['replies', 'push', 'drop', 'stop', 'metrics'].includes(m.t);
