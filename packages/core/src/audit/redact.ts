/** Keys whose values are never recorded, at any depth. */
export const SECRET_KEY = /token|secret|password|key|cert|csr|pem|cookie|authorization/i;
export const REDACTED = '[redacted]';
const MAX_DEPTH = 12;
const MAX_ITEMS = 1000;

/**
 * A JSON-safe copy of `value` with the value of every key matching {@link SECRET_KEY}
 * replaced by `[redacted]`; Dates become ISO strings, Sets arrays, Maps objects;
 * undefined, functions and symbols are left out; non-finite numbers become null. Deeper
 * than 12 levels or beyond 1000 items per array or object: a marker string.
 */
export function redact(value: unknown, depth = 0): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'object') return undefined;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Set) return redact([...value], depth);
  if (value instanceof Map) return redact(Object.fromEntries([...value].map(([k, v]) => [String(k), v])), depth);
  if (Array.isArray(value)) {
    const out = value.slice(0, MAX_ITEMS).map((v) => redact(v, depth + 1) ?? null);
    if (value.length > MAX_ITEMS) out.push(`[${value.length - MAX_ITEMS} more items]`);
    return out;
  }
  const out: Record<string, unknown> = {};
  const entries = Object.entries(value as Record<string, unknown>);
  for (const [k, v] of entries.slice(0, MAX_ITEMS)) {
    if (SECRET_KEY.test(k)) out[k] = REDACTED;
    else {
      const r = redact(v, depth + 1);
      if (r !== undefined) out[k] = r;
    }
  }
  if (entries.length > MAX_ITEMS) out['[truncated]'] = `${entries.length - MAX_ITEMS} more keys`;
  return out;
}

/**
 * {@link redact}, then bounded: a value whose JSON is longer than `maxBytes` becomes
 * `{ "[truncated]": <bytes>, "preview": <the first part of its JSON> }`.
 */
export function recordable(value: unknown, maxBytes: number): unknown {
  if (value === undefined) return undefined;
  const safe = redact(value);
  if (safe === undefined) return undefined;
  const json = JSON.stringify(safe);
  const bytes = Buffer.byteLength(json);
  if (bytes <= maxBytes) return safe;
  return { '[truncated]': bytes, preview: cut(json, Math.max(0, maxBytes - 128)) };
}

/** The longest prefix of `s` of at most `maxBytes` UTF-8 bytes (no split character). */
function cut(s: string, maxBytes: number): string {
  const buf = Buffer.from(s).subarray(0, maxBytes);
  return buf.toString('utf8').replace(/\uFFFD$/, '');
}

/**
 * The request body text (as the handler read it) as a recordable value: parsed JSON,
 * redacted and bounded; text that is not JSON is never recorded (it could hold anything),
 * only its size.
 */
export function recordableBody(text: string | undefined, maxBytes: number): unknown {
  if (text === undefined || text.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return `[not JSON: ${Buffer.byteLength(text)} bytes]`;
  }
  return recordable(parsed, maxBytes);
}
