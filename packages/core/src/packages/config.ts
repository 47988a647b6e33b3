import { duration, z } from '@outpost/common';

/** The `core.packages:` section. Strict: unknown keys are errors. */
export const packagesConfigSchema = z
  .object({
    /** Where package content lives, content-addressed by sha256. @default '<dataDir>/content' */
    contentDir: z.string().min(1).optional(),
    /** A folder the core watches: each sub-folder that stays unchanged for `dropSettle` becomes a package. */
    dropFolder: z.string().min(1).optional(),
    /** How long a dropped folder must stay unchanged before it is imported. @default '10s' */
    dropSettle: duration('10s'),
    /** List the core itself, last, among a package's codebases for agents. @default true */
    serveAgents: z.boolean().default(true),
    /** Largest file a package may hold, bytes. @default 64 GiB */
    maxFileSize: z.number().int().positive().default(64 * 1024 ** 3),
    /** Most files in one package. @default 100000 */
    maxFiles: z.number().int().positive().default(100_000),
    /** How often package servers are told to poll their assignments (tickles wake them sooner). @default '5m' */
    assignmentPollInterval: duration('5m'),
    /** Servers staging one package at once when `enable` does not say. 0: all. @default 0 */
    defaultMaxServers: z.number().int().min(0).default(0),
  })
  .strict()
  .prefault({});

export type PackagesConfig = z.output<typeof packagesConfigSchema>;
