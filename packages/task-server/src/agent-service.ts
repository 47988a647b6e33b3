import { OutpostError, type Logger } from '@outpost/common';
import type { AgentBook } from './agents.js';
import type { CoreSync } from './core-sync.js';
import { TaskServerErrors } from './errors.js';
import type { Outbox } from './outbox.js';
import { msUntilPollSlot } from './poll-slot.js';
import { eventId, type StatusEvent, type Via, type WorkResponse, type WsMessage } from './protocol.js';
import type { WorkBook } from './work.js';

export interface AgentRouteDeps {
  agents: AgentBook;
  work: WorkBook;
  outbox: Outbox;
  sync: CoreSync;
  pollIntervalMs: number;
  now: () => number;
}

/**
 * What agents can ask of the task server, apart from HTTP: served in-process, or by the
 * primary for its workers (`workers` > 0, over IPC; see `cluster/`).
 */
export interface AgentService {
  /** `Bearer <agentId>.<secret>` → the agent id (401 errors with codes). */
  authenticate(authorization: string | undefined): Promise<string>;
  /** The agent's work; `addr` (`host:port`) is where it hears tickles. Records the fetch. */
  work(agent: string, via: Via, addr: string | undefined): Promise<WorkResponse>;
  /** Stores the agent's status events (written before this resolves). */
  events(agent: string, events: StatusEvent[]): Promise<{ accepted: number; stored: number }>;
  /** Frames a new WebSocket of the agent gets first. */
  hello(agent: string): Promise<WsMessage[]>;
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled', 'expired']);

/** `Bearer <agentId>.<secret>` → the agent id; an agent we do not know yet is looked up at the core once. */
export async function authenticateAgent(d: Pick<AgentRouteDeps, 'agents' | 'sync'>, authorization: string | undefined): Promise<string> {
  const m = /^Bearer\s+(\S{1,512})$/i.exec(authorization ?? '');
  if (!m) throw new OutpostError(TaskServerErrors.BAD_CREDENTIAL, 'a bearer credential is required (Authorization: Bearer <agentId>.<secret>)', { status: 401 });
  let r = d.agents.verify(m[1]!);
  if (!r.ok && r.reason === 'unknown' && r.id) {
    // Any caller can send any id: lookups at the core are cached (known and unknown) and rate limited.
    const found = await d.sync.lookupCaller(r.id);
    if (found === 'known') r = d.agents.verify(m[1]!);
    else if (found === 'limited') throw new OutpostError(TaskServerErrors.LOOKUP_LIMITED, 'too many unknown agents are being looked up; retry later', { status: 503 });
    else if (found === 'unavailable') throw new OutpostError(TaskServerErrors.CORE_UNREACHABLE, 'this agent is not known here yet and the core cannot be asked now; retry later', { status: 502 });
  }
  if (r.ok) return r.id;
  if (r.reason === 'unknown') throw new OutpostError(TaskServerErrors.UNKNOWN_AGENT, 'this agent is not assigned to this task server', { status: 401 });
  throw new OutpostError(TaskServerErrors.BAD_CREDENTIAL, 'the credential is not valid', { status: 401 });
}

/** The in-process {@link AgentService}: agent book, work book and outbox of this process. */
export function createAgentService(d: AgentRouteDeps, log: Logger): AgentService {
  return {
    authenticate: (authorization) => authenticateAgent(d, authorization),
    async work(id, via, addr) {
      if (addr !== undefined) await d.agents.setAddr(id, addr);
      const now = d.now();
      // The fetch is marked in memory now; its event goes out with the next group commit
      // (not awaited: the agent's own statuses imply the fetch if this one is lost in a crash).
      const { events, ops } = d.work.mark(id, 'fetched', via, now);
      if (events.length || ops.length) d.outbox.add(events, ops).catch((err: unknown) => log.warn({ err }, 'recording a fetch failed'));
      return { runs: d.work.forAgent(id, now), pollAfterMs: msUntilPollSlot(id, d.pollIntervalMs, now) };
    },
    async events(id, events) {
      const ops: Parameters<Outbox['add']>[1] = [];
      for (const e of events) {
        if (e.agent !== id) throw new OutpostError(TaskServerErrors.NOT_YOUR_EVENT, `event ${e.id} is about agent '${e.agent}', not the caller`, { status: 403 });
        if (e.state === 'tickled' || e.state === 'fetched') throw new OutpostError(TaskServerErrors.NOT_YOUR_EVENT, `event ${e.id}: tickled and fetched are the task server's own marks`, { status: 403 });
        if (!d.work.runs.has(e.run)) throw new OutpostError(TaskServerErrors.UNKNOWN_RUN, `event ${e.id}: run '${e.run}' is not known here`, { status: 404 });
        e.id = eventId(e);
        if (e.step < 0 && FINAL.has(e.state)) d.work.finished(id, e.run, ops);
      }
      const added = await d.outbox.add(events, ops);
      return { accepted: events.length, stored: added };
    },
    async hello(id) {
      return [{ t: 'hello', pollAfterMs: msUntilPollSlot(id, d.pollIntervalMs, d.now()) }, ...(d.work.hasWork(id) ? [{ t: 'work' as const }] : [])];
    },
  };
}
