import { hostname } from 'node:os';
import { durationSchema, portSchema, z } from '@outpost/common';

/** What a child may change on an item its parent owns (see README "Read-only items"). */
export const EDITABLE = ['packages.enabled'] as const;

/** The `hierarchy:` section of the core's config. */
export const hierarchyConfigSchema = z
  .strictObject({
    /** This core's name in the hierarchy (status, summaries). @default os.hostname() */
    name: z.string().min(1).max(200).default(() => hostname()),
    /**
     * The link listener: mutual TLS for child cores (join, the replication stream, package
     * content). Absent: this core takes no children (it can still join a parent).
     */
    listen: z
      .strictObject({
        /** @default '0.0.0.0' */
        host: z.string().min(1).default('0.0.0.0'),
        port: portSchema,
        /** Names and addresses in the link certificate (children check the parent's core id, not these). @default [] */
        names: z.array(z.string().min(1).max(253)).max(32).default([]),
      })
      .optional(),
    /** The link URL children join (`https://parent.example:7443`), printed by `hierarchy token create`. @default https://<listen host>:<port> */
    publicUrl: z.url({ protocol: /^https$/ }).optional(),
    /** What children may change on items this core sends down. @default ['packages.enabled'] */
    editable: z.array(z.enum(EDITABLE)).default(['packages.enabled']),
    /** How often a child sends its summaries (agents, sites, site servers, package status) up when they changed. @default '2s' */
    summaryInterval: durationSchema.default(2_000),
    /** A link silent this long (or lagging) is degraded. @default '15s' */
    degradedAfter: durationSchema.default(15_000),
    /** A link silent this long is failed. @default '60s' */
    failedAfter: durationSchema.default(60_000),
    /** Journal entries per message (a page), at most; a page also stops at `pageBytes` of ops. @default 500 */
    batch: z.number().int().min(1).max(10_000).default(500),
    /** Bytes of ops per page, at most (a page holds at least one entry, however large). @default 1048576 */
    pageBytes: z.number().int().min(1_024).max(32 * 1024 * 1024).default(1024 * 1024),
    /** Pages sent before the first of them is acknowledged (each way). @default 8 */
    window: z.number().int().min(1).max(64).default(8),
    /** A join token's lifetime. @default '1h' */
    tokenExpiry: durationSchema.default(3_600_000),
  })
  .prefault({});

export type HierarchyConfig = z.output<typeof hierarchyConfigSchema>;

/** How often each end of a link pings the other: a third of `degradedAfter`, between 0.2 s and 5 s. */
export function pingEvery(config: HierarchyConfig): number {
  return Math.max(200, Math.min(5_000, config.degradedAfter / 3));
}

/**
 * How long a link waits on a silent peer before it gives up on what it is doing: a WebSocket
 * handshake, or the next bytes of package content. Two ping intervals, at least 1 s.
 */
export function linkTimeout(config: HierarchyConfig): number {
  return Math.max(1_000, 2 * pingEvery(config));
}

/** The longest pause between a child's attempts to reach its parent: 5 s, or `degradedAfter` when shorter (at least 0.5 s). */
export function maxBackoff(config: HierarchyConfig): number {
  return Math.max(500, Math.min(5_000, config.degradedAfter));
}
