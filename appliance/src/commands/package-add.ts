import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { isOutpostError, OutpostError, z } from '@outpost/common';
import { callApi, expectShape, type Target } from '../client/api.js';
import { uploadFile } from '../client/upload.js';
import { ApplianceErrors } from '../errors.js';

/** Most files `package add` walks in one DIR (the core's default manifest limit). */
const MAX_FILES = 100_000;
/** Attempts per file before `package add` gives up (re-running it resumes). */
const MAX_ATTEMPTS = 5;
/** Files uploaded at once. */
const PARALLEL = 4;

export interface LocalFile {
  /** Path inside the package (relative POSIX). */
  path: string;
  abs: string;
  size: number;
  mtimeMs: number;
  sha256: string;
}

/**
 * Every regular file under `dir` (symlinks, sockets and devices are skipped and
 * reported), with its size and sha256, sorted by path.
 */
export async function walkPackageDir(dir: string, skipped: (path: string, why: string) => void): Promise<LocalFile[]> {
  const root = resolve(dir);
  const st = await lstat(root).catch((cause: NodeJS.ErrnoException) => {
    throw new OutpostError(ApplianceErrors.PACKAGE_DIR, `cannot read ${dir}: ${cause.code ?? cause.message}`, { cause });
  });
  if (!st.isDirectory()) throw new OutpostError(ApplianceErrors.PACKAGE_DIR, `${dir} is not a directory`);
  const found: Omit<LocalFile, 'sha256'>[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const d = stack.pop()!;
    for (const e of await readdir(d, { withFileTypes: true })) {
      const abs = join(d, e.name);
      const path = relative(root, abs).split(sep).join('/');
      if (e.isDirectory()) stack.push(abs);
      else if (e.isFile()) {
        if (found.length >= MAX_FILES) throw new OutpostError(ApplianceErrors.PACKAGE_DIR, `${dir} holds more than ${MAX_FILES} files`);
        const fst = await lstat(abs);
        found.push({ path, abs, size: fst.size, mtimeMs: fst.mtimeMs });
      } else skipped(path, e.isSymbolicLink() ? 'symbolic link' : 'not a regular file');
    }
  }
  if (found.length === 0) throw new OutpostError(ApplianceErrors.PACKAGE_DIR, `${dir} holds no files`);
  found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const out: LocalFile[] = [];
  for (const f of found) out.push({ ...f, sha256: await hashFile(f.abs) });
  return out;
}

async function hashFile(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) h.update(chunk);
  return h.digest('hex');
}

const missingSchema = z.array(z.looseObject({ path: z.string(), size: z.number(), received: z.number() }));
const viewSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  version: z.string(),
  state: z.string(),
  size: z.number(),
  files: z.number(),
  missing: missingSchema.optional(),
  problems: z.record(z.string(), z.string()).optional(),
});
export type PackageView = z.output<typeof viewSchema>;

export interface AddResult {
  view: PackageView;
  uploadedFiles: number;
  uploadedBytes: number;
  /** Bytes the core already held (earlier partial uploads, or content other packages share). */
  resumedBytes: number;
}

/**
 * `package add`: sends the manifest (the core answers with what it still misses and how
 * much of each it holds), then streams each missing file from where the core left off.
 * An interrupted upload is resumed from the offset the core reports; re-running the
 * whole command resumes too (same name, version and manifest → the same package).
 */
export async function addPackage(
  target: Target,
  input: { name: string; version?: string | undefined; files: readonly LocalFile[] },
  progress: (line: string) => void,
): Promise<AddResult> {
  const manifest = input.files.map((f) => ({ path: f.path, size: f.size, sha256: f.sha256 }));
  const body = { name: input.name, ...(input.version ? { version: input.version } : {}), files: manifest };
  const byPath = new Map(input.files.map((f) => [f.path, f]));
  let uploadedFiles = 0;
  let uploadedBytes = 0;
  let resumedBytes = 0;

  const one = async (id: string, path: string, startAt: number): Promise<void> => {
    const local = byPath.get(path);
    if (!local) throw new OutpostError(ApplianceErrors.BAD_RESPONSE, `the core asks for '${path}', which is not in ${input.name}'s manifest`);
    let offset = startAt;
    resumedBytes += offset;
    if (offset > 0) progress(`resuming ${path} at ${offset} of ${local.size} bytes`);
    for (let attempt = 1; ; attempt++) {
      const st = await lstat(local.abs).catch(() => undefined);
      if (!st || st.size !== local.size || st.mtimeMs !== local.mtimeMs) {
        throw new OutpostError(ApplianceErrors.PACKAGE_DIR, `${local.abs} changed while it was being added; run the command again`);
      }
      try {
        const r = await uploadFile(target, id, path, local.abs, offset, local.size);
        uploadedBytes += Math.max(0, r.received - offset);
        if (r.complete) {
          uploadedFiles++;
          return;
        }
        offset = r.received;
      } catch (err) {
        const code = isOutpostError(err) ? err.code : undefined;
        const received = isOutpostError(err) ? err.details?.received : undefined;
        if (code === 'CORE_PACKAGE_HASH_MISMATCH') {
          throw new OutpostError(ApplianceErrors.PACKAGE_DIR, `${local.abs} does not hash to what the manifest says (changed while it was being added?); run the command again`, { cause: err });
        }
        if (code === 'CORE_PACKAGE_UPLOAD_TOO_LARGE' || code === 'CORE_PACKAGE_NOT_FOUND' || code === 'CORE_PACKAGE_FILE_NOT_FOUND' || code === ApplianceErrors.PACKAGE_DIR) throw err;
        if (attempt >= MAX_ATTEMPTS) {
          throw new OutpostError(ApplianceErrors.UPLOAD_FAILED, `upload of ${path} failed ${attempt} times (last: ${(err as Error).message}); run the command again to resume`, { cause: err });
        }
        if (code === 'CORE_PACKAGE_UPLOAD_OFFSET' && typeof received === 'number') {
          offset = received;
          continue;
        }
        progress(`upload of ${path} failed (${(err as Error).message}); retrying`);
        await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * 2 ** attempt)));
        // Where the core stands now: a broken request keeps what arrived.
        const now = expectShape(viewSchema, await callApi(target, 'GET', `/packages/${encodeURIComponent(id)}`), 'package');
        const m = now.missing?.find((x) => x.path === path);
        if (!m) return;
        offset = m.received;
      }
    }
  };

  // The core lists at most 1000 missing files per answer: go round until none is missing.
  const rounds = Math.ceil(input.files.length / 1000) + 1;
  let view = expectShape(viewSchema, await callApi(target, 'POST', '/packages', body), 'package');
  for (let round = 0; round < rounds && (view.missing?.length ?? 0) > 0; round++) {
    const id = view.id;
    const queue = [...view.missing!];
    const workers = Array.from({ length: Math.min(PARALLEL, queue.length) }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) await one(id, next.path, next.received);
    });
    await Promise.all(workers);
    view = expectShape(viewSchema, await callApi(target, 'POST', '/packages', body), 'package');
  }
  return { view, uploadedFiles, uploadedBytes, resumedBytes };
}
