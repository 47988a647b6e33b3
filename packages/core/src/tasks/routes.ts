import type { RunRecord } from './model.js';
import { agentTaskKey, CommonErrors, OutpostError, readJson, requireKind, validate, type AppState, type RouteContext } from '@outpost/common';
import { can, scopeOf } from '../admins/guard.js';
import { AdminErrors } from '../admins/errors.js';
import { agentVisible, siteInScope } from '../admins/scope.js';
import type { Router } from '@koa/router';
import type { Registry } from '../registry.js';
import type { TasksConfig } from './config.js';
import type { Definitions } from './defs.js';
import { TaskErrors } from './errors.js';
import type { Runs } from './runs.js';
import { cloneBody, eventsBody, jobBody, pageQuery, pendingQuery, runAgentsQuery, runBody, taskBody } from './schemas.js';
import { agentRunView, runState, summarize } from './summary.js';

export interface TaskRouteDeps {
  defs: Definitions;
  runs: Runs;
  registry: Registry;
  config: TasksConfig;
  /** The core's work-signing public key (SPKI DER, base64): agents pin it. */
  workKey: string;
  /** An agent an admin blocked (the CA module): its task servers stop getting its key. */
  refused?: (agent: string) => boolean;
  /** Applies what other cores committed so far (several cores): a work page must include a run another core just made. */
  sync?: () => Promise<void>;
}

const taskView = (t: object): Record<string, unknown> => {
  const { createdAt, updatedAt, ...rest } = t as { createdAt: number; updatedAt: number };
  return { ...rest, createdAt: new Date(createdAt).toISOString(), updatedAt: new Date(updatedAt).toISOString() };
};

/** The calling site server, which must be GRANTED the task service (and run it): a heartbeat's claim never makes one. */
function taskServerOf(ctx: RouteContext, registry: Registry): string {
  const id = ctx.state.principal!.id;
  if (!registry.runsGranted(id, 'task')) {
    throw new OutpostError(TaskErrors.NOT_A_TASK_SERVER, 'this site server does not run the task service', { status: 403 });
  }
  return id;
}

/** Admin routes (tasks, jobs, runs) and task-server routes (`/task-service/...`). */
export function taskRoutes(router: Router<AppState>, d: TaskRouteDeps): void {
  /** A run is visible to a scoped administrator when one of its targets is in the scope. */
  const runVisible = (ctx: RouteContext, run: RunRecord): boolean => {
    const scope = scopeOf(ctx);
    return scope === undefined || (run.sites ?? []).some((s) => scope.includes(s));
  };
  const visibleRun = (ctx: RouteContext, id: string) => {
    const run = d.runs.getRun(id);
    if (!runVisible(ctx, run)) throw new OutpostError(TaskErrors.RUN_NOT_FOUND, `no run with id '${id}'`, { status: 404 });
    return run;
  };
  const ts = requireKind('site-server');

  // ------------------------------------------------------------ tasks
  router.get('/api/v1/tasks', can('tasks.read'), (ctx) => {
    ctx.body = { items: [...d.defs.tasks.values()].sort((a, b) => a.name.localeCompare(b.name)).map(taskView) };
  });
  router.post('/api/v1/tasks', can('tasks.write'), async (ctx) => {
    const { timeout, ...rest } = await readJson(ctx, taskBody);
    ctx.status = 201;
    ctx.body = taskView(await d.defs.putTask({ ...rest, timeoutMs: timeout }, 'create'));
  });
  router.get('/api/v1/tasks/:name', can('tasks.read'), (ctx) => {
    ctx.body = taskView(d.defs.getTask(ctx.params.name!));
  });
  router.put('/api/v1/tasks/:name', can('tasks.write'), async (ctx) => {
    const { timeout, ...rest } = await readJson(ctx, taskBody);
    if (rest.name !== ctx.params.name) throw new OutpostError(CommonErrors.VALIDATION, 'the body name must match the path', { status: 400 });
    ctx.body = taskView(await d.defs.putTask({ ...rest, timeoutMs: timeout }, 'replace'));
  });
  router.delete('/api/v1/tasks/:name', can('tasks.write'), async (ctx) => {
    await d.defs.deleteTask(ctx.params.name!);
    ctx.status = 204;
  });
  router.post('/api/v1/tasks/:name/clone', can('tasks.write'), async (ctx) => {
    const { name } = await readJson(ctx, cloneBody);
    const { createdAt: _c, updatedAt: _u, ...src } = d.defs.getTask(ctx.params.name!);
    ctx.status = 201;
    ctx.body = taskView(await d.defs.putTask({ ...src, name }, 'create'));
  });

  // ------------------------------------------------------------ jobs
  router.get('/api/v1/jobs', can('tasks.read'), (ctx) => {
    ctx.body = { items: [...d.defs.jobs.values()].sort((a, b) => a.name.localeCompare(b.name)).map(taskView) };
  });
  router.post('/api/v1/jobs', can('tasks.write'), async (ctx) => {
    ctx.status = 201;
    ctx.body = taskView(await d.defs.putJob(await readJson(ctx, jobBody), 'create'));
  });
  router.get('/api/v1/jobs/:name', can('tasks.read'), (ctx) => {
    ctx.body = { ...taskView(d.defs.getJob(ctx.params.name!)), flattened: d.defs.flatten(ctx.params.name!) };
  });
  router.put('/api/v1/jobs/:name', can('tasks.write'), async (ctx) => {
    const body = await readJson(ctx, jobBody);
    if (body.name !== ctx.params.name) throw new OutpostError(CommonErrors.VALIDATION, 'the body name must match the path', { status: 400 });
    ctx.body = taskView(await d.defs.putJob(body, 'replace'));
  });
  router.delete('/api/v1/jobs/:name', can('tasks.write'), async (ctx) => {
    await d.defs.deleteJob(ctx.params.name!);
    ctx.status = 204;
  });
  router.post('/api/v1/jobs/:name/clone', can('tasks.write'), async (ctx) => {
    const { name } = await readJson(ctx, cloneBody);
    const { createdAt: _c, updatedAt: _u, ...src } = d.defs.getJob(ctx.params.name!);
    ctx.status = 201;
    ctx.body = taskView(await d.defs.putJob({ ...src, name }, 'create'));
  });

  // ------------------------------------------------------------ runs
  router.post('/api/v1/jobs/:name/runs', can('runs.start'), async (ctx) => {
    const body = await readJson(ctx, runBody);
    const steps = d.defs.flatten(d.defs.getJob(ctx.params.name!).name);
    const all = d.registry.store.agents;
    // A scoped administrator runs jobs only on agents inside the scope: others are unknown to it.
    const visible = (a: string) => all.has(a) && agentVisible(ctx, d.registry, a);
    let agents: string[];
    if (body.agents) {
      const unknown = body.agents.filter((a) => !visible(a));
      if (unknown.length) {
        throw new OutpostError(TaskErrors.UNKNOWN_AGENTS, `unknown agent id(s): ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', ...' : ''}`, {
          status: 404,
          details: { unknown: unknown.slice(0, 100) },
        });
      }
      agents = body.agents;
    } else if (body.site !== undefined) {
      siteInScope(ctx, body.site);
      d.registry.getSite(body.site);
      agents = [...all.keys()].filter((a) => d.registry.agentSites(a).includes(body.site!));
    } else {
      agents = [...all.keys()].filter(visible);
    }
    const { run, skipped } = await d.runs.create({
      job: ctx.params.name!,
      steps,
      agents,
      expiresMs: body.expires ?? d.config.defaultExpiry,
      once: body.once,
      sitesOf: (a) => d.registry.agentSites(a),
    });
    ctx.status = 201;
    ctx.body = { id: run.id, job: run.job, agents: run.agents, skipped: skipped.length, expiresAt: new Date(run.expiresAt).toISOString() };
  });
  router.get('/api/v1/runs', can('runs.read'), (ctx) => {
    ctx.body = {
      items: [...d.runs.runs.values()]
        .filter((r) => runVisible(ctx, r))
        .sort((a, b) => b.createdAt - a.createdAt)
        .map((r) => ({ id: r.id, job: r.job, state: runState(r), agents: r.agents, counts: r.counts, createdAt: new Date(r.createdAt).toISOString() })),
    };
  });
  router.get('/api/v1/runs/:id', can('runs.read'), async (ctx) => {
    const run = visibleRun(ctx, ctx.params.id!);
    ctx.body = summarize(run, await d.runs.agentRuns(run.id), d.registry);
  });
  router.get('/api/v1/runs/:id/agents', can('runs.read'), async (ctx) => {
    const q = validate(runAgentsQuery, ctx.query, 'query');
    const run = visibleRun(ctx, ctx.params.id!);
    const rows = (await d.runs.agentRuns(run.id)).filter((a) => (q.state === undefined || a.s === q.state) && (q.after === undefined || a.a > q.after) && agentVisible(ctx, d.registry, a.a));
    rows.sort((a, b) => (a.a < b.a ? -1 : 1));
    const items = rows.slice(0, q.limit).map((a) => agentRunView(run, a));
    ctx.body = rows.length > q.limit ? { items, next: rows[q.limit - 1]!.a } : { items };
  });
  router.get('/api/v1/runs/:id/agents/:agent', can('runs.read'), async (ctx) => {
    const run = visibleRun(ctx, ctx.params.id!);
    const ar = agentVisible(ctx, d.registry, ctx.params.agent!) ? await d.runs.agentRun(run.id, ctx.params.agent!) : undefined;
    if (!ar) throw new OutpostError(TaskErrors.UNKNOWN_AGENTS, `agent '${ctx.params.agent}' is not a target of run '${run.id}'`, { status: 404 });
    ctx.body = agentRunView(run, ar, await d.runs.outputsOf(run.id, ar.a));
  });
  router.post('/api/v1/runs/:id/cancel', can('runs.start'), async (ctx) => {
    const target = visibleRun(ctx, ctx.params.id!);
    // Cancelling stops every target: a scoped administrator may only when all are its own.
    const scope = scopeOf(ctx);
    if (scope && (target.unsited || !(target.sites ?? []).every((s) => scope.includes(s)))) {
      throw new OutpostError(AdminErrors.FORBIDDEN, `run ${target.id} has agents outside your scope: an administrator with a wider scope must cancel it`, { status: 403, details: { permission: 'runs.start' } });
    }
    const run = await d.runs.cancel(ctx.params.id!);
    ctx.body = { id: run.id, state: runState(run), counts: run.counts };
  });

  // ------------------------------------------------------------ task servers
  router.get('/api/v1/task-service/pending', ts, async (ctx) => {
    const id = taskServerOf(ctx, d.registry);
    const q = validate(pendingQuery, ctx.query, 'query');
    await d.sync?.();
    ctx.body = d.runs.pending(id, q.since, q.cursor, q.limit ?? d.config.pendingPageSize);
  });
  router.get('/api/v1/task-service/agents', ts, (ctx) => {
    const id = taskServerOf(ctx, d.registry);
    const q = validate(pageQuery, ctx.query, 'query');
    const items: Array<{ id: string; key: string }> = [];
    let next: string | undefined;
    const ids = [...d.registry.store.agents.values()].filter((a) => a.taskServer === id && !d.refused?.(a.id)).map((a) => a.id).sort();
    for (const a of ids) {
      if (q.after !== undefined && a <= q.after) continue;
      if (items.length === q.limit) {
        next = items[items.length - 1]!.id;
        break;
      }
      items.push({ id: a, key: agentTaskKey(d.registry.keyFor(a)!, id).toString('base64') });
    }
    ctx.body = next === undefined ? { items } : { items, next };
  });
  router.get('/api/v1/task-service/agents/:agent', ts, (ctx) => {
    const id = taskServerOf(ctx, d.registry);
    const a = d.registry.store.agents.get(ctx.params.agent!);
    if (!a || a.taskServer !== id || d.refused?.(a.id)) throw new OutpostError(TaskErrors.UNKNOWN_AGENTS, `agent '${ctx.params.agent}' is not assigned to this task server`, { status: 404 });
    ctx.body = { id: a.id, key: agentTaskKey(d.registry.keyFor(a.id)!, id).toString('base64') };
  });
  router.post('/api/v1/task-service/events', ts, async (ctx) => {
    const id = taskServerOf(ctx, d.registry);
    const { events } = await readJson(ctx, eventsBody, d.config.eventsBodyLimit);
    ctx.body = await d.runs.ingest(events, { taskServer: id });
  });

  // ------------------------------------------------------------ agents
  // An agent enrolled before runs were signed fetches the key it verifies them with here,
  // from the core itself (never through its task server), once, and pins it.
  router.get('/api/v1/agents/:id/work-key', requireKind('agent'), (ctx) => {
    if (ctx.state.principal!.id !== ctx.params.id) throw new OutpostError(TaskErrors.NOT_YOU, 'an agent may read only its own work key', { status: 403 });
    ctx.body = { workKey: d.workKey };
  });
}
