import { duration, parseDuration, z } from '@outpost/common';

/** The agent's `tasks:` section: how it hears about, runs and reports work. */
export const agentTasksConfigSchema = z
  .strictObject({
    /** Run tasks from the task server the core assigns. @default true */
    enabled: z.boolean().default(true),
    /** UDP listener for the task server's tickles. @default 0.0.0.0:50124 */
    tickleHost: z.string().default('0.0.0.0'),
    ticklePort: z.number().int().min(0).max(65535).default(50124),
    /** `always`: hold a WebSocket; `auto`: open one when tickles do not arrive; `never`. @default 'auto' */
    websocket: z.enum(['auto', 'always', 'never']).default('auto'),
    /** Reconnects spread over at least this long (jittered backoff). @default '60s' */
    reconnectSpread: duration('60s'),
    /** Poll interval instead of the slot the task server assigns. */
    pollInterval: z.union([z.string(), z.number()]).transform((v) => parseDuration(v)).optional(),
    /** Longest wait before polling when the task server cannot be reached. @default '5m' */
    retryCap: duration('5m'),
    /** Bytes of output kept per step (stdout and stderr together). @default 65536 */
    outputCap: z.number().int().min(1_024).max(16 * 1024 * 1024).default(65_536),
    /** Built-in tasks this computer allows (others are reported refused). @default [] */
    allowBuiltins: z.array(z.enum(['reboot', 'shutdown'])).default([]),
    /** Interpreter for script tasks that name none. @default 'sh' */
    shell: z.string().min(1).default('sh'),
  })
  .prefault({});

export type AgentTasksConfig = z.output<typeof agentTasksConfigSchema>;
