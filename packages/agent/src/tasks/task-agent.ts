import type { Agent as HttpAgent } from 'node:http';
import { join } from 'node:path';
import { agentTaskKey, backoffDelay, taskBearerSecret, type Logger } from '@outpost/common';
import { createCoreClient, type CoreClient } from '../core-client.js';
import { executeRun, SHUTDOWN } from './executor.js';
import { JournalStore, type RunJournal } from './journal.js';
import { Reporter } from './reporter.js';
import type { AgentTasksConfig } from './task-config.js';
import { TickleListener } from './tickle-listener.js';
import { makeEvent, type RunSpec } from './types.js';
import { WsClient } from './ws-client.js';

export interface TaskAgentDeps {
  log: Logger;
  dataDir: string;
  /** The agent's id and datagram key, once enrolled. */
  identity: () => { id: string; datagramKey: Buffer } | undefined;
  /** The task server the core assigned (from the agent's config). */
  taskServer: () => { id: string; url: string } | undefined;
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

  const reporter = new Reporter(active, journals, () => target(), log);
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

  async function take(runs: RunSpec[], via: string): Promise<number> {
    let fresh = 0;
    for (const run of runs) {
      const j = active.get(run.id);
      if (run.cancelled) {
        const queued = j ? queue.indexOf(j) : -1;
        if (j && queued >= 0) {
          queue.splice(queued, 1);
          j.final = 'cancelled';
          j.outbox.push(makeEvent({ run: run.id, agent: d.identity()!.id, step: -1, attempt: 0, state: 'cancelled', at: Date.now() }));
          await journals.save(j);
          reporter.kick();
        } else if (j && !j.final) aborts.get(run.id)?.abort('cancel');
        else if (!j && !(await journals.isDone(run.id))) {
          const me = d.identity()!;
          const cj: RunJournal = { version: 1, run, results: [], final: 'cancelled', outbox: [makeEvent({ run: run.id, agent: me.id, step: -1, attempt: 0, state: 'cancelled', at: Date.now() })] };
          active.set(run.id, cj);
          await journals.save(cj);
          reporter.kick();
        }
        continue;
      }
      if (j || (await journals.isDone(run.id))) continue;
      const nj: RunJournal = { version: 1, run, results: [], outbox: [] };
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
      const port = tickles.port;
      const res = (await t.client.call('GET', `/agent/work?via=${via}${port ? `&port=${port}` : ''}`, { bearer: t.bearer })) as { runs: RunSpec[]; pollAfterMs: number };
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
      return { ...stats, tickles: tickles.stats, ws: { ...ws.stats, connected: ws.connected }, reporter: reporter.stats };
    },
    get ticklePort() {
      return tickles.port;
    },
  };
}
