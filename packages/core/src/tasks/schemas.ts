import { parseDuration, taskStatusEventSchema, z } from '@outpost/common';
import { AGENT_RUN_STATES } from './model.js';

export const name = z.string().regex(/^[A-Za-z0-9][\w.-]{0,127}$/, 'letters, digits, _ . - (1..128, not starting with a symbol)');

const durationMs = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

export const taskBody = z
  .object({
    name,
    description: z.string().max(1024).optional(),
    kind: z.enum(['command', 'script', 'builtin', 'server']),
    program: z.string().min(1).max(4096).optional(),
    args: z.array(z.string().max(32_768)).max(1024).optional(),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string().max(32_768)).optional(),
    cwd: z.string().min(1).max(4096).optional(),
    script: z.string().max(256 * 1024).optional(),
    interpreter: z.string().min(1).max(4096).optional(),
    builtin: z.enum(['reboot', 'shutdown', 'reboot-to-automation']).optional(),
    /** Step timeout. @default '1h' */
    timeout: durationMs.default(3_600_000),
  })
  .strict()
  .superRefine((t, ctx) => {
    const need = (k: 'program' | 'script' | 'builtin'): void => {
      if (t[k] === undefined) ctx.addIssue({ code: 'custom', path: [k], message: `required for a ${t.kind} task` });
    };
    if (t.kind === 'command') need('program');
    if (t.kind === 'script') need('script');
    if (t.kind === 'builtin') need('builtin');
    if (t.builtin === 'reboot-to-automation' && (t.args === undefined || t.args.length < 1 || t.args.length > 2 || t.args.some((a) => a.length === 0 || a.length > 200))) {
      ctx.addIssue({ code: 'custom', path: ['args'], message: 'reboot-to-automation takes args [image, job?]: a boot image name and optionally a job name' });
    }
    if (t.kind === 'server' && (t.program === undefined) === (t.script === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['program'], message: 'a server task runs a program or a script: give exactly one' });
    }
    if (t.kind === 'server' && t.builtin !== undefined) ctx.addIssue({ code: 'custom', path: ['builtin'], message: 'built-ins run on agents only' });
    if (t.timeout < 1) ctx.addIssue({ code: 'custom', path: ['timeout'], message: 'must be at least 1 ms' });
  });

const step = z
  .object({
    task: name.optional(),
    job: name.optional(),
    successCodes: z.array(z.number().int().min(-2_147_483_648).max(4_294_967_295)).min(1).max(256).default([0]),
    onFailure: z.enum(['stop', 'continue', 'retry']).default('stop'),
    retries: z.number().int().min(0).max(100).default(0),
  })
  .strict()
  .refine((s) => (s.task === undefined) !== (s.job === undefined), { message: 'a step names exactly one of task and job' });

export const jobBody = z
  .object({ name, description: z.string().max(1024).optional(), steps: z.array(step).min(1).max(256) })
  .strict();

export const cloneBody = z.object({ name }).strict();

export const runBody = z
  .object({
    agents: z.array(z.string().min(1).max(64)).max(200_000).optional(),
    site: name.optional(),
    all: z.boolean().optional(),
    expires: durationMs.optional(),
    once: z.string().min(1).max(128).regex(/^[^!]+$/, 'no "!"').optional(),
  })
  .strict()
  .refine((b) => [b.agents !== undefined, b.site !== undefined, b.all === true].filter(Boolean).length === 1, {
    message: 'give exactly one of agents, site and all',
  });

export const pendingQuery = z
  .object({
    since: z.coerce.number().int().min(0).default(0),
    cursor: z.string().max(64).optional(),
    limit: z.coerce.number().int().min(1).max(50_000).optional(),
  })
  .strict();

export const pageQuery = z
  .object({ after: z.string().max(64).optional(), limit: z.coerce.number().int().min(1).max(50_000).default(5_000) })
  .strict();

export const runAgentsQuery = z
  .object({ state: z.enum(AGENT_RUN_STATES).optional(), after: z.string().max(64).optional(), limit: z.coerce.number().int().min(1).max(10_000).default(1_000) })
  .strict();

export const eventsBody = z.object({ events: z.array(taskStatusEventSchema).max(20_000) }).strict();
