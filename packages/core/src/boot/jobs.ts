import type { CoreContext } from '../module.js';
import { tasksConfigSchema } from '../tasks/config.js';
import { isTasksModule } from '../tasks/module.js';
import type { RunStep } from '../tasks/model.js';

/** How the boot module starts a predefined computer's job: a run of the tasks module. */
export interface JobStarter {
  /** Throws `CORE_TASK_JOB_NOT_FOUND` (404) when there is no such job, or when it cannot be flattened. */
  check(job: string): Promise<void>;
  /** Starts `job` on one agent, at most once per `once` key; resolves with the run id. */
  start(job: string, agentId: string, once: string): Promise<string>;
}


/**
 * A JobStarter over this core's tasks module, or undefined when the core has none. Jobs
 * are flattened with the tasks module's own definitions (in memory, the ones its API
 * writes), so a job defined a moment ago is found.
 */
export function tasksJobStarter(ctx: CoreContext): JobStarter | undefined {
  const tasks = ctx.module('tasks');
  if (!isTasksModule(tasks)) return undefined;
  const expiresMs = (ctx.config.tasks ?? tasksConfigSchema.parse({})).defaultExpiry;
  const flatten = (job: string): RunStep[] => {
    const defs = tasks.defs;
    if (!defs) throw new Error('the tasks module is not started');
    return defs.flatten(defs.getJob(job).name);
  };
  return {
    async check(job) {
      flatten(job);
    },
    async start(job, agentId, once) {
      const runs = tasks.runs;
      if (!runs) throw new Error('the tasks module is not started');
      const { run } = await runs.create({ job, steps: flatten(job), agents: [agentId], expiresMs, once, sitesOf: (a) => ctx.registry.agentSites(a) });
      return run.id;
    },
  };
}
