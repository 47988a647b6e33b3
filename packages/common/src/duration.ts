import { CommonErrors, OutpostError } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * Parses a duration such as `500ms`, `90s`, `30m`, `24h`, `7d`, `1h30m`, or a bare
 * number of milliseconds, into milliseconds. Throws `COMMON_BAD_DURATION`.
 */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') {
    if (Number.isFinite(input) && input >= 0) return input;
    throw new OutpostError(CommonErrors.BAD_DURATION, `bad duration ${input}: expected a non-negative number of milliseconds`, { status: 400 });
  }
  const text = input.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g;
  let total = 0;
  let consumed = 0;
  for (const m of text.matchAll(re)) {
    if (m.index !== consumed) break;
    total += Number(m[1]) * UNITS[m[2]!]!;
    consumed += m[0].length;
  }
  if (consumed === 0 || consumed !== text.length) {
    throw new OutpostError(CommonErrors.BAD_DURATION, `bad duration '${input}': expected e.g. 500ms, 90s, 30m, 24h, 7d or 1h30m`, { status: 400 });
  }
  return Math.round(total);
}
