// A benchmark's input files and its JSON result.
import { randomFillSync } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Writes `bytes` random bytes to `path` (1 MiB at a time). */
export async function writeRandom(path, bytes) {
  const ws = createWriteStream(path);
  const chunk = Buffer.allocUnsafe(1024 * 1024);
  for (let left = bytes; left > 0; left -= chunk.length) {
    randomFillSync(chunk);
    if (!ws.write(left >= chunk.length ? chunk : chunk.subarray(0, left))) await new Promise((r) => ws.once('drain', r));
  }
  await new Promise((r) => ws.end(r));
}

/** Writes `{ date, ...result }` to `<root>/bench-results/<name>-<time>.json` and returns the file's path. */
export async function writeResult(root, name, result) {
  const outDir = join(root, 'bench-results');
  await mkdir(outDir, { recursive: true });
  const file = join(outDir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify({ date: new Date().toISOString(), ...result }, null, 2));
  return file;
}
