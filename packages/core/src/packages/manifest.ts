import { createHash } from 'node:crypto';
import { OutpostError, z } from '@outpost/common';
import { PackageErrors } from './errors.js';
import type { FileEntry } from './model.js';

export const SHA256_RE = /^[0-9a-f]{64}$/;
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const MAX_PATH = 1024;
const MAX_SEGMENT = 255;

/**
 * Why a package file path is refused, or undefined when it is fine. A path is relative
 * POSIX: segments separated by `/`, none empty, `.` or `..`, no backslash, NUL or control
 * characters, not absolute, at most 1024 bytes. This is what keeps every byte we write
 * or serve inside the store: paths are looked up in the manifest, never joined to a
 * directory, and the manifest holds only paths that pass here.
 */
export function pathProblem(path: string): string | undefined {
  if (typeof path !== 'string' || path.length === 0) return 'empty path';
  if (Buffer.byteLength(path) > MAX_PATH) return `longer than ${MAX_PATH} bytes`;
  if (path.startsWith('/')) return 'absolute path';
  if (/^[A-Za-z]:/.test(path)) return 'drive-letter path';
  if (/[\x00-\x1f\x7f\\]/.test(path)) return 'control character or backslash';
  for (const seg of path.split('/')) {
    if (seg === '') return 'empty segment (// or trailing /)';
    if (seg === '.' || seg === '..') return `'${seg}' segment`;
    if (Buffer.byteLength(seg) > MAX_SEGMENT) return `segment longer than ${MAX_SEGMENT} bytes`;
  }
  return undefined;
}

export const fileEntrySchema = z
  .object({
    path: z.string().min(1).max(MAX_PATH),
    size: z.number().int().min(0),
    sha256: z.string().regex(SHA256_RE, 'lower-case hex sha256'),
  })
  .strict();

/**
 * Checks a manifest: valid paths, unique, no file that is also a directory of another
 * (`a` and `a/b`), sizes within the limit. Returns it sorted by path. Throws
 * `CORE_PACKAGE_BAD_MANIFEST` (400) listing every problem.
 */
export function checkManifest(files: readonly FileEntry[], limits: { maxFileSize: number; maxFiles: number }): FileEntry[] {
  const problems: { path: string; message: string }[] = [];
  if (files.length === 0) problems.push({ path: '(manifest)', message: 'a package needs at least one file' });
  if (files.length > limits.maxFiles) problems.push({ path: '(manifest)', message: `more than ${limits.maxFiles} files` });
  const seen = new Set<string>();
  for (const f of files) {
    const p = pathProblem(f.path);
    if (p) problems.push({ path: f.path, message: p });
    if (seen.has(f.path)) problems.push({ path: f.path, message: 'listed twice' });
    seen.add(f.path);
    if (f.size > limits.maxFileSize) problems.push({ path: f.path, message: `larger than ${limits.maxFileSize} bytes` });
  }
  for (const f of files) {
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (seen.has(dir)) problems.push({ path: dir, message: `is a file and also the directory of ${f.path}` });
    }
  }
  if (problems.length > 0) {
    throw new OutpostError(PackageErrors.BAD_MANIFEST, `bad manifest: ${problems.slice(0, 10).map((p) => `${p.path}: ${p.message}`).join('; ')}`, {
      status: 400,
      details: { problems: problems.slice(0, 1000) },
    });
  }
  return [...files].map((f) => ({ path: f.path, size: f.size, sha256: f.sha256 })).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** sha256 over `path \0 size \0 sha256 \n` of each file in path order: the content's identity. */
export function manifestHash(sortedFiles: readonly FileEntry[]): string {
  const h = createHash('sha256');
  for (const f of sortedFiles) h.update(`${f.path}\0${f.size}\0${f.sha256}\n`);
  return h.digest('hex');
}

/** The stable id of name@version. */
export function packageId(name: string, version: string): string {
  return `pk_${createHash('sha256').update(`${name}\0${version}`).digest('hex').slice(0, 20)}`;
}

/** The version a package gets when none is given: the first 12 hex digits of its manifest hash. */
export function defaultVersion(hash: string): string {
  return hash.slice(0, 12);
}
