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
 * `CoreJsonClient`): a string (several separated by commas, handy in an `OUTPOST_*`
 * override) or a non-empty list of at most 16 http(s) URLs, normalised to a list
 * without trailing slashes or repeats.
 */
export const coreUrls = z.union([z.string().max(32_768), z.array(z.string().max(2048)).max(16)]).transform((v, ctx) => {
  const one = typeof v === 'string';
  const list = one ? v.split(',').map((u) => u.trim()).filter((u) => u !== '') : v.map((u) => u.trim());
  if (list.length === 0) ctx.addIssue({ code: 'custom', message: 'expected at least one core URL' });
  if (list.length > 16) ctx.addIssue({ code: 'custom', message: 'expected at most 16 core URLs' });
  list.forEach((u, i) => {
    if (!httpUrl.safeParse(u).success) ctx.addIssue({ code: 'custom', message: `expected an http(s) URL${one && list.length > 1 ? `, got '${u}'` : ''}`, path: one ? [] : [i] });
  });
  return [...new Set(list.map((u) => u.replace(/\/+$/, '')))];
});
