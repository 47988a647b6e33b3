import type { CoreContext, CoreModule } from '../module.js';
import { tasksConfigSchema } from '../tasks/config.js';
import { Definitions } from '../tasks/defs.js';
import type { RunStep } from '../tasks/model.js';
import type { Runs } from '../tasks/runs.js';
import { TaskStore } from '../tasks/store.js';

/** How the boot module starts a predefined computer's job: a run of the tasks module. */
export interface JobStarter {
  /** Throws `CORE_TASK_JOB_NOT_FOUND` (404) when there is no such job, or when it cannot be flattened. */
  check(job: string): Promise<void>;
  /** Starts `job` on one agent, at most once per `once` key; resolves with the run id. */
  start(job: string, agentId: string, once: string): Promise<string>;
}

const hasRuns = (m: CoreModule | undefined): m is CoreModule & { readonly runs: Runs | undefined } => m !== undefined && 'runs' in m;

/**
 * A JobStarter over this core's tasks module, or undefined when the core has none.
 * Definitions are read from the database at each call (they are written through, and a
 * boot's job starts rarely), so the tasks module's own objects are not shared.
 */
export function tasksJobStarter(ctx: CoreContext): JobStarter | undefined {
  const tasks = ctx.module('tasks');
  if (!hasRuns(tasks)) return undefined;
  const expiresMs = (ctx.config.tasks ?? tasksConfigSchema.parse({})).defaultExpiry;
  const flatten = async (job: string): Promise<RunStep[]> => {
    const defs = new Definitions(new TaskStore(ctx.db), ctx.clock);
    await defs.load();
    return defs.flatten(defs.getJob(job).name);
  };
  return {
    async check(job) {
      await flatten(job);
    },
    async start(job, agentId, once) {
      const runs = tasks.runs;
      if (!runs) throw new Error('the tasks module is not started');
      const { run } = await runs.create({ job, steps: await flatten(job), agents: [agentId], expiresMs, once });
      return run.id;
    },
  };
}
