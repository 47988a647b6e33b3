import type { Agent as HttpAgent } from 'node:http';
import { join } from 'node:path';
import {
  agentTaskKey,
  backoffDelay,
  eventKey,
  parseWorkKey,
  taskBearerSecret,
  withMac,
  workResponseSchema,
  workTicketKey,
  type Logger,
  type WorkRefusalReason,
} from '@outpost/common';
import { createCoreClient, type CoreClient } from '../core-client.js';
import { executeRun, SHUTDOWN } from './executor.js';
import { JournalStore, type RunJournal } from './journal.js';
import { Reporter } from './reporter.js';
import type { AgentTasksConfig } from './task-config.js';
import { TickleListener } from './tickle-listener.js';
import { makeEvent, type RunSpec, type StatusEvent } from './types.js';
import { WorkVerifier } from './work-verifier.js';
import { WsClient } from './ws-client.js';

export interface TaskAgentDeps {
  log: Logger;
  dataDir: string;
  /** The agent's id and datagram key, once enrolled. */
  identity: () => { id: string; datagramKey: Buffer } | undefined;
  /** The task server the core assigned (from the agent's config). */
  taskServer: () => { id: string; url: string } | undefined;
  /** The core's work-signing public key pinned in the identity (SPKI DER base64 or PEM). */
  workKey: () => string | undefined;
  /**
   * Fetches and pins the work key from the core itself (never the task server), for an
   * identity enrolled before runs were signed. @default none: work waits for a key
   */
  fetchWorkKey?: () => Promise<string | undefined>;
  random?: () => number;
  /** The node:http(s) Agent for a URL: work, status and WebSocket calls follow the agent's transport. */
  agentFor?: (url: string) => HttpAgent;
  /**
   * True while UDP tickles cannot reach us (behind an Internet gateway): hold the
   * WebSocket regardless of `websocket: auto`'s evidence. @default never
   */
  pushOnly?: () => boolean;
  /** The one-shot network boot for the `reboot-to-automation` built-in (the core's boot module). */
  bootOnce?: (image: string, job: string | undefined) => Promise<void>;
}

export interface TaskAgentStats {
  /** Runs (or cancels) refused before anything was journaled or run, by reason. */
  refused: Partial<Record<WorkRefusalReason, number>>;
  fetches: number;
  fetchFailures: number;
  runsStarted: number;
  runsFinished: number;
  lastVia: string | undefined;
  tickles: TickleListener['stats'];
  ws: WsClient['stats'] & { connected: boolean };
  reporter: Reporter['stats'];
}

export interface TaskAgent {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Fetches work now (coalesced); `via` says what woke it. */
  fetchNow(via?: 'udp' | 'ws' | 'poll'): Promise<void>;
  readonly stats: TaskAgentStats;
  /** Opens or closes the WebSocket now as `pushOnly` and the evidence say (after a route change). */
  syncPush(): void;
  /** The UDP port tickles are received on (after start). */
  readonly ticklePort: number;
}

/**
 * The agent's task side: hears wake-ups (UDP tickles, the WebSocket), polls at the
 * slot its task server assigns, fetches its work, runs each run's steps one run at a
 * time with durable journals, and reports status events until acknowledged.
 */
export function createTaskAgent(config: AgentTasksConfig, d: TaskAgentDeps): TaskAgent {
  const log = d.log.child({ module: 'agent-tasks' });
  const journals = new JournalStore(d.dataDir);
  const active = new Map<string, RunJournal>();
  const queue: RunJournal[] = [];
  const aborts = new Map<string, AbortController>();
  let client: CoreClient | undefined;
  let clientUrl = '';
  let pollTimer: NodeJS.Timeout | undefined;
  let fetching: Promise<void> | undefined;
  let refetch: 'udp' | 'ws' | 'poll' | undefined;
  let executing: Promise<void> | undefined;
  let running = false;
  let failures = 0;
  let wantWs = config.websocket === 'always';
  const stats = { fetches: 0, fetchFailures: 0, runsStarted: 0, runsFinished: 0, lastVia: undefined as string | undefined };
  const refusedBy: Partial<Record<WorkRefusalReason, number>> = {};
  /** Refusals to report (memory only: refused work is never journaled), and those logged already. */
  const refusals = new Map<string, StatusEvent>();
  const noted = new Set<string>();
  let verifier: { v: WorkVerifier; id: string; key: string; dk: Buffer } | undefined;
  let macKey: { dk: Buffer; key: Buffer } | undefined;

  /** Who we talk to right now: the task server's client and our bearer there. */
  const target = (): { client: CoreClient; bearer: string; tsId: string; key: Buffer; agentId: string; url: string } | undefined => {
    const me = d.identity();
    const ts = d.taskServer();
    if (!me || !ts) return undefined;
    if (!client || clientUrl !== ts.url) {
      client?.close();
      const url = ts.url;
      const agentFor = d.agentFor;
      client = createCoreClient({ coreUrl: url, maxSockets: 2, timeoutMs: 30_000, ...(agentFor ? { route: () => ({ base: url, agent: agentFor(url) }) } : {}) });
      clientUrl = ts.url;
    }
    const key = agentTaskKey(me.datagramKey, ts.id);
    return { client, bearer: `${me.id}.${taskBearerSecret(key)}`, tsId: ts.id, key, agentId: me.id, url: ts.url };
  };

  /** The verifier for the current identity and pinned key (undefined until both exist). */
  const verifierFor = (): WorkVerifier | undefined => {
    const me = d.identity();
    const wk = d.workKey();
    if (!me || !wk) return undefined;
    if (!verifier || verifier.id !== me.id || verifier.key !== wk || verifier.dk !== me.datagramKey) {
      const key = parseWorkKey(wk);
      if (!key) return undefined;
      verifier = { v: new WorkVerifier(key, me.id, workTicketKey(me.datagramKey)), id: me.id, key: wk, dk: me.datagramKey };
    }
    return verifier.v;
  };
  const macFor = (): ((e: StatusEvent) => StatusEvent & { mac: string }) | undefined => {
    const me = d.identity();
    if (!me) return undefined;
    if (macKey?.dk !== me.datagramKey) macKey = { dk: me.datagramKey, key: eventKey(me.datagramKey) };
    const key = macKey.key;
    return (e) => withMac(key, e);
  };

  const reporter = new Reporter(active, journals, () => target(), log, macFor, {
    pending: () => [...refusals.values()],
    acked: (ids) => {
      for (const id of ids) refusals.delete(id);
    },
  });

  /**
   * Work not taken: counted; logged once per run and reason; and, unless it names a run
   * this agent has journaled (whose record a relay must not end), reported as the run's
   * failure at step -1, `refused: <reason>`.
   */
  function refuse(reason: WorkRefusalReason, runId: string | undefined, detail: string, via: string, report: boolean): void {
    refusedBy[reason] = (refusedBy[reason] ?? 0) + 1;
    const k = `${runId ?? '?'}:${reason}`;
    if (noted.has(k)) return;
    if (noted.size >= 10_000) noted.clear();
    noted.add(k);
    log.warn({ run: runId, reason, detail, via, taskServer: d.taskServer()?.id }, 'work refused');
    const me = d.identity();
    if (!report || runId === undefined || !me || refusals.size >= 1_000) return;
    const e = makeEvent({ run: runId, agent: me.id, step: -1, attempt: 0, state: 'failed', at: Date.now(), error: `refused: ${reason}` });
    refusals.set(e.id, e);
    reporter.kick();
  }
  const tickles = new TickleListener(
    () => {
      const t = target();
      return t ? { sender: t.tsId, key: t.key, agentId: t.agentId } : undefined;
    },
    () => void fetchNow('udp'),
    log,
  );
  const ws = new WsClient(
    { spreadMs: config.reconnectSpread, ...(d.random ? { random: d.random } : {}), ...(d.agentFor ? { agentFor: d.agentFor } : {}) },
    (m) => {
      if (m.t === 'work') void fetchNow('ws');
      if (m.t === 'hello' && typeof m.pollAfterMs === 'number' && config.pollInterval === undefined) schedulePoll(m.pollAfterMs);
    },
    log,
  );

  const syncWs = (): void => {
    const t = target();
    ws.set(running && t && config.websocket !== 'never' && (wantWs || d.pushOnly?.() === true) ? { url: t.url, bearer: t.bearer } : undefined);
  };

  function schedulePoll(ms: number): void {
    clearTimeout(pollTimer);
    if (!running) return;
    pollTimer = setTimeout(() => void fetchNow('poll'), Math.max(50, Math.min(ms, 2_147_000_000)));
    pollTimer.unref();
  }

  /** A cancel the core signed for a run, by id: a queued run is dropped, a running one stopped, an unknown one reported cancelled. */
  async function cancel(runId: string): Promise<void> {
    const j = active.get(runId);
    const queued = j ? queue.indexOf(j) : -1;
    if (j && queued >= 0) {
      queue.splice(queued, 1);
      j.final = 'cancelled';
      j.outbox.push(makeEvent({ run: runId, agent: d.identity()!.id, step: -1, attempt: 0, state: 'cancelled', at: Date.now() }));
      await journals.save(j);
      reporter.kick();
    } else if (j && !j.final) aborts.get(runId)?.abort('cancel');
    else if (!j && !(await journals.isDone(runId))) {
      const me = d.identity()!;
      const run: RunSpec = { id: runId, job: '', steps: [], expiresAt: 0, cancelled: true };
      const cj: RunJournal = { version: 1, run, results: [], final: 'cancelled', outbox: [makeEvent({ run: runId, agent: me.id, step: -1, attempt: 0, state: 'cancelled', at: Date.now() })] };
      active.set(runId, cj);
      await journals.save(cj);
      reporter.kick();
    }
  }

  /**
   * Takes what a fetch returned. Each run is checked before anything is journaled or run
   * (signature with the pinned key, this agent's ticket, expiry, replay); the rest is
   * refused. A run already journaled under the same signature is the same work offered
   * again (normal until the task server hears it finished): skipped.
   */
  async function take(runs: unknown[], via: string): Promise<number> {
    let fresh = 0;
    const v = verifierFor();
    if (!v) {
      log.warn({ runs: runs.length }, 'no work-signing key pinned; work not taken');
      return 0;
    }
    const now = Date.now();
    for (const raw of runs) {
      const verdict = v.check(raw, now);
      if (!verdict.ok) {
        refuse(verdict.reason, verdict.runId, verdict.detail, via, verdict.runId === undefined || !active.has(verdict.runId));
        continue;
      }
      if (verdict.cancel) {
        await cancel(verdict.runId);
        continue;
      }
      const { run, digest } = verdict;
      const j = active.get(run.id);
      if (j) {
        if (j.digest !== undefined && j.digest !== digest) refuse('replayed', run.id, 'another run under the id of a journaled one', via, false);
        continue;
      }
      if (verdict.expired) {
        refuse('expired', run.id, `expired at ${new Date(run.expiresAt).toISOString()}`, via, true);
        continue;
      }
      if (await journals.isDone(run.id)) {
        refuse('replayed', run.id, 'the run is done here already', via, true);
        continue;
      }
      const nj: RunJournal = { version: 1, run, digest, results: [], outbox: [] };
      await journals.save(nj);
      active.set(run.id, nj);
      queue.push(nj);
      fresh++;
    }
    if (fresh) log.info({ runs: fresh, via }, 'new work');
    drain();
    return fresh;
  }

  function drain(): void {
    if (executing || !running) return;
    const next = queue.shift();
    if (!next) return;
    const me = d.identity();
    if (!me) return;
    const ac = new AbortController();
    aborts.set(next.run.id, ac);
    stats.runsStarted++;
    executing = executeRun(
      next,
      {
        agentId: me.id,
        journals,
        runner: { outputCap: config.outputCap, allowBuiltins: config.allowBuiltins, shell: config.shell, scratchDir: join(d.dataDir, 'tasks', 'scratch'), ...(d.bootOnce ? { bootOnce: d.bootOnce } : {}) },
        report: () => reporter.kick(),
        log,
      },
      ac.signal,
    )
      .catch((err: unknown) => log.error({ err, run: next.run.id }, 'run failed in the agent'))
      .finally(() => {
        stats.runsFinished++;
        aborts.delete(next.run.id);
        executing = undefined;
        drain();
      });
  }

  async function fetchOnce(via: 'udp' | 'ws' | 'poll'): Promise<void> {
    const t = target();
    if (!t) {
      schedulePoll(2_000);
      return;
    }
    syncWs();
    stats.fetches++;
    stats.lastVia = via;
    try {
      // An identity from before runs were signed: pin the core's key first (from the core).
      if (d.workKey() === undefined) await d.fetchWorkKey?.();
      if (d.workKey() === undefined) throw new Error('no work-signing key pinned yet');
      const port = tickles.port;
      const answer = workResponseSchema.safeParse(await t.client.call('GET', `/agent/work?via=${via}${port ? `&port=${port}` : ''}`, { bearer: t.bearer }));
      if (!answer.success) throw new Error(`the work answer is malformed: ${answer.error.issues[0]?.message ?? ''}`);
      const res = answer.data;
      failures = 0;
      const fresh = await take(res.runs, via);
      // Work found by a poll that no tickle announced: tickles do not reach us; hold a WebSocket.
      if (fresh > 0 && via === 'poll' && config.websocket === 'auto' && !wantWs) {
        wantWs = true;
        log.info('work arrived by poll without a tickle; opening a WebSocket to the task server');
        syncWs();
      }
      schedulePoll(config.pollInterval ?? res.pollAfterMs);
    } catch (err) {
      stats.fetchFailures++;
      schedulePoll(backoffDelay(failures++, { baseMs: 1_000, capMs: config.retryCap }));
      log.debug({ message: (err as Error).message }, 'fetching work failed');
    }
  }

  function fetchNow(via: 'udp' | 'ws' | 'poll' = 'poll'): Promise<void> {
    if (!running) return Promise.resolve();
    if (fetching) {
      refetch ??= via;
      return fetching;
    }
    fetching = fetchOnce(via).finally(() => {
      fetching = undefined;
      const again = refetch;
      refetch = undefined;
      if (again) void fetchNow(again);
    });
    return fetching;
  }

  return {
    async start() {
      running = true;
      for (const j of await journals.loadAll()) {
        if (j.final && j.outbox.length === 0) {
          await journals.finish(j.run.id);
          continue;
        }
        active.set(j.run.id, j);
        if (!j.final) queue.push(j);
      }
      await tickles.start(config.tickleHost, config.ticklePort);
      drain();
      reporter.kick();
      void fetchNow('poll');
    },
    async stop() {
      running = false;
      clearTimeout(pollTimer);
      ws.stop();
      for (const ac of aborts.values()) ac.abort(SHUTDOWN);
      await fetching?.catch(() => undefined);
      await executing;
      client?.close();
      await reporter.stop();
      await tickles.stop();
      client = undefined;
    },
    fetchNow,
    syncPush: syncWs,
    get stats() {
      return { ...stats, refused: { ...refusedBy }, tickles: tickles.stats, ws: { ...ws.stats, connected: ws.connected }, reporter: reporter.stats };
    },
    get ticklePort() {
      return tickles.port;
    },
  };
}
