import { z } from '@outpost/common';
import { coreConfigSchema } from '@outpost/core';
import type { AgentConfig } from '@outpost/agent';
import type { PackageServerConfig } from '@outpost/package-server';
import { taskServerConfigSchema } from '@outpost/task-server';
import { gatewayConfigSchema } from '@outpost/gateway';
import { netbootConfigSchema } from '@outpost/netboot';

/** The `log:` section: the one process-wide logger every service gets a child of. */
export const logConfigSchema = z
  .object({
    /** @default 'info' */
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Pretty, coloured lines instead of JSON. @default true when stdout is a TTY */
    pretty: z.boolean().optional(),
  })
  .strict()
  .prefault({});

/**
 * The appliance config as a file spells it: one optional section per service (only the
 * sections present run), plus `log`. Strict: an unknown top-level key is an error. The
 * `agent` section is checked against the agent's own schema by `loadApplianceConfig`,
 * once its `coreUrl` default (the in-process core) is known.
 */
export const applianceFileSchema = z
  .object({
    log: logConfigSchema,
    core: coreConfigSchema.optional(),
    taskServer: taskServerConfigSchema.optional(),
    gateway: gatewayConfigSchema.optional(),
    netboot: netbootConfigSchema.optional(),
    agent: z.record(z.string(), z.unknown()).optional(),
    /** One package server, or a list of them (each checked in `loadApplianceConfig`). */
    packageServer: z.union([z.record(z.string(), z.unknown()), z.array(z.record(z.string(), z.unknown())).min(1)]).optional(),
  })
  .strict();

/** A validated appliance config. */
export type ApplianceConfig = Omit<z.output<typeof applianceFileSchema>, 'agent' | 'packageServer'> & {
  agent?: AgentConfig | undefined;
  /** Package servers, in start order (a single section becomes a list of one). */
  packageServer?: readonly PackageServerConfig[] | undefined;
};
export type ApplianceConfigInput = z.input<typeof applianceFileSchema>;

/** Service sections, in start order (stop order is the reverse). */
export const SERVICE_SECTIONS = ['core', 'packageServer', 'taskServer', 'netboot', 'gateway', 'agent'] as const;
export type ServiceSection = (typeof SERVICE_SECTIONS)[number];

/** Sections later releases add; naming one now is a clear error, not "unknown key". */
export const FUTURE_SECTIONS = ['tftp'] as const;
