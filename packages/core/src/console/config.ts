import { duration, z } from '@outpost/common';

/** The `core.console:` section: the web console and its live feed. */
export const consoleConfigSchema = z
  .object({
    /** Serve the console at `/console/`. @default true */
    enabled: z.boolean().default(true),
    /**
     * The built console (`index.html` and `assets/`).
     * @default the `dist` folder of the installed `@outpost/console` package
     */
    assetsDir: z.string().min(1).optional(),
    /** Shortest time between two live updates (the feed coalesces to this). @default '500ms' */
    updateInterval: duration('500ms'),
    /** A comment line on idle live feeds, so proxies keep them open. @default '15s' */
    keepAlive: duration('15s'),
    /** Most live feeds open at once. @default 64 */
    maxClients: z.number().int().min(1).max(10_000).default(64),
  })
  .strict()
  .prefault({});

export type ConsoleConfig = z.output<typeof consoleConfigSchema>;
