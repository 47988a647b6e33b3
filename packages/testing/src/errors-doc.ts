import { readFile } from 'node:fs/promises';

/** One row of a package README's "Errors" table: `| code | HTTP status | meaning |`. */
export interface ErrorDocRow {
  code: string;
  /** The HTTP status, or undefined when the cell holds none (e.g. `—`). */
  status: number | undefined;
  meaning: string;
  /** 1-based line in the README, for messages. */
  line: number;
}

const cells = (line: string): string[] =>
  line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split('|')
    .map((c) => c.trim());

/**
 * Parses the first Markdown table under the README's `Errors` heading (any level).
 * Codes may be wrapped in backticks; the status cell starts with the status number.
 * Throws when there is no such heading or table.
 */
export async function readErrorsTable(readmePath: string): Promise<ErrorDocRow[]> {
  const lines = (await readFile(readmePath, 'utf8')).split(/\r?\n/);
  const heading = lines.findIndex((l) => /^#{1,6}\s+Errors\s*$/i.test(l));
  if (heading < 0) throw new Error(`${readmePath}: no "Errors" heading`);
  const rows: ErrorDocRow[] = [];
  let seenTable = false;
  for (let i = heading + 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^#{1,6}\s/.test(line)) break;
    if (!line.trim().startsWith('|')) {
      if (seenTable) break;
      continue;
    }
    if (!seenTable) {
      // Header row, then the |---|---| separator.
      seenTable = true;
      i++;
      continue;
    }
    const [code = '', status = '', meaning = ''] = cells(line);
    const statusMatch = /^\s*(\d{3})\b/.exec(status);
    rows.push({ code: code.replace(/`/g, '').trim(), status: statusMatch ? Number(statusMatch[1]) : undefined, meaning, line: i + 1 });
  }
  if (!seenTable) throw new Error(`${readmePath}: no table under the "Errors" heading`);
  return rows;
}

/**
 * Fails (throws, listing every difference) unless the README's Errors table documents
 * exactly `codes`: each once, with a status and a meaning. Use it in each package's
 * errors test with the values of its `XxxErrors` object.
 */
export async function expectErrorsDocumented(readmePath: string, codes: Iterable<string>): Promise<ErrorDocRow[]> {
  const rows = await readErrorsTable(readmePath);
  const expected = new Set(codes);
  const documented = new Map<string, ErrorDocRow>();
  const problems: string[] = [];
  for (const row of rows) {
    if (documented.has(row.code)) problems.push(`line ${row.line}: ${row.code} is documented twice`);
    documented.set(row.code, row);
    if (!expected.has(row.code)) problems.push(`line ${row.line}: ${row.code} is documented but not raised by the code (extra)`);
    if (row.meaning === '') problems.push(`line ${row.line}: ${row.code} has no meaning`);
  }
  for (const code of expected) {
    if (!documented.has(code)) problems.push(`${code} is raised by the code but missing from the README (missing)`);
  }
  if (problems.length > 0) {
    throw new Error(`${readmePath}: the Errors table and the error codes disagree:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  return rows;
}
