/**
 * Canonical JSON: the one byte string both signer and verifier compute for a value.
 * Object keys are sorted (UTF-16 code unit order, as `Array.prototype.sort`), `undefined`
 * members are left out (as JSON.stringify does), no whitespace; strings and numbers are
 * written as JSON.stringify writes them, which is deterministic in every engine.
 *
 * Only JSON values are accepted: a non-finite number, a bigint, a function, a symbol, a
 * value nested deeper than {@link MAX_DEPTH} or a cycle yields `undefined`, never a throw,
 * so a verifier handed hostile input refuses it.
 */
export const MAX_DEPTH = 32;

export function canonicalJson(value: unknown): string | undefined {
  const out: string[] = [];
  return write(value, out, 0) ? out.join('') : undefined;
}

function write(v: unknown, out: string[], depth: number): boolean {
  if (depth > MAX_DEPTH) return false;
  if (v === null) {
    out.push('null');
    return true;
  }
  switch (typeof v) {
    case 'string':
      out.push(JSON.stringify(v));
      return true;
    case 'boolean':
      out.push(v ? 'true' : 'false');
      return true;
    case 'number':
      if (!Number.isFinite(v)) return false;
      out.push(JSON.stringify(v));
      return true;
    case 'object':
      break;
    default:
      return false;
  }
  if (Array.isArray(v)) {
    out.push('[');
    for (let i = 0; i < v.length; i++) {
      if (i > 0) out.push(',');
      // Arrays keep their length: an undefined element is null, as JSON.stringify writes it.
      const item: unknown = v[i];
      if (item === undefined) out.push('null');
      else if (!write(item, out, depth + 1)) return false;
    }
    out.push(']');
    return true;
  }
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  const obj = v as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  out.push('{');
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) out.push(',');
    out.push(JSON.stringify(keys[i]), ':');
    if (!write(obj[keys[i]!], out, depth + 1)) return false;
  }
  out.push('}');
  return true;
}
