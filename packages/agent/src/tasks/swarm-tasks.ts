import { createSocket, type Socket } from 'node:dgram';
import { agentTaskKey, datagramKey, decodeDatagram, eventKey, parseCredential, parseWorkKey, silentLogger, taskBearerSecret, verifyDatagram, withMac, workTicketKey, type Logger } from '@outpost/common';
import WebSocket from 'ws';
import { enrollResponseSchema, expectShape } from '../core-api.js';
import { createCoreClient, type CoreClient } from '../core-client.js';
import { makeEvent, type StatusEvent } from './types.js';
import { WorkVerifier } from './work-verifier.js';

export type TaskSwarmMode = 'tickle' | 'ws' | 'poll';

export interface TaskSwarmOptions {
  coreUrl: string;
  enrollToken: string;
  count: number;
  /** Names `<prefix>-<n>` from `firstIndex`. */
  namePrefix?: string;
  firstIndex?: number;
  /** Enrollments in flight. @default 64 */
  concurrency?: number;
  /** Keep-alive connections to the task server. @default 128 */
  httpConnections?: number;
  /** Shared UDP sockets that receive tickles (tickle mode). @default 8 */
  udpSockets?: number;
  /** Source addresses for WebSockets (ws mode), e.g. 127.0.0.2..127.0.0.9: lifts the per-address port limit. */
  localAddresses?: string[];
  /** Check each tickle's HMAC, as a real agent does. @default true */
  verifyTickles?: boolean;
}

export interface TaskSwarmResult {
  agents: number;
  /** Epoch ms at which each agent fetched the run (0: not fetched). */
  fetchedAt: number[];
  /** Agents whose final status the task server acknowledged. */
  reported: number;
  errors: Record<string, number>;
  tickles: { received: number; bad: number };
}

export interface TaskSwarm {
  enroll(): Promise<{ enrolled: number; errors: number; durationMs: number }>;
  /**
   * (Re-)registers the agents with the task server for a mode: a tickle address each
   * (`tickle`), a WebSocket each (`ws`), or nothing but their poll slot (`poll`).
   */
  attach(mode: TaskSwarmMode): Promise<{ attached: number; durationMs: number }>;
  /**
   * Serves wake-ups until every agent fetched and reported the first run of `job` it
   * sees, or `timeoutMs`. Call it before the run is created.
   */
  awaitRun(job: string, timeoutMs: number): Promise<TaskSwarmResult>;
  close(): Promise<void>;
}

const bump = (m: Record<string, number>, k: string): void => {
  m[k] = (m[k] ?? 0) + 1;
};

/**
 * Simulated agents for task-service load tests: they enroll, learn their task server,
 * are woken by UDP tickles (shared sockets; the payload names the agent), their
 * WebSocket, or their poll slot, fetch their work, and report a status for every step
 * and the run without spawning processes.
 */
export function createTaskSwarm(o: TaskSwarmOptions, deps: { logger?: Logger } = {}): TaskSwarm {
  const log = (deps.logger ?? silentLogger()).child({ module: 'task-swarm' });
  const ids: string[] = [];
  const dkeys: Buffer[] = [];
  const tkeys: Buffer[] = [];
  const bearers: string[] = [];
  /** Per agent, as a real agent: its work verifier (ticket key) and event MAC key. */
  const verifiers: WorkVerifier[] = [];
  const ekeys: Buffer[] = [];
  let workKey: string | undefined;
  const byId = new Map<string, number>();
  const sockets: Socket[] = [];
  const wss: WebSocket[] = [];
  const pollTimers = new Map<number, NodeJS.Timeout>();
  let ts: { id: string; url: string } | undefined;
  let tsClient: CoreClient | undefined;
  const errors: Record<string, number> = {};
  const tickles = { received: 0, bad: 0 };
  let onWake: (i: number, via: 'udp' | 'ws' | 'poll') => void = () => undefined;
  let awaiting = false;

  async function pool<T>(n: number, width: number, fn: (i: number) => Promise<T>): Promise<void> {
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(width, n) }, async () => {
      while (next < n) await fn(next++);
    }));
  }

  async function enroll(): Promise<{ enrolled: number; errors: number; durationMs: number }> {
    const client = createCoreClient({ coreUrl: o.coreUrl, maxSockets: o.concurrency ?? 64, timeoutMs: 60_000 });
    const t0 = Date.now();
    const prefix = o.namePrefix ?? `tswarm-${process.pid}`;
    const first = o.firstIndex ?? 0;
    let failed = 0;
    const slots: Array<{ id: string; cred: string } | undefined> = new Array(o.count);
    await pool(o.count, o.concurrency ?? 64, async (i) => {
      const n = first + i;
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          const res = expectShape(enrollResponseSchema, await client.call('POST', '/enroll', { body: { token: o.enrollToken, name: `${prefix}-${n}`, ips: [`10.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/8`], os: 'swarm' } }), 'POST /enroll');
          slots[i] = { id: res.id, cred: res.credential };
          workKey ??= res.workKey;
          return;
        } catch (err) {
          if (attempt === 2) {
            failed++;
            bump(errors, (err as { code?: string }).code ?? 'ENROLL');
          }
        }
      }
    });
    for (const s of slots) {
      if (!s) continue;
      byId.set(s.id, ids.length);
      ids.push(s.id);
      dkeys.push(datagramKey(parseCredential(s.cred)!.secret));
      bearers.push(s.cred);
    }
    const key = parseWorkKey(workKey);
    if (!key) throw new Error('the core sent no work-signing key at enrollment');
    // One verifier per agent (its own ticket key); each caches nothing across agents, so
    // a shared signature check cache keeps the swarm at one Ed25519 verification per run.
    const shared = new WorkVerifier(key, '-', Buffer.alloc(32));
    for (let i = 0; i < ids.length; i++) {
      verifiers[i] = shared.forAgent(ids[i]!, workTicketKey(dkeys[i]!));
      ekeys[i] = eventKey(dkeys[i]!);
    }
    // All agents of a swarm share the task server the core assigned the first one.
    const cfg = (await client.call('GET', `/agents/${ids[0]}/config`, { bearer: bearers[0]! })) as { taskServer?: { id: string; url: string } };
    client.close();
    if (!cfg.taskServer) throw new Error('the core assigned no task server');
    ts = cfg.taskServer;
    for (let i = 0; i < ids.length; i++) {
      tkeys[i] = agentTaskKey(dkeys[i]!, ts.id);
      bearers[i] = `${ids[i]}.${taskBearerSecret(tkeys[i]!)}`;
    }
    tsClient = createCoreClient({ coreUrl: ts.url, maxSockets: o.httpConnections ?? 128, timeoutMs: 60_000 });
    return { enrolled: ids.length, errors: failed, durationMs: Date.now() - t0 };
  }

  function onTickle(buf: Buffer): void {
    tickles.received++;
    const d = decodeDatagram(buf);
    if (!d.ok) return void tickles.bad++;
    const i = byId.get(d.value.payload.toString('latin1'));
    if (i === undefined || (o.verifyTickles !== false && !verifyDatagram(d.value, tkeys[i]!))) return void tickles.bad++;
    onWake(i, 'udp');
  }

  async function fetchWork(i: number, via: 'udp' | 'ws' | 'poll', port?: number): Promise<{ runs: unknown[]; pollAfterMs: number }> {
    return (await tsClient!.call('GET', `/agent/work?via=${via}${port ? `&port=${port}` : ''}`, { bearer: bearers[i]! })) as { runs: unknown[]; pollAfterMs: number };
  }

  let mode: TaskSwarmMode = 'poll';

  function detach(): void {
    for (const t of pollTimers.values()) clearTimeout(t);
    pollTimers.clear();
    for (const ws of wss.splice(0)) ws?.terminate();
    for (const s of sockets.splice(0)) s.close();
  }

  async function attach(m: TaskSwarmMode): Promise<{ attached: number; durationMs: number }> {
    detach();
    mode = m;
    const t0 = Date.now();
    let attached = 0;
    if (mode === 'tickle') {
      for (let s = 0; s < (o.udpSockets ?? 8); s++) {
        const sock = createSocket('udp4');
        await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
        try {
          sock.setRecvBufferSize(8 << 20);
        } catch {
          // Capped by the kernel: fine.
        }
        sock.on('message', onTickle);
        sockets.push(sock);
      }
    }
    const addrs = o.localAddresses?.length ? o.localAddresses : ['127.0.0.1'];
    await pool(ids.length, mode === 'ws' ? 64 : 256, async (i) => {
      try {
        if (mode === 'ws') {
          const ws = new WebSocket(`${ts!.url.replace(/^http/, 'ws')}/api/v1/agent/ws`, { headers: { authorization: `Bearer ${bearers[i]}` }, localAddress: addrs[i % addrs.length]!, perMessageDeflate: false });
          await new Promise<void>((resolve, reject) => {
            ws.once('open', () => resolve());
            ws.once('error', reject);
          });
          ws.on('message', (data) => {
            if (String(data) === '{"t":"work"}') onWake(i, 'ws');
          });
          ws.on('error', () => bump(errors, 'WS'));
          wss[i] = ws;
        } else {
          const port = mode === 'tickle' ? sockets[i % sockets.length]!.address().port : undefined;
          const r = await fetchWork(i, 'poll', port);
          if (mode === 'poll') schedulePoll(i, r.pollAfterMs);
        }
        attached++;
      } catch (err) {
        bump(errors, (err as { code?: string }).code ?? 'ATTACH');
      }
    });
    return { attached, durationMs: Date.now() - t0 };
  }

  function schedulePoll(i: number, ms: number): void {
    clearTimeout(pollTimers.get(i));
    // Between runs a poll still happens (and gets the next slot), as a real agent's does.
    const t = setTimeout(() => {
      if (awaiting) onWake(i, 'poll');
      else void fetchWork(i, 'poll').then((r) => schedulePoll(i, r.pollAfterMs)).catch(() => schedulePoll(i, 1_000));
    }, ms);
    t.unref();
    pollTimers.set(i, t);
  }

  async function awaitRun(job: string, timeoutMs: number): Promise<TaskSwarmResult> {
    const fetchedAt = new Array<number>(ids.length).fill(0);
    const done = new Uint8Array(ids.length);
    const busy = new Uint8Array(ids.length);
    let reported = 0;
    let finish: () => void = () => undefined;
    const allDone = new Promise<void>((r) => (finish = r));
    const work = async (i: number, via: 'udp' | 'ws' | 'poll'): Promise<void> => {
      if (done[i] || busy[i]) return;
      busy[i] = 1;
      try {
        const r = await fetchWork(i, via);
        if (mode === 'poll') schedulePoll(i, r.pollAfterMs);
        // Verified as a real agent does: signature (cached per run), this agent's ticket, expiry.
        const now = Date.now();
        let run: { id: string; steps: unknown[] } | undefined;
        for (const raw of r.runs) {
          const v = verifiers[i]!.check(raw, now);
          if (!v.ok) bump(errors, `refused-${v.reason}`);
          else if (!v.cancel && !v.expired && v.run.job === job) run = v.run;
        }
        if (!run) return;
        const runId = run.id;
        fetchedAt[i] ||= Date.now();
        const at = Date.now();
        const events: StatusEvent[] = [];
        run.steps.forEach((_, s) => {
          events.push(makeEvent({ run: runId, agent: ids[i]!, step: s, attempt: 0, state: 'running', at }));
          events.push(makeEvent({ run: runId, agent: ids[i]!, step: s, attempt: 0, state: 'succeeded', at, exitCode: 0 }));
        });
        events.push(makeEvent({ run: runId, agent: ids[i]!, step: -1, attempt: 0, state: 'succeeded', at }));
        const ek = ekeys[i]!;
        await tsClient!.call('POST', '/agent/events', { bearer: bearers[i]!, body: { events: events.map((e) => withMac(ek, e)) } });
        done[i] = 1;
        if (++reported === ids.length) finish();
      } catch (err) {
        bump(errors, (err as { code?: string }).code ?? 'WORK');
      } finally {
        busy[i] = 0;
      }
    };
    onWake = (i, via) => void work(i, via);
    awaiting = true;
    const timer = setTimeout(finish, timeoutMs);
    await allDone;
    clearTimeout(timer);
    awaiting = false;
    onWake = () => undefined;
    return { agents: ids.length, fetchedAt, reported, errors: { ...errors }, tickles: { ...tickles } };
  }

  return {
    enroll,
    attach,
    awaitRun,
    async close() {
      detach();
      tsClient?.close();
      log.debug({ agents: ids.length }, 'task swarm closed');
    },
  };
}
