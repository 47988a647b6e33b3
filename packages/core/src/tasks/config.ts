import { duration, z } from '@outpost/common';

/** The `core.tasks:` section. */
export const tasksConfigSchema = z
  .object({
    /** How long a run waits for offline agents when `job run` gives no `--expires`. @default '24h' */
    defaultExpiry: duration('24h'),
    /** How often expiry is checked and dispatch times are written. @default '5s' */
    tickInterval: duration('5s'),
    /**
     * How long a finished run is kept, from when it finished: its record, each agent's
     * result and output (the `once` marks stay). `0` keeps every run. @default '90d'
     */
    retention: duration('90d'),
    /** Most agents in one page of pending work for a task server. @default 5000 */
    pendingPageSize: z.number().int().min(1).max(50_000).default(5_000),
    /** Largest status-event batch a task server may post, bytes. @default 33554432 (32 MiB) */
    eventsBodyLimit: z.number().int().min(65_536).default(32 * 1024 * 1024),
    /** Server tasks: target agents whose steps the core runs at once. @default 4 */
    serverConcurrency: z.number().int().min(1).max(256).default(4),
    /** Server tasks: bytes of output kept per step. @default 65536 */
    serverOutputCap: z.number().int().min(0).max(16 * 1024 * 1024).default(65_536),
  })
  .strict()
  .prefault({});

export type TasksConfig = z.output<typeof tasksConfigSchema>;
