import { z } from 'zod';
import { parseDuration } from './duration.js';

export { z };

/**
 * A duration in a config or a request (`90s`, `30m`, `24h`, `1h30m`, or milliseconds),
 * parsed to milliseconds. A bad value is a validation issue naming the key, not a throw.
 */
export const durationSchema = z.union([z.string().max(64), z.number()]).transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

/** {@link durationSchema} with a default, for config sections. */
export const duration = (def: string) => durationSchema.default(() => parseDuration(def));

/** A TCP/UDP port; 0 means any free port. */
export const portSchema = z.number().int().min(0).max(65535);

const httpUrl = z.url({ protocol: /^https?$/, message: 'expected an http(s) URL' });

/**
 * The core's base URL, or several (active cores of one estate, tried in order, see
 * `CoreJsonClient`): a string or a non-empty list of http(s) URLs, normalised to a list
 * without trailing slashes or repeats.
 */
export const coreUrls = z
  .union([httpUrl, z.array(httpUrl).min(1, { message: 'expected at least one core URL' }).max(16)])
  .transform((v) => [...new Set((typeof v === 'string' ? [v] : v).map((u) => u.replace(/\/+$/, '')))]);
