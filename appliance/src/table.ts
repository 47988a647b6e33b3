/**
 * Lays rows out as aligned columns for people: a header row, two spaces between columns,
 * no padding after the last one. Cells are strings; empty ones print as `-`.
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const cells = rows.map((row) => headers.map((_, i) => (row[i] === undefined || row[i] === '' ? '-' : row[i]!)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: readonly string[]): string =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)];
}

/** `2026-11-21T00:58:55.000Z` → `2026-11-21 00:58:55Z`; undefined → `-`. */
export function formatTime(iso: string | number | undefined): string {
  if (iso === undefined) return '-';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}
