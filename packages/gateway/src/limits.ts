import { readFile } from 'node:fs/promises';

/** The soft and hard open-files limits of this process (Linux `/proc/self/limits`); undefined elsewhere. */
export async function openFilesLimit(): Promise<{ soft: number; hard: number } | undefined> {
  try {
    const text = await readFile('/proc/self/limits', 'utf8');
    const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(text);
    if (!m) return undefined;
    const n = (s: string): number => (s === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(s));
    return { soft: n(m[1]!), hard: n(m[2]!) };
  } catch {
    return undefined;
  }
}

/** File descriptors a gateway needs for `maxConnections` tunnels: two each, plus slack. */
export const fdsNeeded = (maxConnections: number): number => maxConnections * 2 + 256;
