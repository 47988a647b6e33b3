/**
 * The `Range` request header (RFC 9110 §14.2), single range only:
 *
 * ```
 * bytes=A-B   bytes A through B inclusive (B clipped to the last byte)
 * bytes=A-    from A to the end
 * bytes=-N    the last N bytes (suffix range)
 * ```
 *
 * Multi-range requests (`bytes=0-1,5-6`) and other units are answered with the whole
 * representation (`'ignore'`), which RFC 9110 allows. A range that starts past the end,
 * or a suffix of 0 bytes, is unsatisfiable (416 with `Content-Range: bytes * /size`).
 */
export type RangeResult =
  | { kind: 'none' }
  | { kind: 'ignore' }
  | { kind: 'unsatisfiable' }
  | { kind: 'range'; start: number; end: number };

const RANGE_RE = /^bytes=(\d{0,15})-(\d{0,15})$/;

/** Parses a `Range` header against a representation of `size` bytes. Never throws. */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined || header === '') return { kind: 'none' };
  const m = RANGE_RE.exec(header.trim());
  if (!m) return { kind: 'ignore' };
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return { kind: 'ignore' };
  if (a === '') {
    const n = Number(b);
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (b !== '' && Number(b) < start) return { kind: 'ignore' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', start, end };
}
