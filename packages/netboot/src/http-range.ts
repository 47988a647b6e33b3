/**
 * One `Range: bytes=...` header against a file of `size` bytes (RFC 9110 §14):
 * `full` serves the whole file (no header, another unit, several ranges, or a header we
 * do not parse: a server may ignore Range), `partial` one range (inclusive `start`..`end`),
 * `unsatisfiable` a well-formed single range that starts past the end (416).
 * Never throws; the header is bounded before it is looked at.
 */
export type RangeResult = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

const SINGLE = /^bytes=[ \t]*(\d{0,19})-(\d{0,19})[ \t]*$/;

export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined || header.length > 200) return { kind: 'full' };
  const m = SINGLE.exec(header);
  if (!m) return { kind: 'full' };
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return { kind: 'full' };
  if (a === '') {
    // Suffix: the last b bytes.
    const n = Number(b);
    if (n === 0) return { kind: 'unsatisfiable' };
    if (size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  if (b !== '' && Number(b) < start) return { kind: 'full' }; // invalid range-spec: ignored
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: b === '' ? size - 1 : Math.min(Number(b), size - 1) };
}
