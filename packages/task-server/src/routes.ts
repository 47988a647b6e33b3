import { OutpostError, readJson, type AppState, type AppContext } from '@outpost/common';
import type { Router } from '@koa/router';
import type { Middleware } from 'koa';
import type { AgentBook } from './agents.js';
import type { CoreSync } from './core-sync.js';
import { TaskServerErrors } from './errors.js';
import type { Outbox } from './outbox.js';
import { msUntilPollSlot } from './poll-slot.js';
import { agentEventsBody, eventId, type Via, type WorkResponse } from './protocol.js';
import type { WorkBook } from './work.js';

export interface AgentRouteDeps {
  agents: AgentBook;
  work: WorkBook;
  outbox: Outbox;
  sync: CoreSync;
  pollIntervalMs: number;
  now: () => number;
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled', 'expired']);

/** `Bearer <agentId>.<secret>` → the agent id; an agent we do not know yet is looked up at the core once. */
export async function authenticateAgent(d: Pick<AgentRouteDeps, 'agents' | 'sync'>, authorization: string | undefined): Promise<string> {
  const m = /^Bearer\s+(\S{1,512})$/i.exec(authorization ?? '');
  if (!m) throw new OutpostError(TaskServerErrors.BAD_CREDENTIAL, 'a bearer credential is required (Authorization: Bearer <agentId>.<secret>)', { status: 401 });
  let r = d.agents.verify(m[1]!);
  if (!r.ok && r.reason === 'unknown' && r.id && (await d.sync.lookupAgent(r.id))) r = d.agents.verify(m[1]!);
  if (r.ok) return r.id;
  if (r.reason === 'unknown') throw new OutpostError(TaskServerErrors.UNKNOWN_AGENT, 'this agent is not assigned to this task server', { status: 401 });
  throw new OutpostError(TaskServerErrors.BAD_CREDENTIAL, 'the credential is not valid', { status: 401 });
}

const remoteIp = (ctx: AppContext): string => (ctx.request.socket.remoteAddress ?? '').replace(/^::ffff:/, '');

/** What agents call: their work, and their status events. */
export function agentRoutes(router: Router<AppState>, d: AgentRouteDeps): void {
  const auth: Middleware<AppState> = async (ctx, next) => {
    const id = await authenticateAgent(d, ctx.get('authorization') || undefined);
    ctx.state.principal = { kind: 'agent', id };
    await next();
  };

  router.get('/api/v1/agent/work', auth, async (ctx) => {
    const id = ctx.state.principal!.id;
    const port = Number(ctx.query.port);
    if (Number.isInteger(port) && port > 0 && port < 65536) {
      const ip = remoteIp(ctx);
      await d.agents.setAddr(id, ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);
    }
    const via: Via = ctx.query.via === 'udp' || ctx.query.via === 'ws' ? ctx.query.via : 'poll';
    const now = d.now();
    // The fetch is marked in memory now; its event goes out with the next group commit
    // (not awaited: the agent's own statuses imply the fetch if this one is lost in a crash).
    const { events, ops } = d.work.mark(id, 'fetched', via, now);
    if (events.length || ops.length) d.outbox.add(events, ops).catch((err: unknown) => ctx.state.log.warn({ err }, 'recording a fetch failed'));
    const body: WorkResponse = { runs: d.work.forAgent(id, now), pollAfterMs: msUntilPollSlot(id, d.pollIntervalMs, now) };
    ctx.body = body;
  });

  router.post('/api/v1/agent/events', auth, async (ctx) => {
    const id = ctx.state.principal!.id;
    const { events } = await readJson(ctx, agentEventsBody, 4 * 1024 * 1024);
    const ops: Parameters<Outbox['add']>[1] = [];
    for (const e of events) {
      if (e.agent !== id) throw new OutpostError(TaskServerErrors.NOT_YOUR_EVENT, `event ${e.id} is about agent '${e.agent}', not the caller`, { status: 403 });
      if (!d.work.runs.has(e.run)) throw new OutpostError(TaskServerErrors.UNKNOWN_RUN, `event ${e.id}: run '${e.run}' is not known here`, { status: 404 });
      e.id = eventId(e);
      if (e.step < 0 && FINAL.has(e.state)) d.work.finished(id, e.run, ops);
    }
    const added = await d.outbox.add(events, ops);
    ctx.body = { accepted: events.length, stored: added };
  });
}
