import { duration, z } from '@outpost/common';

/** The `core.boot:` section. */
export const bootConfigSchema = z
  .object({
    /** Boot image an unknown computer's menu selects when its timeout runs out; without it, the local disk. */
    defaultImage: z.string().min(1).optional(),
    /** How long the default menu waits for a choice. @default '10s' */
    menuTimeout: duration('10s'),
    /** Events from one MAC further apart than this start a new boot. @default '10m' */
    bootGap: duration('10m'),
    /** Boot timelines kept (oldest deleted first). @default 10000 */
    keepBoots: z.number().int().min(10).max(1_000_000).default(10_000),
    /** Events kept per boot. @default 200 */
    eventsPerBoot: z.number().int().min(10).max(10_000).default(200),
    /** How long netboot servers may reuse a decision. @default '30s' */
    decisionTtl: duration('30s'),
    /** How long a booted computer's job waits for its agent to enroll (then it is dropped). @default '24h' */
    jobWait: duration('24h'),
    /**
     * Discovered computers kept at most: beyond it a new unknown MAC (a boot decision or a
     * netboot event) is not recorded, only counted (`discoveredRefused`). @default 10000
     */
    maxDiscovered: z.number().int().min(1).max(1_000_000).default(10_000),
  })
  .strict()
  .prefault({});

export type BootConfig = z.output<typeof bootConfigSchema>;
