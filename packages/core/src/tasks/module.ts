import { join } from 'node:path';
import type { CoreConfig } from '../config.js';
import type { CoreContext, CoreModule } from '../module.js';
import { TickleFlags } from '@outpost/common';
import { tasksConfigSchema } from './config.js';
import { Definitions } from './defs.js';
import { taskRoutes } from './routes.js';
import { Runs } from './runs.js';
import { ServerTasks } from './server-tasks.js';
import { TaskStore } from './store.js';
import type { AgentRun, JobDef, RunRecord, TaskDef } from './model.js';
import { setEnrollmentWorkKey } from '../enrollment.js';
import { loadOrCreateWorkKey, type WorkKey } from './work-key.js';

/** The tasks module as other modules see it: its runs and definitions once started. */
export type TasksModule = CoreModule & { readonly runs: Runs | undefined; readonly defs: Definitions | undefined };

/** Whether a module (from `CoreContext.module('tasks')`) is the tasks module. */
export const isTasksModule = (m: CoreModule | undefined): m is TasksModule => m !== undefined && 'runs' in m && 'defs' in m;

/**
 * The tasks capability of the core: task and job definitions, runs with per-agent,
 * per-step state, the pending-work and status-event API for task servers, expiry and
 * cancel. See `README.md` in this folder.
 */
export function createTasksModule(coreConfig: CoreConfig): TasksModule {
  const config = coreConfig.tasks ?? tasksConfigSchema.parse({});
  let defs: Definitions | undefined;
  let runs: Runs | undefined;
  let server: ServerTasks | undefined;
  let workKey: WorkKey | undefined;
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> = Promise.resolve();

  return {
    name: 'tasks',
    /** The runs, for read-only views (the console's live feed). */
    get runs() {
      return runs;
    },
    /** Task and job definitions (the boot module flattens a computer's job with them). */
    get defs() {
      return defs;
    },
    async start(ctx: CoreContext) {
      const wk = await loadOrCreateWorkKey(coreConfig.dataDir);
      workKey = wk.key;
      if (wk.created) ctx.log.info({ dir: coreConfig.dataDir }, 'work-signing key created');
      // Agents pin its public half at enrollment.
      setEnrollmentWorkKey(ctx.registry, wk.key.publicB64);
      const store = new TaskStore(ctx.db);
      defs = new Definitions(store, ctx.clock);
      await defs.load();
      runs = new Runs(store, ctx.registry, ctx.clock, ctx.log, (ids) => ctx.tickle(ids, TickleFlags.WORK), wk.key, config.retention);
      await runs.load();
      const r = runs;
      const d = defs;
      ctx.store.onRemote('task-defs', (name, v) => d.remote('task', name, v as TaskDef | undefined));
      ctx.store.onRemote('task-jobs', (name, v) => d.remote('job', name, v as JobDef | undefined));
      ctx.store.onRemote('task-runs', (id, v) => r.remoteRun(id, v as RunRecord | undefined));
      ctx.store.onRemote('task-agent-runs', (_key, v) => r.remoteAgentRun(v as AgentRun | undefined));
      ctx.store.onRemote('task-meta', (key, v) => key === 'seq' && r.remoteSeq(v as number | undefined));
      const st = new ServerTasks(r.serverTaskHost(), { concurrency: config.serverConcurrency, outputCap: config.serverOutputCap, scratchDir: join(coreConfig.dataDir, 'task-scratch') }, ctx.clock, ctx.log.child({ module: 'server-tasks' }));
      server = st;
      // Runs this core queued itself: taking the lease over resumes only the others (the dead holder's).
      const mine = new Set<string>();
      const queue = (id: string, agents: Iterable<string>): void => {
        mine.add(id);
        st.enqueue(id, agents);
      };
      r.serverHooks = { run: queue, ended: (id) => st.ended(id) };
      ctx.leases.onAcquired('tasks.server-runs', () => {
        for (const [id, agents] of r.unfinishedServerRuns()) if (!mine.has(id)) queue(id, agents);
      });
      // Agents moved to another task server (one went away, or the sites changed): wake
      // their new servers with CONFIG, which re-reads agents and all their pending work.
      const reg = ctx.registry;
      ctx.events.on('agents.changed', ({ ids }) => {
        const servers = new Set<string>();
        for (const id of ids) {
          const ts = reg.store.agents.get(id)?.taskServer;
          if (ts) servers.add(ts);
        }
        if (servers.size) ctx.tickle(servers, TickleFlags.CONFIG | TickleFlags.WORK);
      });
      timer = setInterval(() => {
        ticking = ticking.then(() => r.tick(ctx.leases.held('tasks.expiry'))).catch((err: unknown) => ctx.log.error({ err }, 'tasks tick failed'));
      }, config.tickInterval);
      timer.unref();
    },
    routes(router, ctx) {
      if (!defs || !runs || !workKey) throw new Error('tasks module not started');
      taskRoutes(router, { defs, runs, registry: ctx.registry, config, workKey: workKey.publicB64, refused: (agent) => ctx.refuses(agent) !== undefined, sync: () => ctx.store.sync() });
    },
    async stop() {
      clearInterval(timer);
      await server?.stop();
      await ticking;
      await runs?.flush();
    },
    stats() {
      return { tasks: defs?.tasks.size ?? 0, jobs: defs?.jobs.size ?? 0, runs: runs?.runs.size ?? 0, seq: runs?.seq ?? 0, ...runs?.stats, server: server ? { ...server.stats, backlog: server.backlog } : undefined };
    },
  };
}
