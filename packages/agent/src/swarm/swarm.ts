import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { datagramKey, isOutpostError, parseCredential, silentLogger, type Logger } from '@outpost/common';
import { enrollResponseSchema, expectShape, type EnrollRequest } from '../core-api.js';
import { createCoreClient, type CoreClient } from '../core-client.js';
import { isCoreHttpError } from '../errors.js';
import { encodeHeartbeat, openHeartbeatAck } from '../heartbeat-datagram.js';
import { LatencyHistogram, type LatencySummary } from './histogram.js';

export interface SwarmOptions {
  /** The core's base URL. */
  coreUrl: string;
  /** An agent enrollment token with at least `count` uses. */
  enrollToken: string;
  /** Simulated agents (1..1,000,000). */
  count: number;
  /** Enrollments in flight at once. @default 64 */
  concurrency?: number;
  /** UDP sockets shared by all agents (each carries count/udpSockets agents). @default 16 */
  udpSockets?: number;
  /** Keep-alive HTTP connections for HTTP heartbeats. @default 64 */
  httpConnections?: number;
  /** Core datagram host. @default the host of `coreUrl` */
  datagramHost?: string;
  /** Core datagram port. @default the one enrollment returned */
  datagramPort?: number;
  /** Agent names are `<namePrefix>-<n>`. @default `swarm-<pid>` */
  namePrefix?: string;
  /** Numbering offset, so several swarm processes make distinct names and addresses. @default 0 */
  firstIndex?: number;
  /** A UDP heartbeat without ack after this long counts as timed out. @default 2000 */
  ackTimeoutMs?: number;
  /** Check each ack's HMAC (as a real agent does). @default true */
  verifyAcks?: boolean;
  /** Longest the enrollment phase may take; the rest count as errors. @default 600_000 */
  enrollDeadlineMs?: number;
}

export interface EnrollReport {
  requested: number;
  enrolled: number;
  errors: number;
  errorCodes: Record<string, number>;
  durationMs: number;
  perSecond: number;
  latency: LatencySummary;
}

export interface HeartbeatPhaseOptions {
  via: 'udp' | 'http';
  /** How long to send, ms (1..3,600,000). */
  durationMs: number;
  /** Most heartbeats waiting for an answer at once (closed loop). @default udp: 512, http: httpConnections */
  window?: number;
  /** Most heartbeats sent per second (open loop when the window is not the limit). @default unlimited */
  rate?: number;
}

export interface HeartbeatReport {
  via: 'udp' | 'http';
  agents: number;
  sent: number;
  /** Answered (UDP: acked) heartbeats. */
  acked: number;
  /** Answered within the sending period: what `perSecond` counts. */
  ackedInWindow: number;
  timeouts: number;
  errors: number;
  errorCodes: Record<string, number>;
  durationMs: number;
  /** Processed (answered) heartbeats per second over the sending period. */
  perSecond: number;
  latency: LatencySummary;
  histogram: ReturnType<LatencyHistogram['toJSON']>;
  ackDrops: Record<string, number>;
}

export interface Swarm {
  /** Enrolls the agents (bounded concurrency, keep-alive HTTP). */
  enroll(): Promise<EnrollReport>;
  /** One heartbeat phase over the enrolled agents; ends by itself after `durationMs`. */
  heartbeat(options: HeartbeatPhaseOptions): Promise<HeartbeatReport>;
  /** Agents enrolled so far. */
  readonly enrolled: number;
  /** Closes sockets and connections. */
  close(): Promise<void>;
}

const bump = (m: Record<string, number>, k: string): void => {
  m[k] = (m[k] ?? 0) + 1;
};
const errorCode = (err: unknown): string =>
  isCoreHttpError(err) ? (err.coreCode ?? `HTTP_${err.httpStatus}`) : isOutpostError(err) ? err.code : ((err as { code?: string }).code ?? 'ERROR');

/**
 * Many simulated agents in one process, cheaply: each agent is an id, a bearer and a
 * datagram key in arrays; UDP heartbeats of all agents go through a small pool of
 * connected sockets (the sender id inside each datagram says whose it is) and acks are
 * matched by their payload's `a`; HTTP heartbeats share one keep-alive pool. Every phase
 * is bounded in count and time.
 */
export function createSwarm(options: SwarmOptions, deps: { logger?: Logger } = {}): Swarm {
  const log = (deps.logger ?? silentLogger()).child({ module: 'swarm' });
  if (!Number.isInteger(options.count) || options.count < 1 || options.count > 1_000_000) {
    throw new RangeError('swarm count must be an integer in 1..1,000,000');
  }
  const count = options.count;
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 64, 1024));
  const udpSocketCount = Math.max(1, Math.min(options.udpSockets ?? 16, 256));
  const httpConnections = Math.max(1, Math.min(options.httpConnections ?? 64, 4096));
  const ackTimeoutMs = options.ackTimeoutMs ?? 2_000;
  const verifyAcks = options.verifyAcks ?? true;
  const prefix = options.namePrefix ?? `swarm-${process.pid}`;
  const first = options.firstIndex ?? 0;
  const host = options.datagramHost ?? new URL(options.coreUrl).hostname.replace(/^\[(.*)\]$/, '$1');

  const ids: string[] = [];
  const bearers: string[] = [];
  const keys: Buffer[] = [];
  const byId = new Map<string, number>();
  let datagramPort = options.datagramPort ?? 0;
  const lastTs = new Float64Array(count);
  const seqs = new Uint32Array(count);
  let enrollClient: CoreClient | undefined;
  let httpClient: CoreClient | undefined;

  async function enroll(): Promise<EnrollReport> {
    const client = (enrollClient ??= createCoreClient({ coreUrl: options.coreUrl, maxSockets: concurrency, timeoutMs: 30_000 }));
    const hist = new LatencyHistogram();
    const errorCodes: Record<string, number> = {};
    let errors = 0;
    let next = ids.length;
    const started = performance.now();
    const deadline = Date.now() + (options.enrollDeadlineMs ?? 600_000);
    const slots: Array<{ id: string; bearer: string; key: Buffer } | undefined> = [];
    const base = ids.length;

    async function one(i: number): Promise<void> {
      const n = first + i;
      const body: EnrollRequest = {
        token: options.enrollToken,
        name: `${prefix}-${n}`,
        macs: [`02:00:${[(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`],
        ips: [`10.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/16`],
        os: 'swarm',
      };
      for (let attempt = 0; ; attempt++) {
        const t0 = performance.now();
        try {
          const res = expectShape(enrollResponseSchema, await client.call('POST', '/enroll', { body }), 'POST /enroll');
          hist.recordMs(performance.now() - t0);
          const cred = parseCredential(res.credential);
          if (!cred) throw new Error('enrollment returned an unusable credential');
          if (!datagramPort) datagramPort = res.datagramPort;
          slots[i - base] = { id: res.id, bearer: res.credential, key: datagramKey(cred.secret) };
          return;
        } catch (err) {
          // Transport failures (connection reset under load) are retried a few times;
          // an answer from the core (token used up ...) is final.
          if (isCoreHttpError(err) || attempt >= 2 || Date.now() > deadline) {
            errors++;
            bump(errorCodes, errorCode(err));
            if (errors <= 5) log.warn({ err, index: n }, 'enrollment failed');
            return;
          }
        }
      }
    }

    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count && Date.now() <= deadline) await one(next++);
      }),
    );
    errors += count - next; // not attempted before the deadline
    for (const s of slots) {
      if (!s) continue;
      byId.set(s.id, ids.length);
      ids.push(s.id);
      bearers.push(s.bearer);
      keys.push(s.key);
    }
    const durationMs = performance.now() - started;
    const enrolled = ids.length - base;
    return {
      requested: count - base,
      enrolled,
      errors,
      errorCodes,
      durationMs: Math.round(durationMs),
      perSecond: Math.round((enrolled / durationMs) * 1000),
      latency: hist.summary(),
    };
  }

  async function openUdpSockets(onAck: (buf: Buffer) => void): Promise<Socket[]> {
    const type = isIP(host) === 6 ? 'udp6' : 'udp4';
    const sockets: Socket[] = [];
    for (let i = 0; i < udpSocketCount; i++) {
      const s = createSocket({ type });
      s.on('message', onAck);
      s.on('error', (err) => log.debug({ err }, 'udp socket error'));
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.connect(datagramPort, host, () => {
          s.off('error', reject);
          resolve();
        });
      });
      try {
        s.setRecvBufferSize(4 << 20);
        s.setSendBufferSize(4 << 20);
      } catch {
        // The kernel caps buffer sizes; the defaults work, just with less slack.
      }
      sockets.push(s);
    }
    return sockets;
  }

  async function udpPhase(o: HeartbeatPhaseOptions): Promise<HeartbeatReport> {
    const n = ids.length;
    const window = Math.max(1, Math.min(o.window ?? 512, n));
    const hist = new LatencyHistogram();
    const ackDrops: Record<string, number> = {};
    const errorCodes: Record<string, number> = {};
    const sentAt = new Float64Array(n); // 0: nothing outstanding
    // Send order, for timeouts: parallel growable queues with a head pointer.
    let qIdx: number[] = [];
    let qAt: number[] = [];
    let qHead = 0;
    let outstanding = 0;
    let sent = 0;
    let acked = 0;
    let ackedInWindow = 0;
    let timeouts = 0;
    let errors = 0;
    let cursor = 0;
    let sending = true;
    const t0 = performance.now();
    const endAt = t0 + o.durationMs;
    const rate = o.rate && o.rate > 0 ? o.rate : Infinity;

    const keyFor = (a: string): Buffer | undefined => {
      const i = byId.get(a);
      return i === undefined ? undefined : keys[i];
    };
    let pumpScheduled = false;
    const onAck = (buf: Buffer): void => {
      let i: number | undefined;
      if (verifyAcks) {
        const r = openHeartbeatAck(buf, keyFor);
        if (!r.ok) return bump(ackDrops, r.reason);
        i = byId.get(r.value.agentId);
      } else {
        // Bench shortcut: find `"a":"<id>"` without JSON or HMAC work.
        const text = buf.toString('latin1');
        const at = text.indexOf('"a":"');
        if (at < 0) return bump(ackDrops, 'bad-payload');
        i = byId.get(text.slice(at + 5, text.indexOf('"', at + 5)));
      }
      if (i === undefined) return bump(ackDrops, 'unknown-agent');
      const at = sentAt[i]!;
      if (at === 0) return bump(ackDrops, 'late-or-duplicate');
      sentAt[i] = 0;
      outstanding--;
      acked++;
      const now = performance.now();
      if (now <= endAt) ackedInWindow++;
      hist.recordMs(now - at);
      if (sending && !pumpScheduled) {
        pumpScheduled = true;
        setImmediate(pump);
      }
    };
    const sockets = await openUdpSockets(onAck);

    function pump(): void {
      pumpScheduled = false;
      if (!sending) return;
      const now = performance.now();
      if (now >= endAt) return;
      const allowed = rate === Infinity ? Infinity : Math.floor(((now - t0) / 1000) * rate) - sent;
      let budget = Math.min(window - outstanding, allowed);
      let scanned = 0;
      while (budget > 0 && scanned < n) {
        const i = cursor;
        cursor = cursor + 1 === n ? 0 : cursor + 1;
        scanned++;
        if (sentAt[i] !== 0) continue;
        const wall = Date.now();
        if (wall > lastTs[i]!) {
          lastTs[i] = wall;
          seqs[i] = 0;
        } else {
          seqs[i] = (seqs[i]! + 1) >>> 0;
        }
        const buf = encodeHeartbeat(ids[i]!, keys[i]!, undefined, { timestamp: lastTs[i]!, seq: seqs[i]! });
        const at = performance.now();
        sentAt[i] = at;
        qIdx.push(i);
        qAt.push(at);
        outstanding++;
        sent++;
        budget--;
        sockets[i % sockets.length]!.send(buf, (err) => {
          if (err) {
            errors++;
            bump(errorCodes, (err as NodeJS.ErrnoException).code ?? 'SEND');
          }
        });
      }
    }

    function sweep(now: number, all: boolean): void {
      while (qHead < qIdx.length) {
        const i = qIdx[qHead]!;
        const at = qAt[qHead]!;
        if (sentAt[i] === at) {
          if (!all && now - at < ackTimeoutMs) break;
          sentAt[i] = 0;
          outstanding--;
          timeouts++;
        }
        qHead++;
      }
      if (qHead > 65_536 && qHead * 2 > qIdx.length) {
        qIdx = qIdx.slice(qHead);
        qAt = qAt.slice(qHead);
        qHead = 0;
      }
    }

    const ticker = setInterval(() => {
      sweep(performance.now(), false);
      pump();
    }, 5);
    pump();
    await new Promise<void>((resolve) => setTimeout(resolve, o.durationMs));
    sending = false;
    // Drain: wait for the outstanding acks, at most one ack timeout.
    const drainUntil = performance.now() + ackTimeoutMs;
    while (outstanding > 0 && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 10));
    clearInterval(ticker);
    sweep(performance.now(), true);
    await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    return {
      via: 'udp',
      agents: n,
      sent,
      acked,
      ackedInWindow,
      timeouts,
      errors,
      errorCodes,
      durationMs: o.durationMs,
      perSecond: Math.round((ackedInWindow / o.durationMs) * 1000),
      latency: hist.summary(),
      histogram: hist.toJSON(),
      ackDrops,
    };
  }

  async function httpPhase(o: HeartbeatPhaseOptions): Promise<HeartbeatReport> {
    const n = ids.length;
    const client = (httpClient ??= createCoreClient({ coreUrl: options.coreUrl, maxSockets: httpConnections, timeoutMs: 10_000 }));
    const window = Math.max(1, Math.min(o.window ?? httpConnections, n));
    const hist = new LatencyHistogram();
    const errorCodes: Record<string, number> = {};
    let sent = 0;
    let acked = 0;
    let ackedInWindow = 0;
    let errors = 0;
    let cursor = 0;
    const t0 = performance.now();
    const endAt = t0 + o.durationMs;
    const rate = o.rate && o.rate > 0 ? o.rate : Infinity;
    const body = {};

    await Promise.all(
      Array.from({ length: window }, async () => {
        for (;;) {
          const now = performance.now();
          if (now >= endAt) return;
          if (rate !== Infinity) {
            const dueAt = t0 + (sent / rate) * 1000;
            if (dueAt > now) {
              await new Promise((r) => setTimeout(r, Math.min(dueAt - now, endAt - now)));
              continue;
            }
          }
          const i = cursor;
          cursor = cursor + 1 === n ? 0 : cursor + 1;
          sent++;
          const at = performance.now();
          try {
            await client.call('POST', `/agents/${ids[i]}/heartbeat`, { bearer: bearers[i]!, body });
            const done = performance.now();
            acked++;
            if (done <= endAt) ackedInWindow++;
            hist.recordMs(done - at);
          } catch (err) {
            errors++;
            bump(errorCodes, errorCode(err));
            if (errors <= 5) log.warn({ err }, 'http heartbeat failed');
          }
        }
      }),
    );
    return {
      via: 'http',
      agents: n,
      sent,
      acked,
      ackedInWindow,
      timeouts: 0,
      errors,
      errorCodes,
      durationMs: o.durationMs,
      perSecond: Math.round((ackedInWindow / o.durationMs) * 1000),
      latency: hist.summary(),
      histogram: hist.toJSON(),
      ackDrops: {},
    };
  }

  return {
    enroll,
    async heartbeat(o) {
      if (!(o.durationMs > 0 && o.durationMs <= 3_600_000)) throw new RangeError('heartbeat phase durationMs must be in 1..3,600,000');
      if (ids.length === 0) throw new Error('no enrolled agents: call enroll() first');
      if (o.via === 'udp' && !datagramPort) throw new Error('no datagram port: the core did not say one and none was given');
      return o.via === 'udp' ? udpPhase(o) : httpPhase(o);
    },
    get enrolled() {
      return ids.length;
    },
    async close() {
      enrollClient?.close();
      httpClient?.close();
      enrollClient = undefined;
      httpClient = undefined;
    },
  };
}
